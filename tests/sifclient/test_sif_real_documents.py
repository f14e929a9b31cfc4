"""SIF 2.x documents that real systems produced (fixtures/real, sources in its README): every field read right.

The PowerSchool captures come from a Canvas SIF agent's test fixtures: a SIF_Ack carrying a SIF_Response
packet whose inner SIF_Message declares no namespace of its own, in ISO-8859-1 and in UTF-8, with the
comma-separated family e-mail addresses PowerSchool puts in the primary Email. The single objects are the
SIF 2.x specification's examples (as the agents' fixtures hold them, without a namespace declaration);
they are sent here in the envelopes of every version from 2.0r1 to 2.5, as a ZIS would deliver them.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from lxml import etree

from sifclient.errors import SifClientError, SifProtocolError, SifXmlError
from sifclient.records import (
    EMAIL_RULE,
    EmailChoice,
    ScheduleInfo,
    SchoolCourseInfo,
    SchoolInfo,
    SectionInfo,
    StaffPersonal,
    StudentPersonal,
    StudentSchoolEnrollment,
    StudentSectionEnrollment,
    TermInfo,
    UnreadableRecord,
    choose_email,
)
from sifclient.safexml import SIF_NS, parse_message_bytes
from sifclient.streaming import iter_payload_records, scan_message
from tests.sifclient.sifschema import assert_valid, is_valid, object_errors

REAL = Path(__file__).parent / "fixtures" / "real"
NS = {"s": SIF_NS}


def real(name: str) -> bytes:
    return (REAL / name).read_bytes()


# ---- PowerSchool captures --------------------------------------------------------------------------


def test_powerschool_iso_8859_1_packet_inside_an_ack_is_read_field_by_field():
    data = real("powerschool_2_0r1_ack_response_iso8859.xml")
    assert data.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    # As the zone sent it: the inner message declares no namespace of its own (it inherits the outer one).
    assert b'<SIF_Message xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" Version="2.0r1">' in data
    assert "<City>Ålesund</City>".encode("iso-8859-1") in data  # outside ASCII, in the declared encoding

    envelope = scan_message(data)
    assert (envelope.status_code, envelope.error, envelope.original_msg_id) == (
        0,
        None,
        "3B0DA428FB62897A792FB76D46A852CE",
    )
    d = envelope.delivered
    assert (d.kind, d.version, d.msg_id, d.source_id, d.destination_id) == (
        "response",
        "2.0r1",
        "46783B4472C18822B3893E6EA893F94C",
        "PowerSchool",
        "canvas",
    )
    assert (d.request_msg_id, d.packet_number, d.more_packets, d.object_name, d.action, d.error) == (
        "378E6A167344B6294E59BD034FE29C85",
        209,
        False,
        "StudentPersonal",
        None,
        None,
    )

    (student,) = list(d.records())
    assert student == StudentPersonal(
        ref_id="33616AC73899CDFF947E8494297946E4",
        local_id="02962",
        state_province_id="3297194",
        last_name="Delacroix",
        first_name="Tova",
        middle_name="Xavier",
        preferred_name=None,
        gender="M",
        birth_date=dt.date(1997, 3, 15),
        email="family54064@example.org,family14114@example.org",
        projected_graduation_year=2017,
        school_local_id="304",
        grade_level="09",
        extended_elements={"StudentEthnicity": "1002"},
    )
    assert student.email_choice == EmailChoice("family54064@example.org", ("family14114@example.org",))
    # The inner message, on its own, is a valid SIF 2.0r1 message, and so is the whole reply.
    inner = parse_message_bytes(data).find("s:SIF_Ack/s:SIF_Status/s:SIF_Data/s:SIF_Message", NS)
    assert_valid(etree.tostring(inner), "2.0r1")
    assert_valid(data, "2.0r1")


def _text(element, path: str) -> str | None:
    found = element.xpath(path, namespaces=NS)
    return found[0].strip() if found else None


def _student_by_xpath(element) -> StudentPersonal:
    """The StudentPersonal as plain XPath reads it: an independent reading to hold the typed reader to."""
    year = _text(element, "s:ProjectedGraduationYear/text()")
    birth = _text(element, "s:Demographics/s:BirthDate/text()")
    return StudentPersonal(
        ref_id=element.get("RefId"),
        local_id=_text(element, "s:LocalId/text()"),
        state_province_id=_text(element, "s:StateProvinceId/text()"),
        last_name=_text(element, "s:Name/s:LastName/text()"),
        first_name=_text(element, "s:Name/s:FirstName/text()"),
        middle_name=_text(element, "s:Name/s:MiddleName/text()"),
        preferred_name=_text(element, "s:Name/s:PreferredName/text()"),
        gender=_text(element, "s:Demographics/s:Gender/text()"),
        birth_date=dt.date.fromisoformat(birth) if birth else None,
        email=_text(element, "s:EmailList/s:Email[@Type='Primary']/text()"),
        projected_graduation_year=int(year) if year else None,
        school_local_id=_text(element, "s:MostRecent/s:SchoolLocalId/text()"),
        grade_level=_text(element, "s:MostRecent/s:GradeLevel/s:Code/text()"),
        extended_elements={
            e.get("Name"): e.text for e in element.xpath("s:SIF_ExtendedElements/s:SIF_ExtendedElement", namespaces=NS)
        },
    )


def test_powerschool_utf_8_packet_every_student_every_field():
    data = real("powerschool_2_0r1_ack_response_utf8.xml")
    envelope = scan_message(data)
    d = envelope.delivered
    assert (d.kind, d.version, d.source_id, d.packet_number, d.more_packets, d.object_name) == (
        "response",
        "2.0r1",
        "PowerSchool",
        1,
        True,
        "StudentPersonal",
    )
    students = list(d.records())
    expected = [_student_by_xpath(e) for e in parse_message_bytes(data).iter(f"{{{SIF_NS}}}StudentPersonal")]
    assert len(students) == len(expected) == 35
    assert students == expected
    assert any(not s.first_name.isascii() or not s.last_name.isascii() for s in students)  # UTF-8 read as such
    # The family e-mail lists, as PowerSchool sends them: "a,b" and "a, b".
    lists = [s for s in students if "," in (s.email or "")]
    assert len(lists) == 13 and any(", " in s.email for s in lists) and any(", " not in s.email for s in lists)
    for s in lists:
        first, *rest = [part.strip() for part in s.email.split(",")]
        assert s.email_choice == EmailChoice(first, tuple(rest))
    assert all(s.email_choice == EmailChoice(s.email) for s in students if s not in lists)
    assert_valid(data, "2.0r1")


def test_powerschool_empty_queue_ack():
    envelope = scan_message(real("powerschool_2_0r1_ack_no_messages_iso8859.xml"))
    assert (envelope.status_code, envelope.delivered, envelope.error) == (9, None, None)
    assert_valid(real("powerschool_2_0r1_ack_no_messages_iso8859.xml"), "2.0r1")


def test_event_delivered_in_an_ack():
    data = real("openagent_2_0r1_ack_event_studentpersonal.xml")
    d = scan_message(data).delivered
    assert (d.kind, d.version, d.object_name, d.action, d.msg_id, d.source_id, d.destination_id) == (
        "event",
        "2.0r1",
        "StudentPersonal",
        "Add",
        "D319F07F35B32206F68CC599E059D247",
        "test",
        "canvas",
    )
    assert list(d.records()) == [
        StudentPersonal(
            ref_id="DA88691341A2FEE547650D35DA3F87B9",
            local_id="P02896",
            state_province_id="WB3493",
            last_name="Felix",
            first_name="Noor",
            middle_name=None,
            preferred_name="Noor",
            gender="M",
            email="family34890@example.org",
        )
    ]
    assert_valid(data, "2.0r1")


# ---- the specification's objects, in the envelopes of 2.0r1 to 2.5 -------------------------------------

SCHEDULES = [
    ScheduleInfo(
        "5A7B76D6E4A642370EF9E3A8DB405E84", ["E863873DCE3D447DE5F630ED141DF969", "2593559769C0FEEEB857B54091AAB66C"]
    ),
    ScheduleInfo("5E0457B2D3E89A3165C0076B871AFBC9", ["D6AF9E4F4776873E41C6A76C53F3B133"]),
]
SPEC_OBJECTS = {
    "spec_2x_sectioninfo.xml": SectionInfo(
        ref_id="DA88691341A2FEE547650D35DA3F87B9",
        course_ref_id="2AFD6916AEB047DD396FF43795F78107",
        school_year=2006,
        local_id="427-6",
        schedules=SCHEDULES,
    ),
    "spec_2x_terminfo.xml": TermInfo(
        ref_id="A874858ABD81B63122F4BFC10236D1DA",
        school_ref_id="2AFD6916AEB047DD396FF43795F78107",
        school_year=2004,
        start_date=dt.date(2003, 1, 5),
        end_date=dt.date(2004, 4, 1),
        description="Spring Semester 2004",
        term_code="Sp2004",
    ),
    "spec_2x_schoolcourseinfo.xml": SchoolCourseInfo(
        ref_id="468D70BDC0601A801A3F2E839D5FE79E",
        school_ref_id="2252A6E09E547D013BC3F2311FD1ED27",
        school_year=2006,
        course_code="CS101",
        state_course_code="08-001",
        title="Gif, JPeg, or Png: What's the Difference?",
        description="Explore the various types of files related to graphic arts.",
    ),
    "spec_2x_studentsectionenrollment.xml": StudentSectionEnrollment(
        ref_id="734937AB1BA3EBB67F92C0FC1379BFE3",
        student_ref_id="B8DCBB59D7EBF1D70AB5CBA8BD6A250B",
        section_ref_id="E4106FB2EF12C2DEB71255C9DFA4E755",
        school_year=2002,
        entry_date=dt.date(2001, 9, 5),
        exit_date=dt.date(2002, 3, 1),
    ),
    "spec_2x_studentschoolenrollment.xml": StudentSchoolEnrollment(
        ref_id="E30CFBE91FDBE735D1E438BDA73A6FE2",
        student_ref_id="DA88691341A2FEE547650D35DA3F87B9",
        school_ref_id="C111624ECDEF2BEC8CD0B6C2D0F794F4",
        membership_type="Home",
        time_frame="Current",
        school_year=2004,
        entry_date=dt.date(2004, 1, 29),
        grade_level="10",
    ),
    "spec_2x_staffpersonal.xml": StaffPersonal(
        ref_id="14A462D47567B88BDECE141FA3336F9E",
        local_id="075015185",
        state_province_id="C0509172",
        last_name="Quintero",
        first_name="Dmitri",
        middle_name="Lindqvist",
        title="Principal",
        email="family06174@example.org",
    ),
    "spec_2x_schoolinfo.xml": SchoolInfo(
        ref_id="DA88691341A2FEE547650D35DA3F87B9",
        local_id="075015185",
        state_province_id="C0509172",
        name="Lincoln High School",
        lea_ref_id="D7DA9B1C9DC16AC561B4DE7ED8EEB245",
        grade_levels=["09", "10", "11", "12"],
    ),
    "spec_2x_studentpersonal.xml": StudentPersonal(
        ref_id="DA88691341A2FEE547650D35DA3F87B9",
        local_id="P02896",
        state_province_id="WB3493",
        last_name="Felix",
        first_name="Noor",
        middle_name=None,
        preferred_name="Noor",
        gender="M",
        email="family34890@example.org",
        extended_elements={
            "STUDENT_EMAIL": "family89745@example.org",
            "PASSWORD": "some_P@ssw0rd",
            "USERNAME": "some_username",
        },
    ),
}
# The agent's SchoolInfo example carries SchoolType "K12" (no such code) after SchoolName, where no version's
# schema allows it: it passes only the 2.5 envelope, which leaves the payload unchecked (xs:any lax).
INVALID_BEFORE_2_5 = {"spec_2x_schoolinfo.xml"}
VERSIONS = ("2.0r1", "2.1", "2.3", "2.4", "2.5")
SCHEMA_VERSIONS = ("2.0r1", "2.1", "2.4", "2.5")  # the schemas in shared/sif/xsd


def response(
    objects: bytes, version: str, *, encoding: str = "UTF-8", in_ack: bool = False, packet: str = "1", more: str = "No"
) -> bytes:
    """A SIF_Response packet around objects spliced in as text (a ZIS relays them as it got them); in_ack
    delivers it inside SIF_Ack/SIF_Status/SIF_Data with an inner message that declares no namespace."""
    inner_ns = "" if in_ack else f' xmlns="{SIF_NS}"'
    message = (
        (
            f'<SIF_Message{inner_ns} Version="{version}"><SIF_Response><SIF_Header>'
            f"<SIF_MsgId>{'1' * 32}</SIF_MsgId><SIF_Timestamp>2013-10-09T10:19:20-06:00</SIF_Timestamp>"
            f"<SIF_SourceId>PowerSchool</SIF_SourceId><SIF_DestinationId>canvas</SIF_DestinationId>"
            f"</SIF_Header><SIF_RequestMsgId>{'2' * 32}</SIF_RequestMsgId>"
            f"<SIF_PacketNumber>{packet}</SIF_PacketNumber><SIF_MorePackets>{more}</SIF_MorePackets>"
            f"<SIF_ObjectData>"
        ).encode(encoding)
        + objects
        + b"</SIF_ObjectData></SIF_Response></SIF_Message>"
    )
    if in_ack:
        message = (
            (
                f'<SIF_Message xmlns="{SIF_NS}" Version="{version}"><SIF_Ack><SIF_Header>'
                f"<SIF_MsgId>{'3' * 32}</SIF_MsgId><SIF_Timestamp>2013-10-09T10:42:16-06:00</SIF_Timestamp>"
                f"<SIF_SourceId>ZIS</SIF_SourceId></SIF_Header><SIF_OriginalSourceId>canvas"
                f"</SIF_OriginalSourceId><SIF_OriginalMsgId>{'4' * 32}</SIF_OriginalMsgId><SIF_Status>"
                f"<SIF_Code>0</SIF_Code><SIF_Data>"
            ).encode(encoding)
            + message
            + (b"</SIF_Data></SIF_Status></SIF_Ack></SIF_Message>")
        )
    return f'<?xml version="1.0" encoding="{encoding}"?>\n'.encode(encoding) + message


@pytest.mark.parametrize("in_ack", [False, True], ids=["response", "in-ack"])
@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1"])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(SPEC_OBJECTS))
def test_specification_objects_in_every_envelope(name, version, encoding, in_ack):
    objects = real(name).decode("utf-8").encode(encoding)
    data = response(objects, version, encoding=encoding, in_ack=in_ack)
    d = scan_message(data).delivered
    assert (d.kind, d.version, d.packet_number, d.more_packets, d.object_name) == (
        "response",
        version,
        1,
        False,
        SPEC_OBJECTS[name].OBJECT_NAME,
    )
    assert list(iter_payload_records(data)) == [SPEC_OBJECTS[name]]
    if version in SCHEMA_VERSIONS:
        meant_valid = version == "2.5" or name not in INVALID_BEFORE_2_5
        assert is_valid(data, version) is meant_valid


def event(obj: bytes, object_name: str, version: str, *, encoding: str = "UTF-8", action: str = "Change") -> bytes:
    """A SIF_Event carrying one object, delivered inside a SIF_Ack whose inner message declares no namespace."""
    message = (
        (
            f'<SIF_Message Version="{version}"><SIF_Event><SIF_Header><SIF_MsgId>{"5" * 32}</SIF_MsgId>'
            f"<SIF_Timestamp>2013-10-08T11:36:06-06:00</SIF_Timestamp><SIF_SourceId>PowerSchool</SIF_SourceId>"
            f'</SIF_Header><SIF_ObjectData><SIF_EventObject ObjectName="{object_name}" Action="{action}">'
        ).encode(encoding)
        + obj
        + b"</SIF_EventObject></SIF_ObjectData></SIF_Event></SIF_Message>"
    )
    return (
        (
            f'<?xml version="1.0" encoding="{encoding}"?>\n<SIF_Message xmlns="{SIF_NS}" Version="{version}">'
            f"<SIF_Ack><SIF_Header><SIF_MsgId>{'6' * 32}</SIF_MsgId><SIF_Timestamp>2013-10-08T13:19:15-06:00"
            f"</SIF_Timestamp><SIF_SourceId>ZIS</SIF_SourceId></SIF_Header><SIF_OriginalSourceId>canvas"
            f"</SIF_OriginalSourceId><SIF_OriginalMsgId>{'7' * 32}</SIF_OriginalMsgId><SIF_Status><SIF_Code>0"
            f"</SIF_Code><SIF_Data>"
        ).encode(encoding)
        + message
        + b"</SIF_Data></SIF_Status></SIF_Ack></SIF_Message>"
    )


@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1"])
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(SPEC_OBJECTS))
def test_specification_objects_in_every_event_envelope(name, version, encoding):
    record = SPEC_OBJECTS[name]
    data = event(real(name).decode("utf-8").encode(encoding), record.OBJECT_NAME, version, encoding=encoding)
    envelope = scan_message(data)
    d = envelope.delivered
    assert (envelope.status_code, d.kind, d.version, d.object_name, d.action, d.msg_id, d.source_id) == (
        0,
        "event",
        version,
        record.OBJECT_NAME,
        "Change",
        "5" * 32,
        "PowerSchool",
    )
    assert list(d.records()) == [record]
    if version in SCHEMA_VERSIONS:
        assert is_valid(data, version) is (version == "2.5" or name not in INVALID_BEFORE_2_5)


def test_a_section_keeps_every_schedule_and_every_teacher():
    (section,) = iter_payload_records(response(real("spec_2x_sectioninfo.xml"), "2.4"))
    assert section.schedules == SCHEDULES
    assert section.term_ref_ids == ["5A7B76D6E4A642370EF9E3A8DB405E84", "5E0457B2D3E89A3165C0076B871AFBC9"]
    assert section.teacher_ref_ids == [
        "E863873DCE3D447DE5F630ED141DF969",
        "2593559769C0FEEEB857B54091AAB66C",
        "D6AF9E4F4776873E41C6A76C53F3B133",
    ]
    # Written back, both schedules survive, in order, and the message stays valid.
    again = SectionInfo.from_bytes(section.to_bytes("2.4"))
    assert again.schedules == SCHEDULES
    assert_valid(response(section.to_bytes("2.4"), "2.4"), "2.4")


def with_prefixed_outer_message(data: bytes) -> bytes:
    """The same reply from a ZIS that binds the SIF namespace to a prefix on its own elements: the inner
    message, relayed as the provider sent it (no namespace declaration), falls out of every namespace."""
    marker = b"<SIF_Data>"
    head, rest = data.split(marker, 1)
    inner_end = rest.rindex(b"</SIF_Message>", 0, rest.rindex(b"</SIF_Data>")) + len(b"</SIF_Message>")
    inner, tail = rest[:inner_end], rest[inner_end:]
    head = re.sub(rb"<(/?)(SIF_\w+)", rb"<\1sif:\2", head).replace(b"xmlns=", b"xmlns:sif=", 1)
    tail = re.sub(rb"<(/?)(SIF_\w+)", rb"<\1sif:\2", tail)
    document = head + b"<sif:SIF_Data>" + inner + tail
    inner_message = etree.fromstring(document).find(
        "sif:SIF_Ack/sif:SIF_Status/sif:SIF_Data/SIF_Message", {"sif": SIF_NS}
    )
    assert inner_message is not None and inner_message.nsmap.get(None) is None  # truly unqualified
    return document


def test_an_inner_message_outside_every_namespace_is_read_not_dropped():
    data = real("powerschool_2_0r1_ack_response_iso8859.xml")
    document = with_prefixed_outer_message(data)
    envelope = scan_message(document)
    assert envelope.status_code == 0 and envelope.delivered.packet_number == 209
    assert envelope.delivered.version == "2.0r1" and envelope.delivered.source_id == "PowerSchool"
    assert list(envelope.delivered.records()) == list(scan_message(data).delivered.records())
    parsed = parse_message_bytes(document)
    assert parsed.find(".//s:SIF_Data/s:SIF_Message/s:SIF_Response/s:SIF_ObjectData/s:StudentPersonal", NS) is not None


# ---- malformed values: a SifClientError naming the element ------------------------------------------

ISO = "powerschool_2_0r1_ack_response_iso8859.xml"


@pytest.mark.parametrize(
    "old, new, error, names",
    [
        (b"<SIF_PacketNumber>209<", b"<SIF_PacketNumber>2O9<", SifProtocolError, "SIF_PacketNumber"),
        (b"<SIF_PacketNumber>209<", b"<SIF_PacketNumber>0<", SifProtocolError, "SIF_PacketNumber"),
        (b"<SIF_PacketNumber>209<", b"<SIF_PacketNumber>\xb2\xb3<", SifProtocolError, "SIF_PacketNumber"),
        (b"<SIF_MorePackets>No<", b"<SIF_MorePackets>Maybe<", SifProtocolError, "SIF_MorePackets"),
        (b"<SIF_Code>0<", b"<SIF_Code>zero<", SifProtocolError, "SIF_Code"),
    ],
)
def test_a_malformed_envelope_value_names_its_element(old, new, error, names):
    data = real(ISO)
    assert old in data
    with pytest.raises(error, match=names):
        scan_message(data.replace(old, new, 1))


@pytest.mark.parametrize(
    "old, new, names",
    [
        (b"<BirthDate>1997-03-15<", b"<BirthDate>03/15/1997<", "StudentPersonal/Demographics/BirthDate"),
        (b"<BirthDate>1997-03-15<", b"<BirthDate>19970315<", "StudentPersonal/Demographics/BirthDate"),
        (b"<BirthDate>1997-03-15<", b"<BirthDate>1997-02-30<", "StudentPersonal/Demographics/BirthDate"),
        (b"<ProjectedGraduationYear>2017<", b"<ProjectedGraduationYear>2017.0<", "ProjectedGraduationYear"),
        (b"<ProjectedGraduationYear>2017<", b"<ProjectedGraduationYear>2_017<", "ProjectedGraduationYear"),
    ],
)
def test_a_malformed_object_value_names_its_element(old, new, names):
    data = real(ISO)
    assert old in data
    delivered = scan_message(data.replace(old, new, 1)).delivered
    with pytest.raises(SifXmlError, match=names):
        list(delivered.records(strict=True))
    # By default the object is kept in its place, unread, with the error naming the element.
    (kept,) = delivered.records()
    assert isinstance(kept, UnreadableRecord) and kept.object_name == "StudentPersonal"
    assert names in kept.error and new.split(b">")[1].split(b"<")[0] in kept.xml


@pytest.mark.parametrize(
    "text, day",
    [
        ("1997-03-15Z", dt.date(1997, 3, 15)),
        ("1997-03-15-06:00", dt.date(1997, 3, 15)),
        (" 1997-03-15+05:30 ", dt.date(1997, 3, 15)),
    ],
)
def test_an_xs_date_with_a_time_zone_is_read(text, day):
    data = real(ISO).replace(b"<BirthDate>1997-03-15<", f"<BirthDate>{text}<".encode(), 1)
    (student,) = scan_message(data).delivered.records()
    assert student.birth_date == day


def test_malformed_section_year_and_every_error_is_a_sif_client_error():
    bad = real("spec_2x_sectioninfo.xml").replace(b'SchoolYear="2006"', b'SchoolYear="2OO6"')
    with pytest.raises(SifXmlError, match="SectionInfo/@SchoolYear"):
        list(iter_payload_records(response(bad, "2.4"), strict=True))
    (kept,) = iter_payload_records(response(bad, "2.4"))
    assert isinstance(kept, UnreadableRecord) and "SectionInfo/@SchoolYear" in kept.error
    assert issubclass(SifXmlError, SifClientError) and issubclass(SifProtocolError, SifClientError)


# ---- the e-mail rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, choice",
    [
        ("a@example.org", EmailChoice("a@example.org")),
        ("a@example.org,b@example.org", EmailChoice("a@example.org", ("b@example.org",))),
        ("a@example.org, b@example.org", EmailChoice("a@example.org", ("b@example.org",))),
        (
            "a@example.org; b@example.org c@example.org",
            EmailChoice("a@example.org", ("b@example.org", "c@example.org")),
        ),
        ("none yet, b@example.org", EmailChoice("b@example.org", (), ("none", "yet"))),
        ("<a@example.org>, a@example.org", EmailChoice("a@example.org")),
        ("a@localhost, b@example", EmailChoice(None, (), ("a@localhost", "b@example"))),
        ("", EmailChoice(None)),
        (None, EmailChoice(None)),
    ],
)
def test_the_email_rule(raw, choice):
    assert choose_email(raw) == choice
    assert choice.several == bool(choice.others or choice.invalid)


def test_the_email_rule_is_described_for_the_district():
    choice = choose_email("a@example.org, b@example.org")
    assert choice.describe() == "e-mail a@example.org chosen (first well-formed address); not used: b@example.org"
    assert "first well-formed address" in EMAIL_RULE


def test_the_primary_email_is_preferred_to_an_earlier_alternate():
    body = (
        b'<StaffPersonal RefId="' + b"A" * 32 + b'"><EmailList><Email Type="Alternate1">alt@example.org</Email>'
        b'<Email Type="Primary">main@example.org</Email></EmailList></StaffPersonal>'
    )
    (staff,) = iter_payload_records(response(body, "2.4"))
    assert staff.email == "main@example.org"
    only_alternate = body.replace(b'<Email Type="Primary">main@example.org</Email>', b"")
    (staff,) = iter_payload_records(response(only_alternate, "2.4"))
    assert staff.email == "alt@example.org"


def test_an_ack_with_an_unreadable_status_code_names_it():
    from sifclient.messages import read_ack

    ack = parse_message_bytes(
        real("powerschool_2_0r1_ack_no_messages_iso8859.xml").replace(b"<SIF_Code>9<", b"<SIF_Code>nine<")
    )
    with pytest.raises(SifProtocolError, match="SIF_Code"):
        read_ack(ack[0])
    assert read_ack(parse_message_bytes(real("powerschool_2_0r1_ack_no_messages_iso8859.xml"))[0]).status_code == 9


@pytest.mark.parametrize("name", sorted(SPEC_OBJECTS))
def test_each_specification_object_against_the_2_5_data_model(name):
    element = etree.fromstring(real(name).replace(b">", f' xmlns="{SIF_NS}">'.encode(), 1))
    errors = object_errors(element)
    if name in INVALID_BEFORE_2_5:
        assert (
            len(errors) == 2
            and "SchoolType" in errors[0]
            and "LEAInfoRefId': This element is not expected" in errors[1]
        )
    else:
        assert errors == []


def test_every_powerschool_student_against_the_2_5_data_model():
    for name in ("powerschool_2_0r1_ack_response_iso8859.xml", "powerschool_2_0r1_ack_response_utf8.xml"):
        students = list(parse_message_bytes(real(name)).iter(f"{{{SIF_NS}}}StudentPersonal"))
        assert students and all(object_errors(s) == [] for s in students)
