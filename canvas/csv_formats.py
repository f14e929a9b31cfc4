"""The SIS import CSV formats Canvas documents, in one place.

Both the writers (what we send) and the simulator (what it accepts) read these specs, so the two
can never disagree about a column name, a required column or an allowed status value. The source is
/work/shared/canvas/sis_csv_formats.md (Canvas's doc/api/sis_csv.md and lib/sis/csv/*_importer.rb).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CsvFormat:
    """One SIS import file type: its documented columns in order and the rules on their values."""

    kind: str
    file_name: str
    columns: tuple[str, ...]
    required: frozenset[str]
    # Groups where at least one column must hold a value (Canvas's "R*": course_id OR section_id).
    one_of: tuple[frozenset[str], ...] = ()
    statuses: frozenset[str] = frozenset()
    # Columns whose values Canvas reads as booleans.
    booleans: frozenset[str] = frozenset()
    # Columns holding ISO 8601 timestamps.
    dates: frozenset[str] = frozenset()
    # Other columns with a closed set of values.
    choices: dict[str, frozenset[str]] = field(default_factory=dict)


USERS = CsvFormat(
    kind="users",
    file_name="users.csv",
    columns=(
        "user_id", "integration_id", "login_id", "authentication_provider_id", "password",
        "ssha_password", "first_name", "last_name", "full_name", "sortable_name", "short_name",
        "email", "pronouns", "declared_user_type", "canvas_password_notification", "home_account",
        "status",
    ),
    required=frozenset({"user_id", "login_id", "status"}),
    statuses=frozenset({"active", "suspended", "deleted"}),
    booleans=frozenset({"canvas_password_notification", "home_account"}),
    choices={
        "declared_user_type": frozenset(
            {"administrative", "observer", "staff", "student", "student_other", "teacher", "<delete>"}
        ),
    },
)

ACCOUNTS = CsvFormat(
    kind="accounts",
    file_name="accounts.csv",
    columns=("account_id", "parent_account_id", "name", "status", "integration_id"),
    # parent_account_id must be present as a column, but its value may be blank (= the root account).
    required=frozenset({"account_id", "parent_account_id", "name", "status"}),
    statuses=frozenset({"active", "deleted"}),
)

TERMS = CsvFormat(
    kind="terms",
    file_name="terms.csv",
    columns=(
        "term_id", "name", "status", "integration_id", "date_override_enrollment_type",
        "start_date", "end_date",
    ),
    required=frozenset({"term_id", "name", "status"}),
    statuses=frozenset({"active", "deleted"}),
    dates=frozenset({"start_date", "end_date"}),
    choices={
        "date_override_enrollment_type": frozenset(
            {"StudentEnrollment", "TeacherEnrollment", "TaEnrollment", "DesignerEnrollment"}
        ),
    },
)

COURSES = CsvFormat(
    kind="courses",
    file_name="courses.csv",
    columns=(
        "course_id", "short_name", "long_name", "account_id", "term_id", "status", "integration_id",
        "start_date", "end_date", "course_format", "blueprint_course_id", "grade_passback_setting",
        "homeroom_course", "friendly_name", "abstract_course_id",
    ),
    required=frozenset({"course_id", "short_name", "long_name", "status"}),
    statuses=frozenset({"active", "deleted", "completed", "published"}),
    booleans=frozenset({"homeroom_course"}),
    dates=frozenset({"start_date", "end_date"}),
    choices={
        "course_format": frozenset({"on_campus", "online", "blended"}),
        "grade_passback_setting": frozenset({"nightly_sync", "not_set"}),
    },
)

SECTIONS = CsvFormat(
    kind="sections",
    file_name="sections.csv",
    columns=("section_id", "course_id", "name", "status", "integration_id", "start_date", "end_date"),
    required=frozenset({"section_id", "course_id", "name", "status"}),
    statuses=frozenset({"active", "deleted"}),
    dates=frozenset({"start_date", "end_date"}),
)

ENROLLMENTS = CsvFormat(
    kind="enrollments",
    file_name="enrollments.csv",
    columns=(
        "course_id", "section_id", "user_id", "user_integration_id", "role", "role_id", "status",
        "associated_user_id", "root_account", "start_date", "end_date", "limit_section_privileges",
        "notify", "temporary_enrollment_source_user_id",
    ),
    required=frozenset({"status"}),
    one_of=(
        frozenset({"course_id", "section_id"}),
        frozenset({"user_id", "user_integration_id"}),
        frozenset({"role", "role_id"}),
    ),
    statuses=frozenset({"active", "deleted", "completed", "inactive", "deleted_last_completed"}),
    booleans=frozenset({"limit_section_privileges", "notify"}),
    dates=frozenset({"start_date", "end_date"}),
)

CHANGE_SIS_ID = CsvFormat(
    kind="change_sis_id",
    file_name="change_sis_id.csv",
    columns=("old_id", "new_id", "old_integration_id", "new_integration_id", "type"),
    required=frozenset({"type"}),
    one_of=(
        frozenset({"old_id", "old_integration_id"}),
        frozenset({"new_id", "new_integration_id"}),
    ),
    choices={
        "type": frozenset({"account", "term", "course", "section", "group", "group_category", "user"}),
    },
)

FORMATS: dict[str, CsvFormat] = {
    f.kind: f for f in (CHANGE_SIS_ID, ACCOUNTS, TERMS, COURSES, SECTIONS, USERS, ENROLLMENTS)
}

# Canvas's importer order (lib/sis/csv/import.rb IMPORTERS), restricted to the kinds we handle.
PROCESSING_ORDER: tuple[str, ...] = (
    "change_sis_id", "accounts", "terms", "courses", "sections", "users", "enrollments",
)

BOOLEAN_TRUE = frozenset({"true", "1", "yes", "on"})
BOOLEAN_VALUES = BOOLEAN_TRUE | frozenset({"false", "0", "no", "off"})


def detect_kind(header: list[str]) -> str | None:
    """Return the file kind Canvas would pick for this header row, or None.

    Mirrors the `*_csv?(row)` class methods of Canvas's importers, tried in importer order;
    header names are compared downcased and stripped, as Canvas's PARSE_ARGS do.
    """
    names = {h.strip().lower() for h in header if h is not None}
    if "old_id" in names or "old_integration_id" in names:
        return "change_sis_id"
    if "account_id" in names and "parent_account_id" in names:
        return "accounts"
    if "term_id" in names and "name" in names:
        return "terms"
    if "course_id" in names and "short_name" in names:
        return "courses"
    if "section_id" in names and "name" in names:
        return "sections"
    login_columns = {"existing_user_id", "existing_integration_id", "existing_canvas_user_id"}
    if "user_id" in names and "login_id" in names and not names & login_columns:
        return "users"
    if names & {"section_id", "course_id"} and names & {"user_id", "user_integration_id"}:
        return "enrollments"
    return None
