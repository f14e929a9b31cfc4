"""What Canvas held before the conversion, for the demo and the tests: the legacy roster, keyed by
PowerSchool IDs, built from the same simulated district the ZIS simulator serves.

Two legacy Canvases:
- `write_legacy_zip` goes through the same Roster and CSV code as the real sync (only the user id scheme
  differs), plus users who left the district but are still in Canvas: the mapping check finds little to do;
- `write_integration_zip` is what a real legacy integration left behind, from its own description
  (`LegacyIntegration`): its own term, course and section ids, its own logins, a cross-listed course, co-teachers
  enrolled as plain teachers, and a student who left in the spring still active. It reads the simulated district's
  records itself, not through the Roster, so a wrong rule in the new sync shows against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from canvas.csv_rows import AccountRow, CourseRow, EnrollmentRow, SectionRow, TermRow, UserRow
from conversion.services.roster import LEGACY, Roster, Row
from conversion.services.sifdata import record_data
from conversion.services.sis_csv import _Builder, write_package
from sifclient.powerschool import District as SimulatedDistrict
from sifclient.powerschool import DistrictSpec


class GeneratorSource:
    """Records straight from the simulated district generator (no ZIS, no database)."""

    def __init__(self, spec: DistrictSpec):
        self.district = SimulatedDistrict(spec)

    def rows(self, object_name: str, fields: tuple[str, ...] | None = None) -> Iterable[Row]:
        for _, record in self.district.iter_records(object_name):
            data = record_data(record)
            extended = data.get("extended_elements") or {}
            yield (
                str(data.get("ref_id") or ""),  # (SifRecord, the base, names no RefId: each object has its own)
                str(data.get("local_id") or ""),
                str(extended.get("DCID") or ""),
                data.get("school_year"),
                data,
            )


def departed_users(count: int) -> Iterator[UserRow]:
    for i in range(count):
        number = str(990000 + i)
        yield UserRow(
            user_id=number,
            login_id=f"former{number}@students.example.org",
            first_name="Former",
            last_name=f"Student {i + 1}",
            status="active",
        )


def write_legacy_zip(spec: DistrictSpec, dest: Path, *, departed: int = 3) -> dict[str, int]:
    """Write the legacy Canvas state (users under their PowerSchool IDs) as an SIS import zip."""
    roster = Roster(GeneratorSource(spec), school_year=spec.school_year)
    builder = _Builder(roster, LEGACY)
    write_package(dest, builder.files(extra_users=departed_users(departed)))
    counts = dict(builder.counts)
    counts["users"] = counts.get("users", 0) + departed
    return counts


@dataclass(frozen=True)
class LegacyIntegration:
    """How a district's previous roster integration named things in Canvas (format fields of str.format)."""

    term_id: str = "T{school_year}-{term_code}"
    course_id: str = "{school_year}-{course_code}-{section_local_id}"
    section_id: str = "S{section_local_id}"
    student_login: str = "{local_id}@students.example.org"  # the SSO's student names
    staff_login: str = "{email}"
    crosslisted_courses: int = 1  # courses whose first two sections the legacy integration put in one course
    departed_users: int = 3  # users gone from PowerSchool, still in Canvas


def write_integration_zip(spec: DistrictSpec, dest: Path, integration: LegacyIntegration | None = None) -> dict:
    """Write the legacy Canvas a legacy integration made of the simulated district, as one SIS import zip.

    Enrollments are all `active` (the legacy integration never read exit dates: a student who left in the spring is
    still active), every teacher of a section is a `teacher`, users are under their PowerSchool ID."""
    it = integration or LegacyIntegration()
    district = SimulatedDistrict(spec)
    year = spec.school_year

    def current(object_name):
        return [r for _, r in district.iter_records(object_name) if getattr(r, "school_year", year) in (None, year)]

    schools = {r.ref_id: r for r in current("SchoolInfo")[: spec.schools]}
    terms = {r.ref_id: r for r in current("TermInfo")}
    courses = {r.ref_id: r for r in current("SchoolCourseInfo")}
    staff = {r.ref_id: r for r in current("StaffPersonal")}
    students = {r.ref_id: r for r in current("StudentPersonal")}
    sections = [r for r in current("SectionInfo") if r.course_ref_id in courses]
    rows: dict[str, list] = {k: [] for k in ("accounts", "terms", "courses", "sections", "users", "enrollments")}
    for school in schools.values():
        rows["accounts"].append(AccountRow(account_id=f"school_{school.local_id}", name=school.name))
    term_ids = {}
    for term in terms.values():
        term_ids[term.ref_id] = it.term_id.format(school_year=year, term_code=term.term_code)
        rows["terms"].append(
            TermRow(
                term_id=term_ids[term.ref_id], name=term.description, start_date=term.start_date, end_date=term.end_date
            )
        )
    crosslisted: dict[str, str] = {}  # section ref -> the course id it shares
    by_course: dict[str, list] = {}
    for section in sections:
        by_course.setdefault(section.course_ref_id, []).append(section)
    for course_ref in list(by_course)[: it.crosslisted_courses]:
        first, second = by_course[course_ref][:2]
        shared = f"XL-{first.local_id}-{second.local_id}"
        crosslisted[first.ref_id] = crosslisted[second.ref_id] = shared
    made_courses = set()
    for section in sections:
        course = courses[section.course_ref_id]
        term_ref = section.schedules[0].term_ref_id if section.schedules else None
        course_id = crosslisted.get(section.ref_id) or it.course_id.format(
            school_year=year, course_code=course.course_code, section_local_id=section.local_id
        )
        school = schools[course.school_ref_id]
        if course_id not in made_courses:
            made_courses.add(course_id)
            rows["courses"].append(
                CourseRow(
                    course_id=course_id,
                    short_name=f"{course.course_code} {section.local_id}",
                    long_name=section.description,
                    account_id=f"school_{school.local_id}",
                    term_id=term_ids.get(term_ref),
                )
            )
        section_id = it.section_id.format(section_local_id=section.local_id)
        rows["sections"].append(SectionRow(section_id=section_id, course_id=course_id, name=section.description))
        for schedule in section.schedules:
            for teacher_ref in schedule.teacher_ref_ids:
                if teacher_ref in staff:
                    rows["enrollments"].append(
                        EnrollmentRow(
                            section_id=section_id, user_id=staff[teacher_ref].local_id, role="teacher", status="active"
                        )
                    )
    section_ids = {s.ref_id: it.section_id.format(section_local_id=s.local_id) for s in sections}
    for enrollment in current("StudentSectionEnrollment"):
        student = students.get(enrollment.student_ref_id)
        if student and enrollment.section_ref_id in section_ids:
            rows["enrollments"].append(
                EnrollmentRow(
                    section_id=section_ids[enrollment.section_ref_id],
                    user_id=student.local_id,
                    role="student",
                    status="active",
                )
            )
    for person in staff.values():
        email = person.email_choice.chosen or ""
        rows["users"].append(
            UserRow(
                user_id=person.local_id,
                login_id=it.staff_login.format(email=email, local_id=person.local_id),
                first_name=person.first_name,
                last_name=person.last_name,
                email=email or None,
                status="active",
            )
        )
    for person in students.values():
        rows["users"].append(
            UserRow(
                user_id=person.local_id,
                login_id=it.student_login.format(local_id=person.local_id, email=person.email),
                first_name=person.first_name,
                last_name=person.last_name,
                email=person.email_choice.chosen or None,
                status="active",
            )
        )
    rows["users"].extend(departed_users(it.departed_users))
    write_package(dest, [(f"{kind}.csv", kind, kind_rows) for kind, kind_rows in rows.items()])
    return {kind: len(kind_rows) for kind, kind_rows in rows.items()}
