"""CanvasClient: SIS imports, the roster reads the product compares with SIF, and grade reads."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from canvas.errors import SisImportTimeoutError
from canvas.models import (
    AccountJson,
    Assignment,
    Course,
    Enrollment,
    Progress,
    Section,
    SisImport,
    SisImportError,
    Submission,
    User,
)
from canvas.transport import CanvasTransport, RetryPolicy, TransportStats

# The permission each family of calls needs, in Canvas's own names, for 403 messages.
PERM_SIS_IMPORT = "import_sis"
PERM_ROSTER = "read_roster"
PERM_COURSE_LIST = "read_course_list"
PERM_GRADES = "view_all_grades"
PERM_ASSIGNMENTS = "read_course_content"

ENROLLMENT_DROP_STATUSES = frozenset({"deleted", "completed", "inactive"})
USER_REMOVE_STATUSES = frozenset({"deleted", "suspended"})

ImportData = bytes | str | Path | BinaryIO


def _seg(value: int | str) -> str:
    """One path segment: a Canvas id, `self`, or `sis_course_id:ABC` (colon kept, rest encoded)."""
    return quote(str(value), safe=":")


def sis_ref(kind: str, sis_id: str) -> str:
    """Canvas's SIS-id reference for a path: sis_ref("course", "C1") -> "sis_course_id:C1"."""
    return f"sis_{kind}_id:{sis_id}"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("graded_since must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read_import_data(data: ImportData) -> tuple[bytes, str]:
    """The upload's bytes and its extension, told from the content (a zip starts with PK\\x03\\x04)."""
    if isinstance(data, Path) or isinstance(data, str):
        content = Path(data).read_bytes()
    elif isinstance(data, bytes):
        content = data
    else:
        content = data.read()
    return content, ("zip" if content[:4] == b"PK\x03\x04" else "csv")


class CanvasClient:
    """A Canvas REST client for one instance and one token.

    `sleep` is called for every backoff and pacing pause (inject a fake in tests); `stats` counts
    requests, retries and pauses. Use as a context manager or call close().
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        deadline: float | None = 300.0,
        max_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        rate_limit_low_water: float = 150.0,
        per_page: int = 100,
        http_transport: httpx.BaseTransport | None = None,
    ):
        policy = RetryPolicy(
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_cap=backoff_cap,
            low_water=rate_limit_low_water,
        )
        self._sleep = sleep
        self.per_page = per_page
        self._t = CanvasTransport(
            base_url,
            token,
            timeout=timeout,
            deadline=deadline,
            policy=policy,
            sleep=sleep,
            http_transport=http_transport,
        )

    @property
    def stats(self) -> TransportStats:
        return self._t.stats

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> CanvasClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- SIS imports -------------------------------------------------------------------------

    def create_sis_import(
        self,
        account_id: int | str,
        data: ImportData,
        *,
        import_type: str = "instructure_csv",
        batch_mode: bool | None = None,
        batch_mode_term_id: str | None = None,
        override_sis_stickiness: bool | None = None,
        add_sis_stickiness: bool | None = None,
        clear_sis_stickiness: bool | None = None,
        diffing_data_set_identifier: str | None = None,
        diffing_remaster_data_set: bool | None = None,
        diffing_drop_status: str | None = None,
        diffing_user_remove_status: str | None = None,
        change_threshold: int | None = None,
        skip_deletes: bool | None = None,
        file_name: str | None = None,
    ) -> SisImport:
        """Upload a zip (or one CSV) as multipart `attachment` and start an import.

        Contradictory parameters are refused here, before Canvas sees them.
        """
        if batch_mode and not batch_mode_term_id:
            raise ValueError("batch_mode needs batch_mode_term_id")
        if batch_mode and diffing_data_set_identifier:
            raise ValueError("batch_mode cannot be combined with diffing_data_set_identifier")
        if change_threshold is not None and not 1 <= change_threshold <= 100:
            raise ValueError("change_threshold must be between 1 and 100")
        if diffing_data_set_identifier is not None and len(diffing_data_set_identifier.encode()) > 128:
            raise ValueError("diffing_data_set_identifier must be at most 128 bytes")
        if diffing_drop_status is not None and diffing_drop_status not in ENROLLMENT_DROP_STATUSES:
            raise ValueError(f"diffing_drop_status must be one of {sorted(ENROLLMENT_DROP_STATUSES)}")
        if diffing_user_remove_status is not None and diffing_user_remove_status not in USER_REMOVE_STATUSES:
            raise ValueError(f"diffing_user_remove_status must be one of {sorted(USER_REMOVE_STATUSES)}")
        content, extension = _read_import_data(data)
        form: dict[str, str] = {"import_type": import_type, "extension": extension}
        for name, value in {
            "batch_mode": batch_mode,
            "override_sis_stickiness": override_sis_stickiness,
            "add_sis_stickiness": add_sis_stickiness,
            "clear_sis_stickiness": clear_sis_stickiness,
            "diffing_remaster_data_set": diffing_remaster_data_set,
            "skip_deletes": skip_deletes,
        }.items():
            if value is not None:
                form[name] = _bool(value)
        for name, text in {
            "batch_mode_term_id": batch_mode_term_id,
            "diffing_data_set_identifier": diffing_data_set_identifier,
            "diffing_drop_status": diffing_drop_status,
            "diffing_user_remove_status": diffing_user_remove_status,
            "change_threshold": None if change_threshold is None else str(change_threshold),
        }.items():
            if text is not None:
                form[name] = text
        mime = "application/zip" if extension == "zip" else "text/csv"
        files = {"attachment": (file_name or f"sis_import.{extension}", content, mime)}
        response = self._t.request(
            "POST",
            f"/accounts/{_seg(account_id)}/sis_imports",
            permission=PERM_SIS_IMPORT,
            data=form,
            files=files,
        )
        return SisImport.from_json(response.json())

    def get_sis_import(self, account_id: int | str, import_id: int) -> SisImport:
        return SisImport.from_json(
            self._t.get_json(f"/accounts/{_seg(account_id)}/sis_imports/{import_id}", permission=PERM_SIS_IMPORT)
        )

    def iter_sis_imports(self, account_id: int | str, *, created_since: datetime | None = None) -> Iterator[SisImport]:
        params: dict[str, Any] = {"per_page": self.per_page}
        if created_since is not None:
            params["created_since"] = _iso(created_since)
        for item in self._t.paginate(
            f"/accounts/{_seg(account_id)}/sis_imports",
            permission=PERM_SIS_IMPORT,
            params=params,
            key="sis_imports",
        ):
            yield SisImport.from_json(item)

    def wait_for_sis_import(
        self,
        account_id: int | str,
        import_id: int,
        *,
        poll_interval: float = 2.0,
        timeout: float = 3600.0,
        on_progress: Callable[[SisImport], None] | None = None,
    ) -> SisImport:
        """Poll until the import is terminal; call on_progress with each new (state, progress).

        `timeout` is counted in poll intervals slept (not wall-clock), so an injected sleep makes
        it deterministic. Raises SisImportTimeoutError holding the last state seen.
        """
        waited = 0.0
        last_seen: tuple[str, int] | None = None
        while True:
            current = self.get_sis_import(account_id, import_id)
            if on_progress is not None and (current.workflow_state, current.progress) != last_seen:
                on_progress(current)
            last_seen = (current.workflow_state, current.progress)
            if current.is_terminal:
                return current
            if waited >= timeout:
                raise SisImportTimeoutError(
                    f"SIS import {import_id} still {current.workflow_state} at {current.progress}% "
                    f"after {timeout:g}s of polling",
                    sis_import=current,
                )
            self._sleep(poll_interval)
            waited += poll_interval

    def iter_sis_import_errors(
        self, account_id: int | str, import_id: int, *, failures_only: bool = False
    ) -> Iterator[SisImportError]:
        """Every warning and error of an import, row by row (`/sis_imports/:id/errors`, paginated)."""
        params: dict[str, Any] = {"per_page": self.per_page}
        if failures_only:
            params["failure"] = "true"
        for item in self._t.paginate(
            f"/accounts/{_seg(account_id)}/sis_imports/{import_id}/errors",
            permission=PERM_SIS_IMPORT,
            params=params,
            key="sis_import_errors",
        ):
            yield SisImportError.from_json(item)

    def abort_sis_import(self, account_id: int | str, import_id: int) -> SisImport:
        response = self._t.request(
            "PUT", f"/accounts/{_seg(account_id)}/sis_imports/{import_id}/abort", permission=PERM_SIS_IMPORT
        )
        return SisImport.from_json(response.json())

    def restore_states(
        self,
        account_id: int | str,
        import_id: int,
        *,
        batch_mode: bool | None = None,
        undelete_only: bool | None = None,
        unconclude_only: bool | None = None,
    ) -> Progress:
        """Undo the state changes an import made (deletions, conclusions); answers a Progress."""
        form = {
            name: _bool(value)
            for name, value in {
                "batch_mode": batch_mode,
                "undelete_only": undelete_only,
                "unconclude_only": unconclude_only,
            }.items()
            if value is not None
        }
        response = self._t.request(
            "PUT",
            f"/accounts/{_seg(account_id)}/sis_imports/{import_id}/restore_states",
            permission=PERM_SIS_IMPORT,
            data=form,
        )
        return Progress.from_json(response.json())

    def get_progress(self, progress_id: int) -> Progress:
        """A Progress by id (GET progress/:id; canvas-lms app/controllers/progress_controller.rb#show): queued,
        running, completed, failed or canceled (app/models/progress.rb's workflow), with `completion` 0-100."""
        return Progress.from_json(self._t.get_json(f"/progress/{int(progress_id)}", permission=PERM_SIS_IMPORT))

    # --- Account ----------------------------------------------------------------------------

    def get_account(self, account_id: int | str) -> AccountJson:
        """The account's JSON (id, name, parent and root account ids); any account role may read it."""
        account: AccountJson = self._t.get_json(f"/accounts/{_seg(account_id)}", permission="read")
        return account

    def account_permissions(self, account_id: int | str, names: list[str]) -> dict[str, bool]:
        """Whether the token's user holds each named Canvas permission on the account."""
        answer = self._t.get_json(
            f"/accounts/{_seg(account_id)}/permissions",
            permission="read",
            params=[("permissions[]", name) for name in names],
        )
        # Canvas documents string values ('true'/'false') in its example and sends JSON booleans.
        return {name: answer.get(name) in (True, "true") for name in names}

    # --- Roster reads ------------------------------------------------------------------------

    def get_self(self) -> User:
        """The API user this token acts as (GET users/self: Canvas resolves "self" to the caller,
        canvas-lms app/controllers/users_controller.rb `api_show`). Its id is the `user.id` Canvas puts on
        each SIS import that user created (lib/api/v1/sis_import.rb `sis_import_json`)."""
        return User.from_json(self._t.get_json("/users/self", permission=PERM_ROSTER))

    def iter_users(self, account_id: int | str, *, include_deleted: bool = False) -> Iterator[User]:
        """Users of an account, with sis_user_id and login_id (needs read_sis / view_user_logins)."""
        params: dict[str, Any] = {"per_page": self.per_page}
        if include_deleted:
            params["include_deleted_users"] = "true"
        for item in self._t.paginate(f"/accounts/{_seg(account_id)}/users", permission=PERM_ROSTER, params=params):
            yield User.from_json(item)

    def iter_courses(self, account_id: int | str, *, states: list[str] | None = None) -> Iterator[Course]:
        params: list[tuple[str, Any]] = [("per_page", self.per_page), ("include[]", "term")]
        params += [("state[]", s) for s in states or []]
        for item in self._t.paginate(
            f"/accounts/{_seg(account_id)}/courses", permission=PERM_COURSE_LIST, params=params
        ):
            yield Course.from_json(item)

    def iter_sections(self, course_id: int | str) -> Iterator[Section]:
        for item in self._t.paginate(
            f"/courses/{_seg(course_id)}/sections", permission=PERM_ROSTER, params={"per_page": self.per_page}
        ):
            yield Section.from_json(item)

    def iter_enrollments(
        self,
        *,
        course_id: int | str | None = None,
        section_id: int | str | None = None,
        states: list[str] | None = None,
    ) -> Iterator[Enrollment]:
        """Enrollments of one course or one section (give exactly one)."""
        if course_id is not None and section_id is None:
            path = f"/courses/{_seg(course_id)}/enrollments"
        elif section_id is not None and course_id is None:
            path = f"/sections/{_seg(section_id)}/enrollments"
        else:
            raise ValueError("give exactly one of course_id and section_id")
        params: list[tuple[str, Any]] = [("per_page", self.per_page)]
        params += [("state[]", s) for s in states or []]
        for item in self._t.paginate(path, permission=PERM_ROSTER, params=params):
            yield Enrollment.from_json(item)

    # --- Grades ------------------------------------------------------------------------------

    def iter_assignments(self, course_id: int | str) -> Iterator[Assignment]:
        for item in self._t.paginate(
            f"/courses/{_seg(course_id)}/assignments",
            permission=PERM_ASSIGNMENTS,
            params={"per_page": self.per_page},
        ):
            yield Assignment.from_json(item)

    def assignment_groups(self, course_id: int | str) -> dict[int, str]:
        """The course's assignment groups, id -> name (GET /courses/:id/assignment_groups)."""
        return {
            item["id"]: item.get("name", "")
            for item in self._t.paginate(
                f"/courses/{_seg(course_id)}/assignment_groups",
                permission=PERM_ASSIGNMENTS,
                params={"per_page": self.per_page},
            )
        }

    def assignment_overrides(self, course_id: int | str, assignment_id: int) -> list[dict[str, Any]]:
        """An assignment's "assign to" overrides: student_ids or course_section_id each."""
        return list(
            self._t.paginate(
                f"/courses/{_seg(course_id)}/assignments/{int(assignment_id)}/overrides",
                permission=PERM_ASSIGNMENTS,
                params={"per_page": self.per_page},
            )
        )

    def iter_submissions(
        self, course_id: int | str, *, graded_since: datetime | None = None, student_ids: str = "all"
    ) -> Iterator[Submission]:
        """Submissions of every student in a course, optionally only those graded since a moment."""
        params: list[tuple[str, Any]] = [("per_page", self.per_page), ("student_ids[]", student_ids)]
        if graded_since is not None:
            params.append(("graded_since", _iso(graded_since)))
        for item in self._t.paginate(
            f"/courses/{_seg(course_id)}/students/submissions", permission=PERM_GRADES, params=params
        ):
            yield Submission.from_json(item)
