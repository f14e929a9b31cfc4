"""Typed records: round trips, partial objects, and hand-written fixtures in other encodings."""

import datetime as dt
from decimal import Decimal

import pytest

from sifclient.errors import SifXmlError
from sifclient.powerschool import PUBLISHED_OBJECTS, District, DistrictSpec
from sifclient.records import (
    RECORD_TYPES,
    GradingAssignmentScore,
    ScheduleInfo,
    SectionInfo,
    StaffPersonal,
    StudentPersonal,
    UnknownRecord,
)
from sifclient.streaming import iter_payload_records, scan_message
from tests.sifclient.sifschema import assert_valid

HAND_WRITTEN_ISO_8859_1 = """<?xml version="1.0" encoding="ISO-8859-1"?>
<SIF_Message xmlns="http://www.sifinfo.org/infrastructure/2.x" Version="2.4">
  <SIF_Response>
    <SIF_Header>
      <SIF_MsgId>A1B2C3D4E5F60718293A4B5C6D7E8F90</SIF_MsgId>
      <SIF_Timestamp>2025-09-02T06:00:00-06:00</SIF_Timestamp>
      <SIF_SourceId>PowerSchool_District</SIF_SourceId>
      <SIF_DestinationId>KimonoAgent</SIF_DestinationId>
    </SIF_Header>
    <SIF_RequestMsgId>0F1E2D3C4B5A69788796A5B4C3D2E1F0</SIF_RequestMsgId>
    <SIF_PacketNumber>3</SIF_PacketNumber>
    <SIF_MorePackets>No</SIF_MorePackets>
    <SIF_ObjectData>
      <StudentPersonal RefId="D3E34B359D75101A8C3D00AA001A1652">
        <LocalId>104512</LocalId>
        <StateProvinceId>5544332211</StateProvinceId>
        <Name Type="04"><LastName>Muñoz</LastName><FirstName>Zoë</FirstName><MiddleName>Ã</MiddleName></Name>
        <Demographics><Gender>F</Gender><BirthDate>2011-04-30</BirthDate></Demographics>
        <EmailList><Email Type="Primary">zoe.munoz@students.example.org</Email></EmailList>
        <MostRecent><SchoolLocalId>200</SchoolLocalId><GradeLevel><Code>08</Code></GradeLevel></MostRecent>
        <SIF_ExtendedElements>
          <SIF_ExtendedElement Name="DCID">4417</SIF_ExtendedElement>
          <SIF_ExtendedElement Name="Home_Room">B-12 (Señora Ibáñez)</SIF_ExtendedElement>
        </SIF_ExtendedElements>
      </StudentPersonal>
      <StudentPersonal RefId="D3E34B359D75101A8C3D00AA001A1653">
        <LocalId>104513</LocalId>
        <Name Type="04"><LastName>Øster</LastName><FirstName>Åse</FirstName></Name>
      </StudentPersonal>
    </SIF_ObjectData>
  </SIF_Response>
</SIF_Message>
""".encode("iso-8859-1")


def test_hand_written_iso_8859_1_fixture_is_read_from_bytes():
    assert_valid(HAND_WRITTEN_ISO_8859_1)
    envelope = scan_message(HAND_WRITTEN_ISO_8859_1)
    delivered = envelope.delivered
    assert (delivered.kind, delivered.packet_number, delivered.more_packets) == ("response", 3, False)
    assert delivered.request_msg_id == "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
    assert delivered.object_name == "StudentPersonal"
    first, second = delivered.records()
    assert (first.last_name, first.first_name, first.middle_name) == ("Muñoz", "Zoë", "Ã")
    assert first.local_id == "104512" and first.dcid == 4417
    assert first.extended_elements["Home_Room"] == "B-12 (Señora Ibáñez)"
    assert first.birth_date == dt.date(2011, 4, 30) and first.grade_level == "08"
    assert second.last_name == "Øster" and second.dcid is None


def test_same_fixture_in_utf8_reads_the_same():
    utf8 = HAND_WRITTEN_ISO_8859_1.decode("iso-8859-1").replace("ISO-8859-1", "UTF-8").encode("utf-8")
    assert list(iter_payload_records(utf8)) == list(iter_payload_records(HAND_WRITTEN_ISO_8859_1))


@pytest.mark.parametrize("object_name", PUBLISHED_OBJECTS)
def test_every_generated_record_round_trips(object_name):
    district = District(DistrictSpec(students=12, previous_school_years=True, excluded_schools=True, smp_on=True))
    record_type = RECORD_TYPES[object_name]
    for _, record in district.iter_records(object_name):
        assert record_type.from_bytes(record.to_bytes()) == record


def test_partial_change_object_keeps_only_what_is_set():
    partial = StudentPersonal(ref_id="A" * 32, last_name="New-Name")
    again = StudentPersonal.from_bytes(partial.to_bytes())
    assert again.changed_fields() == {"ref_id": "A" * 32, "last_name": "New-Name"}
    assert b"<LocalId>" not in partial.to_bytes()


def test_lists_and_fixed_attributes():
    section = SectionInfo(ref_id="A" * 32, schedules=[ScheduleInfo("B" * 32, ["C" * 32, "D" * 32])])
    data = section.to_bytes()
    assert data.count(b"<StaffPersonalRefId>") == 2 and b'TermInfoRefId="' + b"B" * 32 in data
    assert b'<Email Type="Primary">' in StaffPersonal(email="t@x").to_bytes()


def test_version_specific_fields_are_left_out_for_2_0r1():
    section = SectionInfo(ref_id="A" * 32, section_code="3")
    assert b"<SectionCode>" in section.to_bytes("2.4")
    assert b"<SectionCode>" not in section.to_bytes("2.0r1")


def test_bad_typed_value_is_a_clear_error():
    bad = b'<GradingAssignmentScore xmlns="http://www.sifinfo.org/infrastructure/2.x"><ScorePoints>9.5</ScorePoints></GradingAssignmentScore>'
    with pytest.raises(SifXmlError, match="ScorePoints"):
        GradingAssignmentScore.from_bytes(bad)
    score = GradingAssignmentScore(score_percent=Decimal("87.5"))
    assert GradingAssignmentScore.from_bytes(score.to_bytes()).score_percent == Decimal("87.5")


def test_unknown_objects_are_kept_not_dropped():
    data = HAND_WRITTEN_ISO_8859_1.replace(b"StudentPersonal", b"StudentContact")
    records = list(iter_payload_records(data))
    assert len(records) == 2 and all(isinstance(r, UnknownRecord) for r in records)
    assert records[0].object_name == "StudentContact" and records[0].ref_id == "D3E34B359D75101A8C3D00AA001A1652"
