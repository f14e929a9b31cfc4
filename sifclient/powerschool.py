"""A deterministic PowerSchool-like district, computed record by record from (seed, index).

Nothing is held in memory: ``District.record(object_name, raw_index)`` builds any one record, and
``District.iter_records`` walks them in order, so a 200k-student pull streams flat. The same
``DistrictSpec`` always yields byte-identical records.

Identifiers follow PowerSchool's SIF agent: RefIds are 32 upper-case hex (the last 8 digits are
the record's own index, so the simulator can check a RefId it receives without a lookup table);
StudentPersonal LocalId = student number; StaffPersonal LocalId = teacher number; the DCID comes as
extended element "DCID" unless ``mappings_missing``.

Troubleshooting switches (what each makes observable):

* ``previous_school_years`` - TermInfo, SchoolCourseInfo, SectionInfo of ``school_year - 1`` and
  Historical StudentSchoolEnrollment / StudentSectionEnrollment with ``SchoolYear = school_year - 1``
  are published alongside the current ones.
* ``excluded_schools`` - three extra SchoolInfo ("District Office", "Summer School",
  "Graduated Students"; LocalIds 900, 910, 999) are published, and students enrolled only there
  (Summer: max(2, students // 100); Graduated: max(2, students // 50)).
* ``mappings_missing`` - no SIF_ExtendedElements DCID on any object (agent.cfg lost its mappings).
* ``push_mode`` / ``zone_not_ready`` - protocol symptoms, produced by the ZIS (see sifclient.zis).
* ``smp_on`` - every StudentPersonal also carries state-reporting extended elements named
  ``CO_SASID`` and ``CO_FundingCode``; the ZIS also queues unsolicited StudentDailyAttendance
  events (state reporting objects) to requesters.
* ``family_emails`` - one student in three has a primary Email holding two family addresses and the
  student's own one, joined by commas ("fam.garcia.123456@home.example.net,fam...-2@..., mia.garcia..."),
  as PowerSchool publishes its family e-mail field (see the real zone captures in
  tests/sifclient/fixtures/real).

``day`` churn (day N, applied cumulatively): 3*N students added (each with enrollments), up to 2*N
current section enrollments dropped, up to N students renamed (last name changed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .records import (
    GradingCategory,
    LEAInfo,
    ScheduleInfo,
    SchoolCourseInfo,
    SchoolInfo,
    SectionInfo,
    SifRecord,
    StaffAssignment,
    StaffPersonal,
    StudentPersonal,
    StudentSchoolEnrollment,
    StudentSectionEnrollment,
    TermInfo,
)

PUBLISHED_OBJECTS = (
    "LEAInfo",
    "SchoolInfo",
    "TermInfo",
    "SchoolCourseInfo",
    "SectionInfo",
    "StaffPersonal",
    "StaffAssignment",
    "StudentPersonal",
    "StudentSchoolEnrollment",
    "StudentSectionEnrollment",
    "GradingCategory",
)
# Accepted from agents once grade write-back is on (not published).
WRITE_BACK_OBJECTS = ("GradingAssignment", "GradingAssignmentScore")

SWITCHES = (
    "previous_school_years",
    "excluded_schools",
    "mappings_missing",
    "push_mode",
    "smp_on",
    "zone_not_ready",
    "family_emails",
)

FIRST_NAMES = (
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Elijah",
    "Sofia",
    "Mateo",
    "Mia",
    "Lucas",
    "Amelia",
    "Levi",
    "Harper",
    "Ezra",
    "Luna",
    "Kai",
    "Aria",
    "Diego",
    "Nora",
    "Mei",
    "Zoe",
    "Omar",
    "Chloé",
    "José",
    "Aisha",
    "Hiro",
    "Priya",
    "Tomás",
    "Ingrid",
    "Yusuf",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Garcia",
    "Martinez",
    "Nguyen",
    "Brown",
    "Lopez",
    "Davis",
    "Wilson",
    "Hernandez",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Pérez",
    "White",
    "Harris",
    "Sánchez",
    "Clark",
    "Ramírez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "O'Brien",
    "Nakamura",
    "Øster",
)
SUBJECTS = (
    ("MATH", "Mathematics"),
    ("ELA", "English Language Arts"),
    ("SCI", "Science"),
    ("SS", "Social Studies"),
    ("ART", "Art"),
    ("PE", "Physical Education"),
    ("MUS", "Music"),
    ("CS", "Computer Science"),
    ("SPAN", "Spanish"),
    ("HLTH", "Health"),
)
SCHOOL_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Elementary", ("KG", "01", "02", "03", "04", "05")),
    ("Middle", ("06", "07", "08")),
    ("High", ("09", "10", "11", "12")),
)
EXCLUDED_SCHOOLS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("District Office", "900", ()),
    ("Summer School", "910", ("01", "02", "03", "04", "05", "06", "07", "08")),
    ("Graduated Students", "999", ("12",)),
)


@dataclass(frozen=True)
class DistrictSpec:
    seed: int = 1
    students: int = 1000
    schools: int = 4
    school_year: int = 2026  # the year the school year ends (SIF SchoolYear)
    courses_per_school: int = 8
    sections_per_course: int = 2
    sections_per_student: int = 4
    teachers_per_school: int = 8
    day: int = 0
    district_name: str = "Sample Unified School District"
    state: str = "CO"
    previous_school_years: bool = False
    excluded_schools: bool = False
    mappings_missing: bool = False
    push_mode: bool = False
    smp_on: bool = False
    zone_not_ready: bool = False
    family_emails: bool = False
    # Realistic roster details (what a district's Canvas must get right, issue 14):
    # the first `departed_students` students (every 7th from the second) left the district on March 13th: their
    # StudentSchoolEnrollment and StudentSectionEnrollments carry that ExitDate (SIF StudentSchoolEnrollment/
    # ExitDate, StudentSectionEnrollment/ExitDate, US 2.4 XSD).
    departed_students: int = 0
    departed_on: str = ""  # ISO date they left; "" is March 13th of the school year
    # Co-teaching: one section in four lists a second teacher after the lead, one in four (the next) lists the
    # school's last teacher, whose StaffAssignment Description is "Instructional Aide" (TeacherList holds only
    # StaffPersonalRefIds, so the role is read from the assignment).
    co_teachers: bool = False

    def __post_init__(self) -> None:
        if self.students < 0 or self.schools < 1 or self.day < 0:
            raise ValueError("students >= 0, schools >= 1, day >= 0")
        if self.sections_per_student > self.courses_per_school * self.sections_per_course:
            raise ValueError("sections_per_student exceeds the sections a school offers")

    def replace(self, **changes: Any) -> DistrictSpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DistrictSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown DistrictSpec fields: {sorted(unknown)}")
        return cls(**data)


def _hash_int(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class District:
    """Read-only view of the district a spec describes."""

    def __init__(self, spec: DistrictSpec):
        self.spec = spec

    # --- identifiers --------------------------------------------------------------------
    def ref_id(self, kind: str, index: int) -> str:
        prefix = hashlib.blake2b(f"{self.spec.seed}|{kind}".encode() + index.to_bytes(8, "big"), digest_size=12)
        return prefix.hexdigest().upper() + f"{index:08X}"

    def index_of(self, kind: str, ref_id: str) -> int | None:
        """Inverse of ref_id: the index a RefId of ``kind`` stands for, or None if it is not ours."""
        if len(ref_id) != 32:
            return None
        try:
            index = int(ref_id[24:], 16)
        except ValueError:
            return None
        return index if self.ref_id(kind, index) == ref_id else None

    def _ext(self, dcid: int, **extra: str) -> dict[str, str]:
        values = {} if self.spec.mappings_missing else {"DCID": str(dcid)}
        values.update(extra)
        return values

    # --- sizes ---------------------------------------------------------------------------
    @property
    def regular_schools(self) -> int:
        return self.spec.schools

    @property
    def all_schools(self) -> int:
        return self.spec.schools + (len(EXCLUDED_SCHOOLS) if self.spec.excluded_schools else 0)

    @property
    def year_count(self) -> int:
        return 2 if self.spec.previous_school_years else 1

    @property
    def regular_students(self) -> int:
        return self.spec.students + 3 * self.spec.day

    @cached_property
    def excluded_student_schools(self) -> list[int]:
        """School number (index into all schools) for each excluded-school student."""
        if not self.spec.excluded_schools:
            return []
        n = self.spec.students
        result = [self.spec.schools + 1] * max(2, n // 100) + [self.spec.schools + 2] * max(2, n // 50)
        return result

    @property
    def total_students(self) -> int:
        return self.regular_students + len(self.excluded_student_schools)

    @property
    def sections_per_school(self) -> int:
        return self.spec.courses_per_school * self.spec.sections_per_course

    @property
    def staff_per_school(self) -> int:
        return self.spec.teachers_per_school + 1  # + the principal

    @cached_property
    def dropped_section_enrollments(self) -> frozenset[int]:
        base = self.spec.students * self.spec.sections_per_student
        if base == 0:
            return frozenset()
        return frozenset(_hash_int(self.spec.seed, "drop", j) % base for j in range(2 * self.spec.day))

    @cached_property
    def renamed_students(self) -> frozenset[int]:
        if self.spec.students == 0:
            return frozenset()
        return frozenset(_hash_int(self.spec.seed, "rename", j) % self.spec.students for j in range(self.spec.day))

    def raw_count(self, object_name: str) -> int:
        """Size of the raw index space of an object (some raw indices may be dropped)."""
        s = self.spec
        current_sections = s.schools * self.sections_per_school
        return {
            "LEAInfo": 1,
            "SchoolInfo": self.all_schools,
            "TermInfo": s.schools * 3 * self.year_count,
            "SchoolCourseInfo": s.schools * s.courses_per_school * self.year_count,
            "SectionInfo": current_sections * self.year_count,
            "StaffPersonal": s.schools * self.staff_per_school,
            "StaffAssignment": s.schools * self.staff_per_school,
            "StudentPersonal": self.total_students,
            "StudentSchoolEnrollment": self.total_students + (s.students if s.previous_school_years else 0),
            "StudentSectionEnrollment": self.regular_students * s.sections_per_student
            + (s.students if s.previous_school_years else 0),
            "GradingCategory": current_sections * 2,
        }[object_name]

    def count(self, object_name: str) -> int:
        """Number of records a full pull of ``object_name`` returns."""
        total = self.raw_count(object_name)
        if object_name == "StudentSectionEnrollment":
            total -= len(self.dropped_section_enrollments)
        return total

    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in PUBLISHED_OBJECTS}

    def is_dropped(self, object_name: str, raw_index: int) -> bool:
        return object_name == "StudentSectionEnrollment" and raw_index in self.dropped_section_enrollments

    def iter_records(self, object_name: str, start: int = 0) -> Iterator[tuple[int, SifRecord]]:
        """(raw_index, record) pairs from raw index ``start`` on, skipping dropped records."""
        builder = self._builders()[object_name]
        for raw_index in range(start, self.raw_count(object_name)):
            if not self.is_dropped(object_name, raw_index):
                yield raw_index, builder(raw_index)

    def record(self, object_name: str, raw_index: int) -> SifRecord:
        if not 0 <= raw_index < self.raw_count(object_name):
            raise IndexError(f"{object_name} has no record {raw_index}")
        return self._builders()[object_name](raw_index)

    def _builders(self) -> dict[str, Callable[[int], SifRecord]]:
        return {
            "LEAInfo": self.lea,
            "SchoolInfo": self.school,
            "TermInfo": self.term,
            "SchoolCourseInfo": self.course,
            "SectionInfo": self.section,
            "StaffPersonal": self.staff,
            "StaffAssignment": self.staff_assignment,
            "StudentPersonal": self.student,
            "StudentSchoolEnrollment": self.school_enrollment,
            "StudentSectionEnrollment": self.section_enrollment,
            "GradingCategory": self.grading_category,
        }

    # --- calendar ------------------------------------------------------------------------
    def year_start(self, school_year: int) -> dt.date:
        return dt.date(school_year - 1, 8, 15)

    def year_end(self, school_year: int) -> dt.date:
        return dt.date(school_year, 5, 29)

    # --- records -------------------------------------------------------------------------
    def lea(self, index: int) -> LEAInfo:
        s = self.spec
        return LEAInfo(
            ref_id=self.ref_id("LEAInfo", 0),
            local_id=str(1000 + s.seed % 9000),
            state_province_id=f"{s.state}-{s.seed % 10000:04d}",
            name=s.district_name,
            url="https://district.example.org/",
        )

    def school(self, index: int) -> SchoolInfo:
        s = self.spec
        if index < s.schools:
            kind, grades = SCHOOL_KINDS[index % 3]
            name = f"{LAST_NAMES[_hash_int(s.seed, 'school', index) % len(LAST_NAMES)]} {kind} School"
            local_id = str((index + 1) * 100)
        else:
            name, local_id, grades = EXCLUDED_SCHOOLS[index - s.schools]
        return SchoolInfo(
            ref_id=self.ref_id("SchoolInfo", index),
            local_id=local_id,
            state_province_id=f"{s.state}-{s.seed % 10000:04d}-{local_id}",
            name=name,
            lea_ref_id=self.ref_id("LEAInfo", 0),
            grade_levels=list(grades),
            extended_elements=self._ext(10 + index),
        )

    def term(self, index: int) -> TermInfo:
        per_year = self.spec.schools * 3
        year_offset, rest = divmod(index, per_year)
        school, k = divmod(rest, 3)
        year = self.spec.school_year - year_offset
        start, end = self.year_start(year), self.year_end(year)
        middle = dt.date(year, 1, 5)
        dates, code, label = (
            ((start, end), f"{year - 1 - 2000:02d}-{year - 2000:02d}", "Full Year"),
            ((start, dt.date(year - 1, 12, 19)), "S1", "Semester 1"),
            ((middle, end), "S2", "Semester 2"),
        )[k]
        return TermInfo(
            ref_id=self.ref_id("TermInfo", index),
            school_ref_id=self.ref_id("SchoolInfo", school),
            school_year=year,
            start_date=dates[0],
            end_date=dates[1],
            description=f"{year - 1}-{year} {label}",
            term_code=code,
            extended_elements=self._ext(3000 + (year % 100) * 100 + index % per_year),
        )

    def course(self, index: int) -> SchoolCourseInfo:
        s = self.spec
        per_year = s.schools * s.courses_per_school
        year_offset, rest = divmod(index, per_year)
        school, c = divmod(rest, s.courses_per_school)
        code, subject = SUBJECTS[c % len(SUBJECTS)]
        level = c // len(SUBJECTS) + 1
        return SchoolCourseInfo(
            ref_id=self.ref_id("SchoolCourseInfo", index),
            school_ref_id=self.ref_id("SchoolInfo", school),
            school_year=s.school_year - year_offset,
            course_code=f"{code}{level}{school:02d}",
            state_course_code=f"{c:02d}{level:03d}",
            title=f"{subject} {level}",
            description=f"{subject}, level {level}",
            department=subject,
            extended_elements=self._ext(9000 + index),
        )

    def _section_parts(self, index: int) -> tuple[int, int, int, int]:
        """(year_offset, school, course within school, section within course)."""
        s = self.spec
        per_year = s.schools * self.sections_per_school
        year_offset, rest = divmod(index, per_year)
        school, in_school = divmod(rest, self.sections_per_school)
        course, p = divmod(in_school, s.sections_per_course)
        return year_offset, school, course, p

    def section_term_index(self, index: int) -> int:
        year_offset, school, course, p = self._section_parts(index)
        return year_offset * self.spec.schools * 3 + school * 3 + (course + p) % 3

    def aide_index(self, school: int) -> int:
        """The staff index of a school's instructional aide (with ``co_teachers``)."""
        return school * self.staff_per_school + self.spec.teachers_per_school - 1

    def section_teachers(self, index: int) -> list[int]:
        s = self.spec
        _, school, course, p = self._section_parts(index)
        slot = course * s.sections_per_course + p
        lead = school * self.staff_per_school + slot % s.teachers_per_school
        teachers = [lead]
        if s.co_teachers and s.teachers_per_school > 2:
            if slot % 4 == 0:
                co = school * self.staff_per_school + (slot + 1) % s.teachers_per_school
                if co != self.aide_index(school):
                    teachers.append(co)
            elif slot % 4 == 1 and lead != self.aide_index(school):
                teachers.append(self.aide_index(school))
        return teachers

    def departed(self, student: int) -> bool:
        """Whether regular student `student` left the district during the year (``departed_students``)."""
        return student < self.spec.students and student % 7 == 1 and student // 7 < self.spec.departed_students

    def departure_date(self, school_year: int) -> dt.date:
        if self.spec.departed_on and school_year == self.spec.school_year:
            return dt.date.fromisoformat(self.spec.departed_on)
        return dt.date(school_year, 3, 13)

    def section(self, index: int) -> SectionInfo:
        s = self.spec
        year_offset, school, course, p = self._section_parts(index)
        course_index = year_offset * s.schools * s.courses_per_school + school * s.courses_per_school + course
        return SectionInfo(
            ref_id=self.ref_id("SectionInfo", index),
            course_ref_id=self.ref_id("SchoolCourseInfo", course_index),
            # PowerSchool gives every year's sections new ids: the year's last two digits lead the number.
            school_year=s.school_year - year_offset,
            local_id=str(
                (s.school_year - year_offset) % 100 * 100000 + 50000 + index % (s.schools * self.sections_per_school)
            ),
            description=f"{SUBJECTS[course % len(SUBJECTS)][1]} {course // len(SUBJECTS) + 1} - section {p + 1}",
            schedules=[
                ScheduleInfo(
                    term_ref_id=self.ref_id("TermInfo", self.section_term_index(index)),
                    teacher_ref_ids=[self.ref_id("StaffPersonal", t) for t in self.section_teachers(index)],
                )
            ],
            course_section_code=f"{course_index}.{p + 1}",
            section_code=str(p + 1),
            extended_elements=self._ext(50000 + index),
        )

    def _person_name(self, kind: str, key: int) -> tuple[str, str, str]:
        h = _hash_int(self.spec.seed, kind, key)
        return (
            FIRST_NAMES[h % len(FIRST_NAMES)],
            FIRST_NAMES[(h >> 8) % len(FIRST_NAMES)][0],
            LAST_NAMES[(h >> 16) % len(LAST_NAMES)],
        )

    def staff(self, index: int) -> StaffPersonal:
        school, j = divmod(index, self.staff_per_school)
        first, middle, last = self._person_name("staff", index)
        number = 70000 + index
        return StaffPersonal(
            ref_id=self.ref_id("StaffPersonal", index),
            local_id=str(number),
            state_province_id=f"{self.spec.state}E{_hash_int(self.spec.seed, 'staffstate', index) % 10**8:08d}",
            last_name=last,
            first_name=first,
            middle_name=middle,
            title="Principal" if j == self.spec.teachers_per_school else "Teacher",
            email=f"{first}.{last}{number}@staff.example.org".lower().replace("'", ""),
            extended_elements=self._ext(5000 + index),
        )

    def staff_assignment(self, index: int) -> StaffAssignment:
        school, j = divmod(index, self.staff_per_school)
        principal = j == self.spec.teachers_per_school
        year = self.spec.school_year
        return StaffAssignment(
            ref_id=self.ref_id("StaffAssignment", index),
            school_ref_id=self.ref_id("SchoolInfo", school),
            school_year=year,
            staff_ref_id=self.ref_id("StaffPersonal", index),
            description="Principal"
            if principal
            else "Instructional Aide"
            if (self.spec.co_teachers and index == self.aide_index(school))
            else "Classroom teacher",
            primary_assignment="Yes",
            job_start_date=self.year_start(year),
            job_end_date=self.year_end(year),
            job_function_code="2400" if principal else "1000",
            extended_elements=self._ext(5000 + index),
        )

    # Students: raw index < regular_students are regular; the rest are in excluded schools.
    def student_school(self, index: int) -> int:
        if index < self.regular_students:
            return index % self.spec.schools
        return self.excluded_student_schools[index - self.regular_students]

    def student_key(self, index: int) -> int:
        """Stable identity of a student (unchanged when churn adds students before excluded ones)."""
        return index if index < self.regular_students else 0x40000000 + (index - self.regular_students)

    def student_grade(self, index: int) -> str:
        school = self.student_school(index)
        if school < self.spec.schools:
            grades = SCHOOL_KINDS[school % 3][1]
        else:
            grades = EXCLUDED_SCHOOLS[school - self.spec.schools][2] or ("UN",)
        return grades[_hash_int(self.spec.seed, "grade", self.student_key(index)) % len(grades)]

    def student_number(self, key: int) -> int:
        # 7919 is prime and coprime with 900000: numbers are unique for up to 900000 students.
        return 100000 + (key * 7919) % 900000

    def student(self, index: int) -> StudentPersonal:
        s = self.spec
        key = self.student_key(index)
        first, middle, last = self._person_name("student", key)
        if key in self.renamed_students:
            last = f"{last}-{LAST_NAMES[_hash_int(s.seed, 'newname', key) % len(LAST_NAMES)]}"
        # Students parked in excluded schools get 7-digit numbers, apart from the regular roster.
        number = self.student_number(key) if key < 0x40000000 else 1_000_000 + key - 0x40000000
        state_id = f"{_hash_int(s.seed, 'sasid', key) % 10**10:010d}"
        grade = self.student_grade(index)
        grade_number = {"KG": 0, "PK": -1}.get(grade, int(grade) if grade.isdigit() else 12)
        h = _hash_int(s.seed, "birth", key)
        birth = dt.date(s.school_year - 6 - grade_number, 1 + h % 12, 1 + (h >> 8) % 28)
        extra = {}
        if s.smp_on:
            extra = {f"{s.state}_SASID": state_id, f"{s.state}_FundingCode": "80"}
        dcid = (1_000_000 + key) if key < 0x40000000 else (1_500_000 + key - 0x40000000)
        email = f"{first}.{last}.{number}@students.example.org".lower().replace("'", "")
        if s.family_emails and key % 3 == 0:
            family = f"fam.{last}.{number}".lower().replace("'", "")
            email = f"{family}@home.example.net,{family}-2@home.example.net, {email}"
        return StudentPersonal(
            ref_id=self.ref_id("StudentPersonal", key),
            local_id=str(number),
            state_province_id=state_id,
            last_name=last,
            first_name=first,
            middle_name=middle,
            gender="MF"[h % 2],
            birth_date=birth,
            email=email,
            projected_graduation_year=s.school_year + 12 - grade_number,
            school_local_id=self.school(self.student_school(index)).local_id,
            grade_level=grade,
            extended_elements={**self._ext(dcid), **extra},
        )

    def school_enrollment(self, index: int) -> StudentSchoolEnrollment:
        s = self.spec
        if index < self.total_students:
            student, year, frame = index, s.school_year, "Current"
        else:  # previous school year, regular students of the original roster
            student, year, frame = index - self.total_students, s.school_year - 1, "Historical"
        key = self.student_key(student)
        school = self.student_school(student)
        membership = "Summer" if school == s.schools + 1 and s.excluded_schools else "Home"
        return StudentSchoolEnrollment(
            ref_id=self.ref_id("StudentSchoolEnrollment", index),
            student_ref_id=self.ref_id("StudentPersonal", key),
            school_ref_id=self.ref_id("SchoolInfo", school),
            membership_type=membership,
            time_frame=frame,
            school_year=year,
            entry_date=self.year_start(year),
            grade_level=self.student_grade(student),
            exit_date=self.year_end(year)
            if frame == "Historical"
            else self.departure_date(year)
            if self.departed(student)
            else None,
            extended_elements=self._ext(700000 + index),
        )

    def section_enrollment(self, index: int) -> StudentSectionEnrollment:
        s = self.spec
        current = self.regular_students * s.sections_per_student
        if index < current:
            student, slot = divmod(index, s.sections_per_student)
            year_offset = 0
        else:
            student, slot, year_offset = index - current, 0, 1
        school = self.student_school(student)
        start = _hash_int(s.seed, "sections", student) % self.sections_per_school
        in_school = (start + slot) % self.sections_per_school
        section = year_offset * s.schools * self.sections_per_school + school * self.sections_per_school + in_school
        year = s.school_year - year_offset
        return StudentSectionEnrollment(
            ref_id=self.ref_id("StudentSectionEnrollment", index),
            student_ref_id=self.ref_id("StudentPersonal", self.student_key(student)),
            section_ref_id=self.ref_id("SectionInfo", section),
            school_year=year,
            entry_date=self.year_start(year),
            exit_date=self.year_end(year)
            if year_offset
            else self.departure_date(year)
            if self.departed(student)
            and self._term_ends_after(self.section_term_index(section), self.departure_date(year))
            else None,
            extended_elements=self._ext(800000 + index),
        )

    def _term_ends_after(self, term_index: int, day: dt.date) -> bool:
        end = self.term(term_index).end_date
        return end is not None and end > day

    def grading_category(self, index: int) -> GradingCategory:
        section, g = divmod(index, 2)
        _, school, _, _ = self._section_parts(section)
        return GradingCategory(
            ref_id=self.ref_id("GradingCategory", index),
            section_ref_id=self.ref_id("SectionInfo", section),
            term_ref_id=self.ref_id("TermInfo", self.section_term_index(section)),
            school_ref_id=self.ref_id("SchoolInfo", school),
            description=("Homework", "Tests")[g],
            extended_elements=self._ext(60000 + index),
        )
