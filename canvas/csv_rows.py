"""Typed rows for each SIS import file, validated on construction.

A row that Canvas would reject (a blank required column, a status it does not know, a bad date)
raises ValueError naming the file and column here, at the point where the bad value was produced,
instead of surfacing hours later as a warning in a nightly import.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import ClassVar

from canvas.csv_formats import (
    ACCOUNTS,
    BOOLEAN_VALUES,
    CHANGE_SIS_ID,
    COURSES,
    ENROLLMENTS,
    SECTIONS,
    TERMS,
    USERS,
    CsvFormat,
)

# A cell may be given as text, a bool (boolean columns) or a date/datetime (date columns).
Cell = str | bool | date | datetime | None

# Columns that may be present with a blank value although Canvas requires the column itself.
_BLANK_ALLOWED = {("accounts", "parent_account_id")}


def format_date(value: date | datetime) -> str:
    """ISO 8601 as Canvas's docs show it: `YYYY-MM-DDTHH:MM:SSZ` (UTC) or `YYYY-MM-DD`."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a timezone so Canvas does not guess one")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat()


def _check_date_text(text: str) -> None:
    # datetime.fromisoformat accepts the `Z` suffix since Python 3.11.
    datetime.fromisoformat(text)


@dataclass(frozen=True, kw_only=True)
class SisRow:
    """Base of every row type; subclasses are dataclasses whose fields are the documented columns."""

    FORMAT: ClassVar[CsvFormat]

    def __post_init__(self) -> None:
        fmt = self.FORMAT
        for f in fields(self):
            object.__setattr__(self, f.name, self._normalise(f.name, getattr(self, f.name)))
        for column in sorted(fmt.required):
            if (fmt.kind, column) not in _BLANK_ALLOWED and not getattr(self, column):
                raise ValueError(f"{fmt.file_name}: column '{column}' is required and is blank")
        for group in fmt.one_of:
            if not any(getattr(self, c) for c in group):
                names = " or ".join(sorted(group))
                raise ValueError(f"{fmt.file_name}: one of columns {names} must be given")
        status = getattr(self, "status", None)
        if fmt.statuses and status not in fmt.statuses:
            allowed = ", ".join(sorted(fmt.statuses))
            raise ValueError(f"{fmt.file_name}: column 'status' is {status!r}, not one of {allowed}")
        for column, allowed_values in fmt.choices.items():
            value = getattr(self, column)
            if value and value not in allowed_values:
                allowed = ", ".join(sorted(allowed_values))
                raise ValueError(f"{fmt.file_name}: column '{column}' is {value!r}, not one of {allowed}")

    def _normalise(self, column: str, value: Cell) -> str | None:
        fmt = self.FORMAT
        if value is None or value == "":
            return None
        if column in fmt.booleans:
            if isinstance(value, bool):
                return "true" if value else "false"
            if str(value).lower() not in BOOLEAN_VALUES:
                raise ValueError(f"{fmt.file_name}: column '{column}' is {value!r}, not a boolean")
            return str(value).lower()
        if column in fmt.dates:
            if isinstance(value, (date, datetime)):
                try:
                    return format_date(value)
                except ValueError as exc:
                    raise ValueError(f"{fmt.file_name}: column '{column}': {exc}") from None
            text = str(value)
            if text != "<delete>":
                try:
                    _check_date_text(text)
                except ValueError:
                    raise ValueError(f"{fmt.file_name}: column '{column}' is {text!r}, not an ISO 8601 date") from None
            return text
        if not isinstance(value, str):
            raise ValueError(f"{fmt.file_name}: column '{column}' must be text, got {type(value).__name__}")
        if "\x00" in value:
            raise ValueError(f"{fmt.file_name}: column '{column}' contains a NUL character")
        return value

    def cells(self, columns: tuple[str, ...] | None = None) -> list[str]:
        """The row's values in `columns` order (default: every documented column), blanks as ''."""
        return [getattr(self, c) or "" for c in (columns or self.FORMAT.columns)]


@dataclass(frozen=True, kw_only=True)
class UserRow(SisRow):
    FORMAT: ClassVar[CsvFormat] = USERS
    user_id: str
    integration_id: str | None = None
    login_id: str
    authentication_provider_id: str | None = None
    password: str | None = None
    ssha_password: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    sortable_name: str | None = None
    short_name: str | None = None
    email: str | None = None
    pronouns: str | None = None
    declared_user_type: str | None = None
    canvas_password_notification: Cell = None
    home_account: Cell = None
    status: str = "active"


@dataclass(frozen=True, kw_only=True)
class AccountRow(SisRow):
    FORMAT: ClassVar[CsvFormat] = ACCOUNTS
    account_id: str
    parent_account_id: str | None = None
    name: str
    status: str = "active"
    integration_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class TermRow(SisRow):
    FORMAT: ClassVar[CsvFormat] = TERMS
    term_id: str
    name: str
    status: str = "active"
    integration_id: str | None = None
    date_override_enrollment_type: str | None = None
    start_date: Cell = None
    end_date: Cell = None


@dataclass(frozen=True, kw_only=True)
class CourseRow(SisRow):
    FORMAT: ClassVar[CsvFormat] = COURSES
    course_id: str
    short_name: str
    long_name: str
    account_id: str | None = None
    term_id: str | None = None
    status: str = "active"
    integration_id: str | None = None
    start_date: Cell = None
    end_date: Cell = None
    course_format: str | None = None
    blueprint_course_id: str | None = None
    grade_passback_setting: str | None = None
    homeroom_course: Cell = None
    friendly_name: str | None = None
    abstract_course_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class SectionRow(SisRow):
    FORMAT: ClassVar[CsvFormat] = SECTIONS
    section_id: str
    course_id: str
    name: str
    status: str = "active"
    integration_id: str | None = None
    start_date: Cell = None
    end_date: Cell = None


@dataclass(frozen=True, kw_only=True)
class EnrollmentRow(SisRow):
    FORMAT: ClassVar[CsvFormat] = ENROLLMENTS
    course_id: str | None = None
    root_account: str | None = None
    start_date: Cell = None
    end_date: Cell = None
    user_id: str | None = None
    user_integration_id: str | None = None
    role: str | None = None
    role_id: str | None = None
    section_id: str | None = None
    status: str = "active"
    associated_user_id: str | None = None
    limit_section_privileges: Cell = None
    notify: Cell = None
    temporary_enrollment_source_user_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class ChangeSisIdRow(SisRow):
    FORMAT: ClassVar[CsvFormat] = CHANGE_SIS_ID
    old_id: str | None = None
    new_id: str | None = None
    old_integration_id: str | None = None
    new_integration_id: str | None = None
    type: str


ROW_TYPES: dict[str, type[SisRow]] = {
    cls.FORMAT.kind: cls for cls in (UserRow, AccountRow, TermRow, CourseRow, SectionRow, EnrollmentRow, ChangeSisIdRow)
}
