"""What Canvas should hold, read from a pulled snapshot: schools, terms, courses, people, enrollments.

One place decides what is in scope (the conversion's school year, the schools the district wants) and
how SIF identifiers become Canvas SIS ids, so the mapping check, the remap, the nightly sync, grade
passback and the demo's legacy Canvas all agree.

Canvas SIS ids:
- account: ``school_<school number>``; term: ``<school year>_<term code>``;
- course and its one section: ``sec_<PowerSchool section id>`` (SectionInfo LocalId, which agent.cfg
  mappings do not affect);
- user: the PowerSchool ID (student number or teacher number) before the remap, the DCID after it.

E-mail (and the Canvas login made from it): PowerSchool's primary Email often holds several family
addresses; a person's `email` is the one chosen by sifclient's EMAIL_RULE, the rest stay in `email_choice`
for the mapping and the diagnostics to show. A section keeps every ScheduleInfo: its teachers are those of
all of them, and its Canvas term is that of the first ScheduleInfo whose term is in scope.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from django.db.models.functions import Collate

from conversion.jobs import JobFailed
from conversion.models import SifRecord, Snapshot
from conversion.services.approved_mapping import legacy_course_groups
from conversion.services.roster_tables import SnapshotTables
from conversion.services.sifdata import element_data, iter_stored_elements
from sifclient.errors import SifXmlError
from sifclient.records import RECORD_TYPES, EmailChoice, choose_email

LEGACY, DCID = "legacy", "dcid"
_FIELD_NAMES = {name: {f for f, _, _ in record_type.FIELDS} for name, record_type in RECORD_TYPES.items()}

# The district's roster policy (stored by conversion.models.RosterPolicy) as plain data.
from conversion.roster_rules import (  # noqa: E402
    Policy,
    enrollment_status,
)

_ASSIGNMENT_WORDS = (
    ("job share", "job_share"),
    ("job-share", "job_share"),
    ("aide", "aide"),
    ("paraprofessional", "aide"),
    ("observer", "observer"),
    ("co-teacher", "co_teacher"),
    ("co teacher", "co_teacher"),
)


@dataclass(frozen=True, slots=True)
class Person:
    kind: str  # "student" | "teacher"
    ref_id: str
    local_id: str  # PowerSchool ID: student number or teacher number
    dcid: str
    first_name: str
    last_name: str
    email: str  # the address chosen from PowerSchool's primary Email (EMAIL_RULE), "" when none
    email_choice: EmailChoice = field(default=EmailChoice(None), compare=False)
    state_id: str = ""  # StateProvinceId

    def sis_user_id(self, scheme: str) -> str:
        return self.dcid if scheme == DCID else self.local_id

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class School:
    ref_id: str
    local_id: str
    name: str

    @property
    def account_id(self) -> str:
        return f"school_{self.local_id}"


@dataclass(frozen=True, slots=True)
class Term:
    ref_id: str
    term_id: str
    name: str
    start_date: str | None
    end_date: str | None
    code: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    ref_id: str
    local_id: str
    dcid: str
    name: str
    course_title: str
    course_code: str
    school: School
    term: Term | None  # the first of `terms`: Canvas gives a course one term
    teacher_ref_ids: tuple[str, ...] = field(default=())  # of every ScheduleInfo, each once
    terms: tuple[Term, ...] = field(default=())  # of every ScheduleInfo in scope, in document order
    course_id: str = ""  # the Canvas course it sits in, by the district's course policy (Roster.sections)
    school_year: int | None = None

    def __post_init__(self):
        if not self.course_id:
            object.__setattr__(self, "course_id", f"sec_{self.local_id}")

    @property
    def section_id(self) -> str:
        return f"sec_{self.local_id}"


@dataclass(frozen=True, slots=True)
class Enrollment:
    section: Section
    person: Person
    role: str = ""  # Canvas role: the district's table applied to `teacher_role`; "student" for students
    teacher_role: str = ""  # lead, co_teacher, job_share, aide, observer
    status: str = "active"
    start_date: str | None = None
    end_date: str | None = None

    def __post_init__(self):
        if not self.role:
            object.__setattr__(self, "role", "teacher" if self.person.kind == "teacher" else "student")


Row = tuple[str, str, str, int | None, dict]  # ref_id, local_id, dcid, school_year, data


class RecordSource(Protocol):
    def rows(self, object_name: str, fields: tuple[str, ...] | None = None) -> Iterable[Row]:
        """The records of one object; `fields` names the data fields the caller reads (None: all)."""


class SnapshotSource:
    """Records of a stored snapshot, streamed from the database and parsed a thousand at a time."""

    BATCH = 1000

    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot

    def rows(self, object_name: str, fields: tuple[str, ...] | None = None) -> Iterator[Row]:
        rows = (
            SifRecord.objects.filter(snapshot=self.snapshot, object_name=object_name)
            # Sorted by PostgreSQL, not read along an index: right after a pull the rows sit in the order
            # they arrived, and walking them in RefId order (the one index) read the heap at random:
            # the first CSV build of a 200k district took 308 s instead of 90 s.
            # Byte order ("C"), whatever the database's collation: the same on every server, and the order the
            # joins of roster_tables sort in (the two readings write the same package).
            .order_by(Collate("local_id", "C"), Collate("ref_id", "C"))
            .values_list("ref_id", "local_id", "dcid", "school_year", "xml")
            .iterator(chunk_size=5000)
        )
        while batch := list(itertools.islice(rows, self.BATCH)):
            for (ref_id, local_id, dcid, school_year, _), element in zip(
                batch, iter_stored_elements([row[4] for row in batch]), strict=False
            ):
                try:
                    data = element_data(element, fields)[1]
                except SifXmlError as exc:
                    raise JobFailed(
                        f"{object_name} {local_id or ref_id} in the zone's data is not valid SIF ({exc}). Correct "
                        "it in PowerSchool (or ask the district to), then pull again."
                    ) from exc
                yield ref_id, local_id, dcid, school_year, data


class Roster:
    """A read-only view over one set of SIF records, limited to what the conversion sends to Canvas."""

    def __init__(
        self,
        source: RecordSource | Snapshot,
        *,
        school_year: int,
        expected_school_ids=(),
        policy: Policy | None = None,
        as_of: dt.date | None = None,
        course_groups: dict[str, str] | None = None,
    ):
        self.source = SnapshotSource(source) if isinstance(source, Snapshot) else source
        # Section SIS id -> the course it stays in, whatever the course policy says: the legacy integration's
        # grouping the mapping check learned (approved_mapping.legacy_course_groups).
        self.course_groups = course_groups or {}
        self.year = school_year
        self.expected_school_ids = {str(s) for s in expected_school_ids or ()}
        self.policy = policy or Policy()
        self.as_of = as_of or dt.date.today()

    @classmethod
    def for_snapshot(cls, snapshot: Snapshot, *, as_of: dt.date | None = None) -> Roster:
        from conversion.models import RosterPolicy
        from conversion.workflow import local_today

        conversion = snapshot.conversion

        return cls(
            snapshot,
            school_year=conversion.school_year,
            expected_school_ids=conversion.expected_school_ids,
            policy=RosterPolicy.for_district(conversion.district),
            as_of=as_of or local_today(conversion),
            course_groups=legacy_course_groups(conversion),
        )

    def _rows(self, object_name: str, *fields: str) -> Iterable[Row]:
        if fields and "school_year" in _FIELD_NAMES.get(object_name, ()):
            # The stored key holds no year when @SchoolYear is absent or unreadable, and no year reads as "this
            # year": typing the attribute too makes an unreadable one fail, naming it, instead of passing.
            fields = (*fields, "school_year")
        return self.source.rows(object_name, fields or None)

    def _in_year(self, school_year) -> bool:
        return school_year in (None, self.year)

    # ---- small tables, loaded once -----------------------------------------------------------
    @cached_property
    def all_schools(self) -> dict[str, School]:
        return {
            ref: School(ref, local_id, data.get("name") or f"School {local_id}")
            for ref, local_id, _, _, data in self._rows("SchoolInfo")
        }

    @cached_property
    def schools(self) -> dict[str, School]:
        """The schools in scope: the district's chosen ones, or every school when it chose none."""
        if not self.expected_school_ids:
            return dict(self.all_schools)
        return {ref: s for ref, s in self.all_schools.items() if s.local_id in self.expected_school_ids}

    @cached_property
    def terms(self) -> dict[str, Term]:
        result = {}
        for ref, _, _, year, data in self._rows("TermInfo"):
            if not self._in_year(year):
                continue
            code = data.get("term_code") or ref[-8:]
            result[ref] = Term(
                ref,
                f"{year}_{code}",
                data.get("description") or code,
                _text(data.get("start_date")),
                _text(data.get("end_date")),
                code,
            )
        return result

    @cached_property
    def courses(self) -> dict[str, dict]:
        return {ref: data for ref, _, _, year, data in self._rows("SchoolCourseInfo") if self._in_year(year)}

    @cached_property
    def sections(self) -> dict[str, Section]:
        result = {}
        wanted = ("course_ref_id", "description", "section_code", "schedules")
        for ref, local_id, dcid, year, data in self._rows("SectionInfo", *wanted):
            course = self.courses.get(data.get("course_ref_id") or "")
            if not self._in_year(year) or course is None:
                continue
            school = self.schools.get(course.get("school_ref_id") or "")
            if school is None:
                continue
            title = course.get("title") or course.get("course_code") or "Course"
            schedules = data.get("schedules") or ()
            terms = tuple(
                dict.fromkeys(self.terms[t] for t in (s.get("term_ref_id") for s in schedules) if t in self.terms)
            )
            teachers = tuple(dict.fromkeys(t for s in schedules for t in s.get("teacher_ref_ids") or ()))
            section = Section(
                ref_id=ref,
                local_id=local_id or ref,
                dcid=dcid,
                name=data.get("description") or f"{title} {data.get('section_code') or ''}".strip(),
                course_title=title,
                course_code=course.get("course_code") or "",
                school=school,
                term=terms[0] if terms else None,
                teacher_ref_ids=teachers,
                terms=terms,
                school_year=year or self.year,
            )
            course_id = self.course_groups.get(section.section_id) or self.course_id_of(section)
            result[ref] = dataclasses.replace(section, course_id=course_id)
        return result

    def course_id_of(self, section: Section) -> str:
        """The Canvas course of a section by the district's course policy: the pattern's fields of the section.
        With `combined`, sections of the same course, term and lead teacher share the pattern's value (the
        pattern then leaves out the section's own id); Canvas holds several sections in one course (sections.csv
        course_id, lib/sis/csv/section_importer.rb), which is what cross-listing ends in."""
        policy = self.policy
        pattern = policy.course_id_pattern or "sec_{section_local_id}"
        if policy.course_grouping == "combined" and "{section_local_id}" in pattern:
            pattern = "crs_{course_code}_{term_code}_{teacher_local_id}"
        lead = self.staff_local_ids.get(section.teacher_ref_ids[0], "") if section.teacher_ref_ids else ""
        values = {
            "section_local_id": section.local_id,
            "section_dcid": section.dcid or section.local_id,
            "course_code": section.course_code or section.course_title,
            "school_year": section.school_year,
            "term_code": section.term.code if section.term else "",
            "teacher_local_id": lead,
            "school_local_id": section.school.local_id,
        }
        return pattern.format(**values)

    @cached_property
    def staff_local_ids(self) -> dict[str, str]:
        return {ref: local_id for ref, local_id, _, _, _ in self._rows("StaffPersonal", "first_name")}

    @cached_property
    def staff_roles(self) -> dict[str, str]:
        """A teacher role read from StaffAssignment Description (SIF StaffAssignment: Description, JobFunction),
        for staff whose assignment names one (aide, observer, job share, co-teacher)."""
        roles = {}
        for _, _, _, year, data in self._rows("StaffAssignment", "school_ref_id", "staff_ref_id", "description"):
            if not self._in_year(year):
                continue
            text = (data.get("description") or "").casefold()
            for word, role in _ASSIGNMENT_WORDS:
                if word in text:
                    roles[data.get("staff_ref_id") or ""] = role
                    break
        return roles

    def teacher_role(self, section: Section, staff_ref: str) -> str:
        """The first of a section's TeacherList is its lead teacher; any other takes the role its StaffAssignment
        names (aide, observer, job share), else co-teacher."""
        if section.teacher_ref_ids and section.teacher_ref_ids[0] == staff_ref:
            return "lead"
        return self.staff_roles.get(staff_ref) or "co_teacher"

    @cached_property
    def _school_enrollments(self) -> tuple[set[str], dict[str, str]]:
        """One pass over StudentSchoolEnrollment for `enrolled_student_refs` and `school_exits` (each read every
        record once before: the second pass parsed a fifth of a district's records again)."""
        refs: set[str] = set()
        exits: dict[str, str | None] = {}
        for _, _, _, year, data in self._rows(
            "StudentSchoolEnrollment", "school_ref_id", "student_ref_id", "exit_date"
        ):
            if not self._in_year(year) or data.get("school_ref_id") not in self.schools:
                continue
            ref, exit = data.get("student_ref_id") or "", _text(data.get("exit_date"))
            refs.add(ref)
            # An open enrollment (no exit date) in any school in scope: the student is still here.
            exits[ref] = (
                None if exit is None or (ref in exits and exits[ref] is None) else max(exit, exits.get(ref) or exit)
            )
        return refs, {ref: exit for ref, exit in exits.items() if exit}

    @property
    def school_exits(self) -> dict[str, str]:
        """Student RefId -> the exit date of their school enrollment this year, for those who have one."""
        return self._school_enrollments[1]

    @property
    def enrolled_student_refs(self) -> set[str]:
        """Students with a school enrollment this year in a school in scope."""
        return self._school_enrollments[0]

    @cached_property
    def assigned_staff_refs(self) -> set[str]:
        refs: set[str] = set()
        for _, _, _, year, data in self._rows("StaffAssignment", "school_ref_id", "staff_ref_id"):
            if self._in_year(year) and data.get("school_ref_id") in self.schools:
                refs.add(data.get("staff_ref_id") or "")
        for section in self.sections.values():
            refs.update(section.teacher_ref_ids)
        return refs

    # ---- people ------------------------------------------------------------------------------
    def _people(self, object_name: str, kind: str, wanted: set[str]) -> Iterator[Person]:
        for ref, local_id, dcid, _, data in self._rows(
            object_name, "first_name", "last_name", "email", "state_province_id"
        ):
            if ref in wanted:
                choice = choose_email(data.get("email"))
                yield Person(
                    kind,
                    ref,
                    local_id,
                    dcid,
                    data.get("first_name") or "",
                    data.get("last_name") or "",
                    choice.chosen or "",
                    choice,
                    data.get("state_province_id") or "",
                )

    def iter_people(self, *, email_choices: bool = True) -> Iterator[Person]:
        """Staff, then students. Without `email_choices`, a student read by PostgreSQL (roster_tables) carries
        the chosen address alone, not the rest of the choice (what the CSV build reads: the choice costs more than
        the rest of a student's reading)."""
        yield from self.staff_people
        yield from self.iter_students(email_choices=email_choices)

    @cached_property
    def staff_people(self) -> list[Person]:
        """The staff in scope (a district has a few thousand at most)."""
        return list(self._people("StaffPersonal", "teacher", self.assigned_staff_refs))

    def iter_students(self, *, email_choices: bool = True) -> Iterator[Person]:
        """The students enrolled this year in a school in scope, streamed (a district has up to 500,000)."""
        if self.tables is None:
            yield from self._people("StudentPersonal", "student", self.enrolled_student_refs)
            return
        # sif_cells.CELLS layout: FORMAT, first, last, e-mail as sent, StateProvinceId, chosen e-mail.
        for ref_id, local_id, dcid, (_, first, last, sent, state_id, chosen) in self.tables.students():
            choice = choose_email(sent or None) if email_choices else EmailChoice(chosen or None)
            yield Person("student", ref_id, local_id, dcid, first, last, chosen, choice, state_id)

    @cached_property
    def tables(self) -> SnapshotTables | None:
        """The snapshot's large tables read by PostgreSQL (roster_tables), when they give what the XML gives."""
        if not isinstance(self.source, SnapshotSource):
            return None
        snapshot = self.source.snapshot
        return SnapshotTables.open(
            snapshot.pk,
            school_year=self.year,
            school_refs=self.schools.keys(),
            rows=int((snapshot.counts or {}).get("StudentSectionEnrollment", 0)),
        )

    @cached_property
    def people_by_ref(self) -> dict[str, Person]:
        return {p.ref_id: p for p in self.iter_people()}

    def term_date_warnings(self, *, limit: int = 10) -> list[str]:
        """Before the year's end: terms whose end date disagrees with the exit dates PowerSchool gives their
        students. Canvas concludes a term's courses at the term's end (terms.csv end_date), while PowerSchool keeps
        a student enrolled until the ExitDate of StudentSectionEnrollment (SIF US 2.4 XSD): an exit after the
        term's end means one of the two calendars is wrong, and the district should fix it before the year ends."""
        if all(t.end_date and t.end_date < self.as_of.isoformat() for t in self.terms.values()):
            return []  # the year is over: nothing left to warn about
        late: dict[str, list] = {}
        for _, _, _, year, data in self._rows("StudentSectionEnrollment", "section_ref_id", "exit_date"):
            section = self.sections.get(data.get("section_ref_id") or "") if self._in_year(year) else None
            exit, term = _text(data.get("exit_date")), section.term if section else None
            if exit and term and term.end_date and exit > term.end_date:
                entry = late.setdefault(term.term_id, [term, 0, exit])
                entry[1] += 1
                entry[2] = max(entry[2], exit)
        return [
            f"Term {term.name} ({term.term_id}) ends {term.end_date} in PowerSchool's TermInfo, but {n:,} "
            f"section enrollment(s) end later (up to {latest}): correct the term's dates or the exit dates "
            "before the year ends, or Canvas concludes these classes early."
            for term, n, latest in sorted(late.values(), key=lambda v: v[0].term_id)[:limit]
        ]

    def iter_enrollments(self) -> Iterator[Enrollment]:
        yield from self.iter_teacher_enrollments()
        people = self.people_by_ref
        for section, ref_id, _, _, status, entry, exit in self._student_enrollments(people):
            yield Enrollment(section, people[ref_id], "student", "", status, entry, exit)

    def iter_teacher_enrollments(self) -> Iterator[Enrollment]:
        """Each section's teachers, section by section: the lead (first of its TeacherList) and the others."""
        staff = {p.ref_id: p for p in self.staff_people}
        for section in self.sections.values():
            term = section.term
            for teacher_ref in section.teacher_ref_ids:
                teacher = staff.get(teacher_ref)
                if teacher:
                    role = self.teacher_role(section, teacher_ref)
                    status = (
                        "completed" if term and term.end_date and term.end_date < self.as_of.isoformat() else "active"
                    )
                    yield Enrollment(section, teacher, self.policy.canvas_role(role), role, status)

    def student_enrollment_rows(self) -> Iterator[StudentEnrollmentRow]:
        """The students' section enrollments as plain tuples, for the CSV build: (section, student RefId, LocalId,
        DCID, status, entry, exit). Read by PostgreSQL's joins where the snapshot allows it (roster_tables), in flat
        memory; else from the records' XML with every person held (people_by_ref)."""
        if self.tables is None:
            yield from self._student_enrollments(self.people_by_ref)
            return
        today, as_of, departed_status, sections = (
            self.as_of.isoformat(),
            self.as_of,
            self.policy.departed_status,
            self.sections,
        )
        for section_ref, entry, own_exit, school_exit, ref_id, local_id, dcid in self.tables.section_enrollments():
            section = sections.get(section_ref)
            if section is not None:
                yield self._student_row(
                    section,
                    ref_id,
                    local_id,
                    dcid,
                    entry or None,
                    own_exit or None,
                    school_exit,
                    section.term.end_date if section.term else None,
                    today,
                    as_of,
                    departed_status,
                )

    def _student_enrollments(self, people: dict[str, Person]) -> Iterator[StudentEnrollmentRow]:
        exits = self.school_exits
        today, departed_status, sections = self.as_of.isoformat(), self.policy.departed_status, self.sections
        for _, _, _, year, data in self._rows(
            "StudentSectionEnrollment", "section_ref_id", "student_ref_id", "entry_date", "exit_date"
        ):
            if year is not None and year != self.year:
                continue
            in_section = sections.get(data.get("section_ref_id") or "")
            student = people.get(data.get("student_ref_id") or "")
            if in_section and student:
                yield self._student_row(
                    in_section,
                    student.ref_id,
                    student.local_id,
                    student.dcid,
                    _text(data.get("entry_date")),
                    _text(data.get("exit_date")),
                    exits.get(student.ref_id),
                    in_section.term.end_date if in_section.term else None,
                    today,
                    self.as_of,
                    departed_status,
                )

    @staticmethod
    def _student_row(
        section, ref_id, local_id, dcid, entry, own_exit, school_exit, term_end, today, as_of, departed_status
    ) -> StudentEnrollmentRow:
        # A student who left the school left every section then, whatever the section's own dates say.
        exit = min(filter(None, (own_exit, school_exit)), default=None)
        if term_end and (exit is None or exit > term_end) and term_end < today:
            exit = term_end  # the term was over before the student left: a finished course, concluded
        status = enrollment_status(entry, exit, term_end, as_of, departed_status)
        return section, ref_id, local_id, dcid, status, entry, exit


# (section, student RefId, LocalId, DCID, Canvas status, entry date, exit date)
StudentEnrollmentRow = tuple[Section, str, str, str, str, str | None, str | None]


def _text(value) -> str | None:
    """A date cell as ISO text (records give dates as date objects or text)."""
    if value is None or value == "":
        return None
    return value.isoformat() if isinstance(value, dt.date) else str(value)
