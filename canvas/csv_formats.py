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
        "user_id",
        "integration_id",
        "login_id",
        "authentication_provider_id",
        "password",
        "ssha_password",
        "first_name",
        "last_name",
        "full_name",
        "sortable_name",
        "short_name",
        "email",
        "pronouns",
        "declared_user_type",
        "canvas_password_notification",
        "home_account",
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
        "term_id",
        "name",
        "status",
        "integration_id",
        "date_override_enrollment_type",
        "start_date",
        "end_date",
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
        "course_id",
        "short_name",
        "long_name",
        "account_id",
        "term_id",
        "status",
        "integration_id",
        "start_date",
        "end_date",
        "course_format",
        "blueprint_course_id",
        "grade_passback_setting",
        "homeroom_course",
        "friendly_name",
        "abstract_course_id",
    ),
    required=frozenset({"course_id", "short_name", "long_name", "status"}),
    statuses=frozenset({"active", "deleted", "completed", "published"}),
    booleans=frozenset({"homeroom_course"}),
    dates=frozenset({"start_date", "end_date"}),
    choices={
        "course_format": frozenset({"on_campus", "online", "blended"}),
        # lib/sis/course_importer.rb `add_course`: valid_grade_passback_settings.
        "grade_passback_setting": frozenset({"nightly_sync", "disabled", "not_set"}),
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
        "course_id",
        "section_id",
        "user_id",
        "user_integration_id",
        "role",
        "role_id",
        "status",
        "associated_user_id",
        "root_account",
        "start_date",
        "end_date",
        "limit_section_privileges",
        "notify",
        "temporary_enrollment_source_user_id",
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

# ---- What an empty cell does in Canvas, column by column ------------------------------------------------
# canvas-lms reads every cell through `converters: ->(field) { field&.strip&.presence }`
# (lib/sis/csv/csv_base_importer.rb, CSVBaseImporter::PARSE_ARGS), so an empty cell and a missing column both
# reach the importer as nil, except where an importer checks whether the column is there at all. The writer
# (canvas.csvfiles.write_csv) leaves out every non-required column no row fills; this table is why that is
# safe, and which columns it cannot protect (a nil there changes Canvas whether the column is sent or not: the
# product must send the right value). KEEPS: a nil leaves Canvas's value as it is. CLEARS: a nil erases it.
KEEPS, CLEARS, CLEARS_EVEN_IF_OMITTED = "keeps", "clears", "clears even if the column is omitted"
BLANK_CELLS: dict[str, dict[str, tuple[str, str]]] = {
    "users": {
        # lib/sis/user_importer.rb, Work#process_batch
        "integration_id": (KEEPS, "set only when present"),
        "authentication_provider_id": (
            CLEARS_EVEN_IF_OMITTED,
            "nil sets pseudo.authentication_provider = nil: the login is unbound from "
            "its sign-in provider; the product sends the district's provider on every row",
        ),
        "password": (KEEPS, "used only when present"),
        "ssha_password": (KEEPS, "used only when present"),
        "first_name": (KEEPS, "infer_user_name falls back to the user's prior name"),
        "last_name": (KEEPS, "infer_user_name falls back to the user's prior name"),
        "full_name": (KEEPS, "infer_user_name falls back to the user's prior name"),
        "sortable_name": (KEEPS, "infer_sortable_name: from full_name or first/last, else the prior one"),
        "short_name": (KEEPS, "set only when present"),
        "email": (KEEPS, "communication channel touched only when present"),
        "pronouns": (KEEPS, "set only when present (<delete> clears)"),
        "declared_user_type": (KEEPS, "set only when present (<delete> clears)"),
        "canvas_password_notification": (KEEPS, "read only for a new user with provider 'canvas'"),
        "home_account": (KEEPS, "not read by the users importer; left out when blank"),
    },
    "accounts": {
        # lib/sis/account_importer.rb, Work#add_account
        "parent_account_id": (
            CLEARS_EVEN_IF_OMITTED,
            "a required column; nil puts the account straight under the "
            "root account: the product sends the district's parent",
        ),
        "name": (KEEPS, "set only when present"),
        "status": (KEEPS, "workflow_state changed only when present"),
        "integration_id": (CLEARS_EVEN_IF_OMITTED, "account.integration_id assigned from the row"),
    },
    "terms": {
        # lib/sis/term_importer.rb, Work#add_term
        "integration_id": (CLEARS_EVEN_IF_OMITTED, "term.integration_id assigned from the row"),
        "date_override_enrollment_type": (KEEPS, "an override row only when present"),
        "start_date": (CLEARS, "term.start_at assigned unless stuck"),
        "end_date": (CLEARS, "term.end_at assigned unless stuck"),
    },
    "courses": {
        # lib/sis/course_importer.rb, Work#add_course
        "account_id": (KEEPS, "account changed only when present"),
        "term_id": (KEEPS, "term changed only when present"),
        "integration_id": (CLEARS_EVEN_IF_OMITTED, "course.integration_id assigned from the row"),
        "start_date": (
            CLEARS,
            "an absent column is 'not_present' and keeps; a blank cell clears start_at and "
            "restrict_enrollments_to_course_dates",
        ),
        "end_date": (CLEARS, "as start_date, for conclude_at"),
        "course_format": (KEEPS, "changed only when given (`if course_format`); 'not_set' clears"),
        "blueprint_course_id": (KEEPS, "blueprint association touched only when given"),
        "grade_passback_setting": (KEEPS, "changed only when given; 'not_set' clears"),
        "homeroom_course": (KEEPS, "changed only when given"),
        "friendly_name": (KEEPS, "set only when present (K-5 accounts)"),
        "abstract_course_id": (CLEARS_EVEN_IF_OMITTED, "course.abstract_course assigned from the row"),
    },
    "sections": {
        # lib/sis/section_importer.rb, Work#add_section
        "integration_id": (CLEARS_EVEN_IF_OMITTED, "section.integration_id assigned from the row"),
        "start_date": (CLEARS, "section.start_at assigned unless stuck"),
        "end_date": (CLEARS, "section.end_at assigned unless stuck"),
    },
    "enrollments": {
        # lib/sis/enrollment_importer.rb, Work#process_batch
        "start_date": (CLEARS, "enrollment.start_at assigned unless stuck"),
        "end_date": (CLEARS, "enrollment.end_at assigned unless stuck"),
        "limit_section_privileges": (KEEPS, "changed only when given"),
        "associated_user_id": (KEEPS, "used only for observer rows"),
        "temporary_enrollment_source_user_id": (
            CLEARS_EVEN_IF_OMITTED,
            "assigned from the row when temporary enrollments are on",
        ),
        "notify": (KEEPS, "notification sent only when true"),
        "root_account": (KEEPS, "looks the user up in another (trusted) root account only when given"),
    },
}


# Canvas's importer order (lib/sis/csv/import.rb IMPORTERS), restricted to the kinds we handle.
PROCESSING_ORDER: tuple[str, ...] = (
    "change_sis_id",
    "accounts",
    "terms",
    "courses",
    "sections",
    "users",
    "enrollments",
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
