"""An SIS import job as Canvas keeps it (canvas-lms app/models/sis_batch.rb, class SisBatch): options, state,
progress, counts, messages, the files it was given, and what it changed (its roll-back data)."""

from __future__ import annotations

import copy
import hashlib
import threading
from dataclasses import dataclass, field
from typing import Any

from canvas.simulator.state import now_iso
from canvas.simulator.upload import Message

# SIS::CSV::ImportRefactored::IMPORTERS (lib/sis/csv/import_refactored.rb), in Canvas's processing order. The
# simulator imports the first seven kinds; `process` still gives every importer a count (pluralised), as
# Canvas does, and supplied_batches names the importers whose files were found, in the singular.
IMPORTERS = (
    "change_sis_id",
    "account",
    "term",
    "abstract_course",
    "course",
    "section",
    "xlist",
    "user",
    "enrollment",
    "admin",
    "group_category",
    "group",
    "group_membership",
    "grade_publishing_results",
    "user_observer",
)
# Our file kinds (canvas.csv_formats) → Canvas's importer names.
KIND_IMPORTER = {
    "change_sis_id": "change_sis_id",
    "accounts": "account",
    "terms": "term",
    "courses": "course",
    "sections": "section",
    "users": "user",
    "enrollments": "enrollment",
}


def _plural(importer: str) -> str:
    # ActiveSupport's pluralize on these names; grade_publishing_results is already plural.
    if importer.endswith("results"):
        return importer
    return importer[:-1] + "ies" if importer.endswith("y") else importer + "s"


COUNT_KEYS = tuple(_plural(i) for i in IMPORTERS)
# Kept for callers that used the old name: file kind → key of data.counts.
KIND_COUNT = {kind: _plural(importer) for kind, importer in KIND_IMPORTER.items()}

# SisBatchRollBackData::RESTORE_ORDER, the context types data.statistics reports (sis_batch.rb#add_zero_stats).
STAT_TYPES = (
    "Account",
    "EnrollmentTerm",
    "AbstractCourse",
    "Course",
    "CourseSection",
    "GroupCategory",
    "Group",
    "Pseudonym",
    "CommunicationChannel",
    "Enrollment",
    "GroupMembership",
    "UserObserver",
    "AccountUser",
)
# sis_batch.rb#populate_old_warnings_and_errors keeps the first 24 of each, then one line saying how many more.
MESSAGE_CAP = 24

# SisBatch's workflow (sis_batch.rb `workflow do`), every state Canvas uses.
WORKFLOW_STATES = (
    "initializing",
    "created",
    "importing",
    "cleanup_batch",
    "imported",
    "imported_with_messages",
    "aborted",
    "failed",
    "failed_with_messages",
    "restoring",
    "partially_restored",
    "restored",
)
NOT_STARTED = ("initializing", "created")  # SisBatch.not_started
NOT_COMPLETED = ("initializing", "created", "importing", "cleanup_batch")  # SisBatch.not_completed
IMPORTING = ("importing", "cleanup_batch")  # SisBatch.importing
SUCCEEDED = ("imported", "imported_with_messages")  # SisBatch.succeeded

# SIS::CSV::DiffGenerator::VALID_ENROLLMENT_DROP_STATUS (lib/sis/csv/diff_generator.rb); the user statuses are
# those the controller documents for diffing_user_remove_status (sis_imports_api_controller.rb#create).
VALID_ENROLLMENT_DROP_STATUS = ("deleted", "inactive", "completed", "deleted_last_completed")
VALID_USER_REMOVE_STATUS = ("deleted", "suspended")


@dataclass
class ImportOptions:
    import_type: str = "instructure_csv"
    batch_mode: bool = False
    batch_mode_term_id: str | None = None
    batch_mode_enrollment_drop_status: str | None = None
    override_sis_stickiness: bool = False
    add_sis_stickiness: bool = False
    clear_sis_stickiness: bool = False
    update_sis_id_if_login_claimed: bool = False
    skip_deletes: bool = False
    diffing_data_set_identifier: str | None = None
    diffing_remaster_data_set: bool = False
    diffing_drop_status: str | None = None
    diffing_user_remove_status: str | None = None
    change_threshold: int | None = None
    diff_row_count_threshold: int | None = None


@dataclass
class StateChange:
    """One workflow_state change an import made (a SisBatchRollBackData row); restore_states plays these back."""

    kind: str
    obj: Any
    previous: str
    updated: str
    batch_cleanup: bool = False
    restored: bool = False


@dataclass
class Attachment:
    """An Attachment whose context is the batch (Attachment.create_data_attachment)."""

    id: int
    display_name: str
    filename: str
    content: bytes
    content_type: str = "text/csv"
    created_at: str = field(default_factory=now_iso)

    def to_json(self, base_url: str) -> dict[str, Any]:
        # The keys of Api::V1::Attachment#attachment_json as a SisImport shows them (the SisImport example in
        # canvas-lms's API docs lists exactly these for csv_attachments and errors_attachment).
        uuid = hashlib.sha1(f"{self.id}:{self.filename}".encode()).hexdigest()[:40]
        return {
            "id": self.id,
            "uuid": uuid,
            "folder_id": None,
            "display_name": self.display_name,
            "filename": self.filename,
            "upload_status": "success",
            "content-type": self.content_type,
            "url": f"{base_url}/files/{self.id}/download?download_frd=1&verifier={uuid}",
            "size": len(self.content),
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "modified_at": self.created_at,
            "unlock_at": None,
            "locked": False,
            "hidden": False,
            "lock_at": None,
            "hidden_for_user": False,
            "thumbnail_url": None,
            "media_entry_id": None,
            "mime_class": "file",
            "locked_for_user": False,
        }


@dataclass
class SisImportRecord:
    id: int
    options: ImportOptions
    content: bytes
    extension: str
    file_name: str
    user: dict[str, Any] | None = None
    batch_mode_term: Any = None
    workflow_state: str = "initializing"
    progress: int = 0
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    started_at: str | None = None
    ended_at: str | None = None
    data: dict[str, Any] = field(default_factory=lambda: {"import_type": "instructure_csv"})
    messages: list[Message] = field(default_factory=list)
    supplied_batches: list[str] = field(default_factory=list)
    diffing_threshold_exceeded: bool = False
    generated_diff: bool = False
    full_files: list[Any] = field(default_factory=list)
    upload_size: int = 0
    attachments: list[Attachment] = field(default_factory=list)
    diffed_attachment_ids: list[int] = field(default_factory=list)
    errors_attachment: Attachment | None = None
    changes: list[StateChange] = field(default_factory=list)
    abort_requested: threading.Event = field(default_factory=threading.Event)

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = self.data.setdefault("counts", {})
        return counts

    def set_state(self, workflow_state: str) -> None:
        self.workflow_state = workflow_state
        self.updated_at = now_iso()

    # --- sis_batch.rb#statistics and #add_restore_statistics ----------------------------------

    def statistics(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"total_state_changes": len(self.changes)}
        for kind in STAT_TYPES:
            entry = {"created": 0, "restored": 0}
            if kind in ("Course", "Enrollment"):
                entry["concluded"] = 0
            if kind == "Enrollment":
                entry["deactivated"] = 0
            entry["deleted"] = 0
            stats[kind] = entry
        active = {"Course": ("claimed", "created", "available")}
        restored_from = {
            "Course": ("completed", "deleted"),
            "Enrollment": ("inactive", "completed", "rejected", "deleted"),
        }
        for change in self.changes:
            entry = stats.setdefault(change.kind, {"created": 0, "restored": 0, "deleted": 0})
            is_active = change.updated in active.get(change.kind, ("active", "registered"))
            if change.previous in ("non-existent", "creation_pending") and is_active:
                entry["created"] += 1
            if change.previous in restored_from.get(change.kind, ("deleted",)) and is_active:
                entry["restored"] += 1
            if change.updated == "completed" and "concluded" in entry:
                entry["concluded"] += 1
            if change.updated == "inactive" and "deactivated" in entry:
                entry["deactivated"] += 1
            if change.updated == "deleted":
                entry["deleted"] += 1
        return stats

    def finalize_messages(self) -> None:
        """sis_batch.rb#populate_old_warnings_and_errors and #write_errors_to_file."""
        errors = [m for m in self.messages if m.failure]
        warnings = [m for m in self.messages if not m.failure]
        self.counts["error_count"] = len(errors)
        self.counts["warning_count"] = len(warnings)
        if self.messages and self.errors_attachment is None:
            lines = ["sis_import_id,file,message,row"]
            for m in self.messages:
                cells = [str(self.id), m.file or "", m.message, "" if m.row is None else str(m.row)]
                lines.append(",".join('"' + c.replace('"', '""') + '"' if ("," in c or '"' in c) else c for c in cells))
            body = ("\n".join(lines) + "\n").encode()
            self.errors_attachment = Attachment(
                0, f"sis_errors_attachment_{self.id}.csv", f"{self.id}_processing_warnings_and_errors.csv", body, "csv"
            )

    def to_json(self, base_url: str = "") -> dict[str, Any]:
        """SisBatch#as_json plus what Api::V1::SisImport#sis_import_json adds (lib/api/v1/sis_import.rb)."""
        o = self.options
        data: dict[str, Any] = {
            "id": self.id,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "updated_at": self.updated_at,
            "progress": self.progress,
            "workflow_state": self.workflow_state,
            "data": copy.deepcopy(self.data),  # a snapshot: the import thread goes on changing it
            "batch_mode": True if o.batch_mode else None,
            "batch_mode_term_id": self.batch_mode_term.id if self.batch_mode_term is not None else None,
            "multi_term_batch_mode": None,
            "override_sis_stickiness": True if o.override_sis_stickiness else None,
            "add_sis_stickiness": True if o.add_sis_stickiness else None,
            "update_sis_id_if_login_claimed": o.update_sis_id_if_login_claimed,
            "clear_sis_stickiness": True if o.clear_sis_stickiness else None,
            "diffing_data_set_identifier": o.diffing_data_set_identifier,
            "diffing_remaster": True if o.diffing_remaster_data_set else None,
            # as_json reads options[:diffed_against_sis_batch_id], but generate_diff writes the id to
            # data[:diffed_against_sis_batch_id]: on Canvas this key stays null and the id is under data
            # (the SisImport example in canvas-lms shows exactly that pair).
            "diffed_against_import_id": None,
            "diffing_drop_status": o.diffing_drop_status,
            "diffing_user_remove_status": o.diffing_user_remove_status,
            "skip_deletes": o.skip_deletes,
            "change_threshold": o.change_threshold,
            "diff_row_count_threshold": o.diff_row_count_threshold,
        }
        if self.ended_at is not None:
            errors = [[m.file or "", m.message] for m in self.messages if m.failure]
            warnings = [[m.file or "", m.message] for m in self.messages if not m.failure]
            if errors:
                data["processing_errors"] = _capped(errors, "errors")
            if warnings:
                data["processing_warnings"] = _capped(warnings, "warnings")
        if o.diffing_data_set_identifier:
            data["diffing_threshold_exceeded"] = self.diffing_threshold_exceeded
        if self.errors_attachment is not None:
            data["errors_attachment"] = self.errors_attachment.to_json(base_url)
        if self.user is not None:
            data["user"] = self.user
        uploaded = [a for a in self.attachments if a.id not in self.diffed_attachment_ids]
        diffed = [a for a in self.attachments if a.id in self.diffed_attachment_ids]
        if uploaded:  # Api::V1::SisImport: the key is there only when the batch has such attachments
            data["csv_attachments"] = [a.to_json(base_url) for a in uploaded]
        if diffed:
            data["diffed_csv_attachments"] = [a.to_json(base_url) for a in diffed]
        return data

    def error_entries(self) -> list[dict[str, Any]]:
        return [
            {
                "sis_import_id": self.id,
                "file": m.file,
                "message": m.message,
                "row_info": m.row_info,
                "row": m.row,
                "failure": m.failure,
            }
            for m in self.messages
        ]


def _capped(messages: list[list[str]], kind: str) -> list[list[str]]:
    """The first MESSAGE_CAP messages, then one line counting the rest, as the import JSON lists them."""
    more = len(messages) - MESSAGE_CAP
    shown = messages[:MESSAGE_CAP]
    if more > 0:
        shown.append([f"and {more} more {kind} that were not included", f"Download the error file to see all {kind}."])
    return shown
