"""Models, one file per kind of thing."""

from conversion.models.audit import AuditEvent
from conversion.models.conversion import (
    AGENT_CHECKLIST,
    Approval,
    ApprovalKind,
    Conversion,
    ConversionState,
    GpbState,
    Gradebook,
    Hosting,
    SifVersion,
)
from conversion.models.diagnostic import Diagnostic, Severity
from conversion.models.district import District
from conversion.models.gradepassback import Confirmation, GpbCategoryOverride, GpbStatus, GradePassbackItem
from conversion.models.job import ACTIVE_STATES, FINISHED_STATES, Job, JobKind, JobLost, JobState
from conversion.models.mapping import MappingDiff, MappingRow, MatchStatus
from conversion.models.notification import AlertPreference, Delivery, Notification, NotificationKind
from conversion.models.roster_policy import RosterPolicy
from conversion.models.snapshot import ReceivedMessage, SifRecord, Snapshot, SnapshotState
from conversion.models.sync import SYNC_SUCCESS_STATES, Artifact, SyncRun, SyncState

__all__ = [
    "AGENT_CHECKLIST",
    "Approval",
    "ApprovalKind",
    "AuditEvent",
    "Conversion",
    "ConversionState",
    "District",
    "ACTIVE_STATES",
    "FINISHED_STATES",
    "GpbState",
    "Gradebook",
    "Hosting",
    "Job",
    "JobKind",
    "JobLost",
    "JobState",
    "Artifact",
    "SYNC_SUCCESS_STATES",
    "SyncRun",
    "SyncState",
    "MappingDiff",
    "MappingRow",
    "MatchStatus",
    "ReceivedMessage",
    "RosterPolicy",
    "SifRecord",
    "SifVersion",
    "Snapshot",
    "SnapshotState",
    "Diagnostic",
    "Severity",
    "Confirmation",
    "GpbCategoryOverride",
    "GpbStatus",
    "GradePassbackItem",
    "Notification",
    "NotificationKind",
    "AlertPreference",
    "Delivery",
]
