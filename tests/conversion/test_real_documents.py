"""The real SIF documents (tests/sifclient/fixtures/real) through the product: stored by the ingest as the
typed readers read them, and used rightly by the roster, the mapping and the Canvas SIS CSV (the chosen
e-mail as address and login, every ScheduleInfo's teachers and terms)."""

from __future__ import annotations

import dataclasses

import pytest
from lxml import etree

from conversion.services.mapping import CanvasUser, diff_users
from conversion.services.roster import Roster
from conversion.services.sif_keys import iter_payload_elements, payload_rows, row_values
from conversion.services.sifdata import data_of, record_data
from conversion.services.sis_csv import _Builder
from sifclient.records import (
    ScheduleInfo,
    SchoolCourseInfo,
    SchoolInfo,
    SectionInfo,
    StaffPersonal,
    StudentPersonal,
    StudentSchoolEnrollment,
    StudentSectionEnrollment,
    TermInfo,
    record_from_xml,
)
from sifclient.streaming import scan_message
from tests.sifclient.test_sif_real_documents import REAL, SPEC_OBJECTS, response, with_prefixed_outer_message

PACKETS = [
    "powerschool_2_0r1_ack_response_iso8859.xml",
    "powerschool_2_0r1_ack_response_utf8.xml",
    "openagent_2_0r1_ack_event_studentpersonal.xml",
]


def _packets():
    for name in PACKETS:
        yield name, (REAL / name).read_bytes()
    for name in sorted(SPEC_OBJECTS):
        for version in ("2.0r1", "2.5"):
            for encoding in ("UTF-8", "ISO-8859-1"):
                objects = (REAL / name).read_bytes().decode("utf-8").encode(encoding)
                yield f"{name}-{version}-{encoding}", response(objects, version, encoding=encoding, in_ack=True)


@pytest.mark.parametrize("name, data", list(_packets()), ids=[n for n, _ in _packets()])
def test_the_ingest_stores_what_the_typed_readers_read(name, data):
    delivered = scan_message(data).delivered
    typed = list(delivered.records())
    rows = list(payload_rows(data, max_bytes=1 << 22, arrived_in="m"))
    assert len(rows) == len(typed) > 0
    assert rows == [row_values(e, "m", i) for i, e in enumerate(iter_payload_elements(data, max_bytes=1 << 22))]
    for row, record in zip(rows, typed, strict=False):
        assert (row.object_name, row.ref_id, row.local_id) == (
            record.OBJECT_NAME,
            record.ref_id,
            getattr(record, "local_id", None) or "",
        )
        assert data_of(row.xml) == record_data(record)
        assert record_from_xml(etree.fromstring(row.xml)) == record


def test_the_stored_xml_keeps_iso_8859_1_text_as_text():
    data = (REAL / "powerschool_2_0r1_ack_response_iso8859.xml").read_bytes()
    (row,) = payload_rows(data, max_bytes=1 << 22, arrived_in="m")
    assert "<City>Ålesund</City>" in row.xml  # decoded from the declared encoding, stored as text


def test_an_unqualified_inner_message_is_stored_not_dropped():
    data = (REAL / "powerschool_2_0r1_ack_response_iso8859.xml").read_bytes()
    (row,) = payload_rows(with_prefixed_outer_message(data), max_bytes=1 << 22, arrived_in="m")
    (expected,) = payload_rows(data, max_bytes=1 << 22, arrived_in="m")
    assert row.object_name == "StudentPersonal" and data_of(row.xml) == data_of(expected.xml)


# ---- the roster, mapping and CSV on the real objects -------------------------------------------------


class RecordsSource:
    """A RecordSource over typed records, stored and read back the way a snapshot is."""

    def __init__(self, records):
        self.rows_by_name: dict[str, list] = {}
        for n, record in enumerate(records):
            row = row_values(record.to_xml("2.4"), "t", n)
            self.rows_by_name.setdefault(row.object_name, []).append(row)

    def rows(self, object_name, fields=None):
        for row in self.rows_by_name.get(object_name, []):
            yield row.ref_id, row.local_id, row.dcid, row.school_year, data_of(row.xml, fields)


def _real_district():
    """The specification's objects and PowerSchool's real student, linked into one small district."""
    school = dataclasses.replace(SPEC_OBJECTS["spec_2x_schoolinfo.xml"], local_id="304")
    course = dataclasses.replace(
        SPEC_OBJECTS["spec_2x_schoolcourseinfo.xml"], school_ref_id=school.ref_id, school_year=2006
    )
    section: SectionInfo = dataclasses.replace(SPEC_OBJECTS["spec_2x_sectioninfo.xml"], course_ref_id=course.ref_id)
    term = SPEC_OBJECTS["spec_2x_terminfo.xml"]
    terms = [
        dataclasses.replace(
            term,
            ref_id=s.term_ref_id,
            school_ref_id=school.ref_id,
            school_year=2006,
            term_code=f"T{n}",
            description=f"Term {n}",
        )
        for n, s in enumerate(section.schedules, 1)
    ]
    staff = SPEC_OBJECTS["spec_2x_staffpersonal.xml"]
    teachers = [
        dataclasses.replace(
            staff,
            ref_id=ref,
            local_id=f"T{n}",
            extended_elements={"DCID": str(900 + n)},
            email=staff.email if n == 1 else f"teacher{n}@example.org",
        )
        for n, ref in enumerate(section.teacher_ref_ids)
    ]
    data = (REAL / "powerschool_2_0r1_ack_response_iso8859.xml").read_bytes()
    (student,) = scan_message(data).delivered.records()
    student = dataclasses.replace(student, extended_elements={"DCID": "5001"})
    school_enrollment = dataclasses.replace(
        SPEC_OBJECTS["spec_2x_studentschoolenrollment.xml"],
        student_ref_id=student.ref_id,
        school_ref_id=school.ref_id,
        school_year=2006,
    )
    section_enrollment = dataclasses.replace(
        SPEC_OBJECTS["spec_2x_studentsectionenrollment.xml"],
        student_ref_id=student.ref_id,
        section_ref_id=section.ref_id,
        school_year=2006,
    )
    records = [school, course, section, *terms, *teachers, student, school_enrollment, section_enrollment]
    return Roster(RecordsSource(records), school_year=2006), section, student


def test_a_section_with_two_schedules_has_both_terms_and_all_three_teachers():
    roster, section, _ = _real_district()
    (built,) = roster.sections.values()
    assert [t.ref_id for t in built.terms] == section.term_ref_ids and len(built.terms) == 2
    assert built.term.term_id == "2006_T1"  # Canvas gets one term per course: the first schedule's
    assert built.teacher_ref_ids == tuple(section.teacher_ref_ids) and len(built.teacher_ref_ids) == 3
    teachers = sorted(e.person.local_id for e in roster.iter_enrollments() if e.role == "teacher")
    assert teachers == ["T0", "T1", "T2"]  # the second term's teacher too (the first schedule alone had two)
    assert sorted(e.person.local_id for e in roster.iter_enrollments() if e.role == "student") == ["02962"]


def test_the_chosen_email_is_the_canvas_address_and_login_and_the_rest_is_reported():
    roster, _, student = _real_district()
    person = roster.people_by_ref[student.ref_id]
    assert student.email == "family54064@example.org,family14114@example.org"
    assert person.email == "family54064@example.org"
    assert person.email_choice.others == ("family14114@example.org",)
    users = {row.user_id: row for row in _Builder(roster, "dcid").users()}
    assert users["5001"].login_id == "family54064@example.org" and users["5001"].email == "family54064@example.org"
    assert users["901"].login_id == "family06174@example.org"  # a teacher's single address is unchanged
    rows = {r.key: r for r in diff_users(roster.iter_people(), [CanvasUser("02962", person.name)])}
    assert rows["02962"].reason == (
        "same PowerSchool ID and name; e-mail family54064@example.org chosen (first "
        "well-formed address); not used: family14114@example.org"
    )
    assert "e-mail" not in rows["T1"].reason  # one address: nothing to report


def test_a_student_without_a_well_formed_address_gets_no_email_login():
    roster, _, student = _real_district()
    source = roster.source
    rows = source.rows_by_name["StudentPersonal"]
    bad = dataclasses.replace(student, email="call the office, 555-0100", extended_elements={"DCID": "5001"})
    rows[0] = row_values(bad.to_xml(), "t", 0)
    roster = Roster(source, school_year=2006)
    person = roster.people_by_ref[student.ref_id]
    assert person.email == "" and person.email_choice.invalid == ("call", "the", "office", "555-0100")
    users = {row.user_id: row for row in _Builder(roster, "dcid").users()}
    assert users["5001"].login_id == "5001" and users["5001"].email is None  # the SIS id, as without an Email


def test_the_roster_types_are_the_ones_the_fixtures_hold():
    assert {type(r) for r in SPEC_OBJECTS.values()} == {
        SchoolInfo,
        SchoolCourseInfo,
        SectionInfo,
        TermInfo,
        StaffPersonal,
        StudentPersonal,
        StudentSchoolEnrollment,
        StudentSectionEnrollment,
    }
    assert all(isinstance(s, ScheduleInfo) for s in SPEC_OBJECTS["spec_2x_sectioninfo.xml"].schedules)


@pytest.mark.django_db
def test_an_unreadable_school_year_fails_the_roster_naming_it_instead_of_passing_as_this_year(conversion):
    from conversion.jobs import JobFailed
    from conversion.models import Snapshot
    from conversion.services.sif_store import store_rows

    section = (REAL / "spec_2x_sectioninfo.xml").read_bytes().replace(b'SchoolYear="2006"', b'SchoolYear="2OO6"')
    snapshot = Snapshot.objects.create(conversion=conversion)
    rows = list(payload_rows(response(section, "2.4"), max_bytes=1 << 22, arrived_in="m"))
    assert rows[0].school_year is None  # the ingest stores it (never refuses a record for a value)...
    store_rows(snapshot, rows)
    roster = Roster(snapshot, school_year=2006)
    roster.__dict__["courses"] = {SPEC_OBJECTS["spec_2x_sectioninfo.xml"].course_ref_id: {"school_ref_id": "S"}}
    with pytest.raises(JobFailed, match=r"SectionInfo 427-6 .*SectionInfo/@SchoolYear: '2OO6' is not a valid int"):
        _ = roster.sections  # ...and reading it says which record and which value


def test_siblings_sharing_the_family_list_log_in_by_their_sis_id():
    roster, _, student = _real_district()
    source = roster.source
    sibling = dataclasses.replace(
        student, ref_id="F" * 32, local_id="02963", first_name="Sib", extended_elements={"DCID": "5002"}
    )
    source.rows_by_name["StudentPersonal"].append(row_values(sibling.to_xml(), "t", 99))
    enrollment = dataclasses.replace(
        SPEC_OBJECTS["spec_2x_studentschoolenrollment.xml"],
        ref_id="E" * 32,
        student_ref_id=sibling.ref_id,
        school_ref_id=SPEC_OBJECTS["spec_2x_schoolinfo.xml"].ref_id,
        school_year=2006,
    )
    source.rows_by_name["StudentSchoolEnrollment"].append(row_values(enrollment.to_xml(), "t", 100))
    roster = Roster(source, school_year=2006)
    users = {row.user_id: row for row in _Builder(roster, "dcid").users()}
    # Both get the family address as e-mail; neither may take it as login (Canvas would skip the second).
    assert (users["5001"].login_id, users["5002"].login_id) == ("5001", "5002")
    assert users["5001"].email == users["5002"].email == "family54064@example.org"
    assert users["901"].login_id == "family06174@example.org"


@pytest.mark.parametrize("year", ["¹", "²⁰²⁶", "٢٠٢٦"])
def test_a_school_year_of_non_ascii_digits_is_stored_as_no_year_not_a_crash(year):
    section = (
        (REAL / "spec_2x_sectioninfo.xml").read_bytes().replace(b'SchoolYear="2006"', f'SchoolYear="{year}"'.encode())
    )
    (row,) = payload_rows(response(section, "2.4"), max_bytes=1 << 22, arrived_in="m")
    assert row.school_year is None and row.ref_id == SPEC_OBJECTS["spec_2x_sectioninfo.xml"].ref_id


def test_a_dcid_of_non_ascii_digits_is_no_dcid():
    assert StudentPersonal(extended_elements={"DCID": "¹²"}).dcid is None
    assert StudentPersonal(extended_elements={"DCID": " 5001 "}).dcid == 5001
