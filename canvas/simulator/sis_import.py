"""An SIS import job as Canvas keeps it: options, state, progress, counts, messages, and what it changed."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from canvas.simulator.state import now_iso
from canvas.simulator.upload import Message

COUNT_KEYS = (
    "accounts", "terms", "abstract_courses", "courses", "sections", "xlists", "users", "enrollments",
    "groups", "group_memberships", "grade_publishing_results", "batch_courses_deleted",
    "batch_sections_deleted", "batch_enrollments_deleted", "error_count", "warning_count",
)
# Keys of data.counts for our kinds (change_sis_id rows are counted under their own name).
KIND_COUNT = {
    "accounts": "accounts", "terms": "terms", "courses": "courses", "sections": "sections",
    "users": "users", "enrollments": "enrollments", "change_sis_id": "change_sis_ids",
}


@dataclass
class ImportOptions:
    import_type: str = "instructure_csv"
    batch_mode: bool = False
    batch_mode_term_id: str | None = None
    batch_mode_enrollment_drop_status: str | None = None
    override_sis_stickiness: bool = False
    add_sis_stickiness: bool = False
    clear_sis_stickiness: bool = False
    skip_deletes: bool = False
    diffing_data_set_identifier: str | None = None
    diffing_remaster_data_set: bool = False
    diffing_drop_status: str | None = None
    diffing_user_remove_status: str | None = None
    change_threshold: int | None = None


@dataclass
class StateChange:
    """One workflow_state change an import made; restore_states plays these back."""

    kind: str
    obj: Any
    previous: str
    updated: str
    batch_cleanup: bool = False


@dataclass
class SisImportRecord:
    id: int
    options: ImportOptions
    content: bytes
    extension: str
    file_name: str
    workflow_state: str = "created"
    progress: int = 0
    created_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    ended_at: str | None = None
    counts: dict[str, int] = field(default_factory=lambda: {k: 0 for k in COUNT_KEYS})
    messages: list[Message] = field(default_factory=list)
    supplied_batches: list[str] = field(default_factory=list)
    diffed_against_import_id: int | None = None
    diffing_threshold_exceeded: bool = False
    changes: list[StateChange] = field(default_factory=list)
    abort_requested: threading.Event = field(default_factory=threading.Event)

    def set_state(self, workflow_state: str) -> None:
        self.workflow_state = workflow_state
        self.updated_at = now_iso()

    def to_json(self) -> dict[str, Any]:
        warnings = [[m.file or "", m.message] for m in self.messages if not m.failure]
        errors = [[m.file or "", m.message] for m in self.messages if m.failure]
        counts = dict(self.counts)
        counts["error_count"] = len(errors)
        counts["warning_count"] = len(warnings)
        o = self.options
        return {
            "id": self.id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "ended_at": self.ended_at,
            "workflow_state": self.workflow_state,
            "progress": self.progress,
            "data": {
                "import_type": o.import_type,
                "supplied_batches": list(self.supplied_batches),
                "counts": counts,
            },
            "statistics": {"total_state_changes": len(self.changes)},
            "processing_warnings": warnings or None,
            "processing_errors": errors or None,
            "errors_attachment": None,
            "batch_mode": o.batch_mode or None,
            "batch_mode_term_id": o.batch_mode_term_id,
            "multi_term_batch_mode": False,
            "skip_deletes": o.skip_deletes,
            "override_sis_stickiness": o.override_sis_stickiness or None,
            "add_sis_stickiness": o.add_sis_stickiness or None,
            "clear_sis_stickiness": o.clear_sis_stickiness or None,
            "diffing_data_set_identifier": o.diffing_data_set_identifier,
            "diffing_remaster": o.diffing_remaster_data_set or None,
            "diffed_against_import_id": self.diffed_against_import_id,
            "diffing_threshold_exceeded": self.diffing_threshold_exceeded,
            "change_threshold": o.change_threshold,
            # Canvas lists the uploaded file here; clients use its name to recognise their own import.
            "csv_attachments": [{"id": self.id, "display_name": self.file_name, "filename": self.file_name,
                                 "content-type": "application/zip" if self.extension == "zip" else "text/csv"}],
        }

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
