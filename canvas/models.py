"""Plain values the client returns: Canvas's JSON objects as dataclasses.

Each keeps the full JSON in `raw`, so a field Canvas adds later is not lost to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypedDict

TERMINAL_SUCCESS = frozenset({"imported", "imported_with_messages"})
TERMINAL_FAILURE = frozenset({"failed", "failed_with_messages", "aborted"})
# restore_states ends in one of these; an import being restored is not finished.
TERMINAL_RESTORE = frozenset({"restored", "partially_restored"})


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class AccountJson(TypedDict, total=False):
    """An account as GET /api/v1/accounts/:id answers it (the Account object of Canvas's Accounts API docs)."""

    id: int
    name: str
    uuid: str
    parent_account_id: int | None
    root_account_id: int | None
    default_time_zone: str
    workflow_state: str
    sis_account_id: str | None
    integration_id: str | None


@dataclass(frozen=True)
class SisImport:
    id: int
    workflow_state: str
    progress: int
    created_at: datetime | None
    ended_at: datetime | None
    counts: dict[str, int]
    processing_warnings: list[tuple[str, str]]
    processing_errors: list[tuple[str, str]]
    batch_mode: bool | None
    batch_mode_term_id: str | None
    diffing_data_set_identifier: str | None
    diffed_against_import_id: int | None
    diffing_threshold_exceeded: bool
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_terminal(self) -> bool:
        return self.workflow_state in TERMINAL_SUCCESS | TERMINAL_FAILURE | TERMINAL_RESTORE

    @property
    def succeeded(self) -> bool:
        return self.workflow_state in TERMINAL_SUCCESS

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SisImport:
        return cls(
            id=data["id"],
            workflow_state=data["workflow_state"],
            progress=int(data.get("progress") or 0),
            created_at=parse_time(data.get("created_at")),
            ended_at=parse_time(data.get("ended_at")),
            counts=dict((data.get("data") or {}).get("counts") or {}),
            processing_warnings=[tuple(w) for w in data.get("processing_warnings") or []],
            processing_errors=[tuple(e) for e in data.get("processing_errors") or []],
            batch_mode=data.get("batch_mode"),
            batch_mode_term_id=data.get("batch_mode_term_id"),
            diffing_data_set_identifier=data.get("diffing_data_set_identifier"),
            # Canvas leaves the top-level key null and keeps the id under data (sis_batch.rb#as_json, #generate_diff).
            diffed_against_import_id=data.get("diffed_against_import_id")
            or (data.get("data") or {}).get("diffed_against_sis_batch_id"),
            diffing_threshold_exceeded=bool(data.get("diffing_threshold_exceeded")),
            raw=data,
        )


@dataclass(frozen=True)
class SisImportError:
    sis_import_id: int
    file: str | None
    message: str
    row: int | None
    row_info: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SisImportError:
        return cls(
            sis_import_id=data["sis_import_id"],
            file=data.get("file"),
            message=data["message"],
            row=data.get("row"),
            row_info=data.get("row_info"),
        )


@dataclass(frozen=True)
class Progress:
    """Canvas's Progress object (restore_states answers one)."""

    id: int
    workflow_state: str
    completion: float | None
    message: str | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def is_pending(self) -> bool:
        """Still queued or running (app/models/progress.rb `pending?`)."""
        return self.workflow_state in ("queued", "running", "waiting_for_external_tool")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        return cls(data["id"], data["workflow_state"], data.get("completion"), data.get("message"), data)


@dataclass(frozen=True)
class User:
    id: int
    name: str
    sortable_name: str | None
    short_name: str | None
    sis_user_id: str | None
    integration_id: str | None
    login_id: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(
            data["id"],
            data.get("name", ""),
            data.get("sortable_name"),
            data.get("short_name"),
            data.get("sis_user_id"),
            data.get("integration_id"),
            data.get("login_id"),
            data,
        )


@dataclass(frozen=True)
class Course:
    id: int
    name: str
    course_code: str
    sis_course_id: str | None
    integration_id: str | None
    account_id: int | None
    enrollment_term_id: int | None
    sis_term_id: str | None
    workflow_state: str
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Course:
        term = data.get("term") or {}
        return cls(
            data["id"],
            data.get("name", ""),
            data.get("course_code", ""),
            data.get("sis_course_id"),
            data.get("integration_id"),
            data.get("account_id"),
            data.get("enrollment_term_id"),
            term.get("sis_term_id"),
            data.get("workflow_state", ""),
            data,
        )


@dataclass(frozen=True)
class Section:
    id: int
    name: str
    course_id: int
    sis_section_id: str | None
    sis_course_id: str | None
    integration_id: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Section:
        return cls(
            data["id"],
            data.get("name", ""),
            data["course_id"],
            data.get("sis_section_id"),
            data.get("sis_course_id"),
            data.get("integration_id"),
            data,
        )


@dataclass(frozen=True)
class Enrollment:
    id: int
    user_id: int
    course_id: int
    course_section_id: int
    type: str
    role: str
    enrollment_state: str
    sis_user_id: str | None
    sis_course_id: str | None
    sis_section_id: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Enrollment:
        return cls(
            data["id"],
            data["user_id"],
            data["course_id"],
            data["course_section_id"],
            data["type"],
            data.get("role", data["type"]),
            data["enrollment_state"],
            data.get("sis_user_id"),
            data.get("sis_course_id"),
            data.get("sis_section_id"),
            data,
        )


@dataclass(frozen=True)
class Assignment:
    id: int
    course_id: int
    name: str
    points_possible: float | None
    post_to_sis: bool
    due_at: datetime | None
    integration_id: str | None
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Assignment:
        return cls(
            data["id"],
            data["course_id"],
            data.get("name", ""),
            data.get("points_possible"),
            bool(data.get("post_to_sis")),
            parse_time(data.get("due_at")),
            data.get("integration_id"),
            data,
        )

    @property
    def published(self) -> bool:
        return bool(self.raw.get("published", True))

    @property
    def assignment_group_id(self) -> int | None:
        return self.raw.get("assignment_group_id")

    @property
    def only_visible_to_overrides(self) -> bool:
        """Canvas "assign to" named students or sections only (lib/api/v1/assignment.rb)."""
        return bool(self.raw.get("only_visible_to_overrides"))


@dataclass(frozen=True)
class Submission:
    id: int
    assignment_id: int
    user_id: int
    score: float | None
    grade: str | None
    graded_at: datetime | None
    workflow_state: str
    excused: bool
    late: bool
    missing: bool
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Submission:
        return cls(
            data["id"],
            data["assignment_id"],
            data["user_id"],
            data.get("score"),
            data.get("grade"),
            parse_time(data.get("graded_at")),
            data.get("workflow_state", ""),
            bool(data.get("excused")),
            bool(data.get("late")),
            bool(data.get("missing")),
            data,
        )
