"""A district's roster policy as plain data, with the rules that need nothing else (no Django, no records).

conversion.models.RosterPolicy stores one per district; conversion.services.roster applies it."""

from __future__ import annotations

import datetime as dt
import string
from collections.abc import Mapping
from dataclasses import dataclass, field

# ---- the district's roster policy, as plain data (conversion.models.RosterPolicy stores and audits it) -----------
# Canvas's enrollment statuses in enrollments.csv (canvas-lms lib/sis/csv/enrollment_importer.rb: active, deleted,
# completed, inactive, deleted_last_completed); a student who left is never sent `active`.
DEPARTED_STATUSES = ("inactive", "completed", "deleted")
# What Canvas does with a row missing from a diffed import (lib/sis/csv/diff_generator.rb via the sis_imports API's
# diffing_drop_status: deleted, completed, inactive).
DROP_STATUSES = ("inactive", "completed", "deleted")
# PowerSchool's section staff roles. SIF 2.x gives TeacherList only StaffPersonalRefIds, no role (SectionInfo/
# ScheduleInfo/TeacherList in the US 2.4 XSD, /work/shared/sif/xsd/openzis_us_2_4/SIF_Message.xsd.xml); the role is
# read from the person's StaffAssignment (Description, JobFunction/Code), else from the position in the list:
# PowerSchool publishes the lead teacher first, co-teachers after.
TEACHER_ROLES = ("lead", "co_teacher", "job_share", "aide", "observer")
# Canvas's base enrollment roles (enrollment_importer.rb: role is student, teacher, ta, observer, designer or a
# custom role name).
CANVAS_ROLES = ("teacher", "ta", "designer", "observer", "student")
DEFAULT_ROLE_MAP = {
    "lead": "teacher",
    "co_teacher": "teacher",
    "job_share": "teacher",
    "aide": "ta",
    "observer": "observer",
}
COURSE_GROUPINGS = ("section", "combined")
COURSE_ID_FIELDS = (
    "section_local_id",
    "section_dcid",
    "course_code",
    "term_code",
    "school_year",
    "teacher_local_id",
    "school_local_id",
)
LOGIN_RULES = ("email", "local_id", "dcid", "state_id", "pattern")
LOGIN_FIELDS = ("local_id", "dcid", "state_id", "email", "first_name", "last_name")


def pattern_fields(pattern: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}


@dataclass(frozen=True)
class Policy:
    """How one district's PowerSchool roster becomes Canvas's: the defaults are what most districts want."""

    departed_status: str = "inactive"  # a student whose exit date has passed before the term's end
    drop_status: str = "inactive"  # diffing_drop_status of the nightly import
    role_map: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLE_MAP))
    course_grouping: str = "section"
    course_id_pattern: str = "sec_{section_local_id}"
    login_rule: str = "email"  # students' logins
    login_pattern: str = ""
    staff_login_rule: str = "email"  # teachers' logins: email, local_id, dcid or state_id

    def canvas_role(self, teacher_role: str) -> str:
        return self.role_map.get(teacher_role) or DEFAULT_ROLE_MAP.get(teacher_role, "teacher")

    def key(self) -> str:
        roles = ",".join(f"{k}={self.canvas_role(k)}" for k in TEACHER_ROLES)
        return "|".join(
            (
                self.departed_status,
                roles,
                self.course_grouping,
                self.course_id_pattern,
                self.login_rule,
                self.login_pattern,
                self.staff_login_rule,
            )
        )

    def login_for(self, person) -> str:
        """The login the sync writes for `person`; "" when the rule gives none (the caller falls back)."""
        values = {
            "local_id": person.local_id,
            "dcid": person.dcid,
            "state_id": person.state_id,
            "email": person.email,
            "first_name": person.first_name,
            "last_name": person.last_name,
        }
        rule = self.staff_login_rule if person.kind == "teacher" else self.login_rule
        if rule == "pattern":
            if any(not values.get(name) for name in pattern_fields(self.login_pattern)):
                return ""
            return self.login_pattern.format(**values).lower()
        return values.get(rule, "") or ""


def enrollment_status(
    entry: str | None, exit: str | None, term_end: str | None, as_of: dt.date, departed_status: str
) -> str:
    """Canvas status of a student enrollment from PowerSchool's dates.

    StudentSectionEnrollment/StudentSchoolEnrollment ExitDate is the day the student is no longer enrolled
    (SIF US 2.4 XSD: ExitDate "date of the student's withdrawal"); PowerSchool publishes the term's last day for
    students who stay. An exit on or before `as_of` that comes before the term's end is a student who left:
    the district's `departed_status`; one at the term's end is a finished course: `completed` (Canvas's
    concluded enrollment, lib/sis/csv/enrollment_importer.rb). Anything else is `active`."""
    if exit and dt.date.fromisoformat(exit) <= as_of:
        if term_end and exit >= term_end:
            return "completed"
        return departed_status
    return "active"
