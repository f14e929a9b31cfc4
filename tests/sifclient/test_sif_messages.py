"""Every message the library builds is valid SIF 2.4, and 2.0r1 where the message exists there."""

import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from sifclient.errors import SifErrorInfo, SifProtocolError
from sifclient.messages import (
    Provision,
    build_ack,
    build_event,
    build_provision,
    build_register,
    build_request,
    build_response,
    build_subscribe,
    build_system_control,
    build_unregister,
    choose_version,
    read_ack,
    read_message,
    version_matches,
)
from sifclient.powerschool import PUBLISHED_OBJECTS, District, DistrictSpec
from sifclient.query import Condition, Query
from sifclient.records import GradingAssignment, GradingAssignmentScore, StudentPersonal
from sifclient.safexml import parse_message_bytes, q
from sifclient.zonestatus import ZoneNode, ZoneStatus
from tests.sifclient.sifschema import assert_valid, is_valid

REF = "0123456789ABCDEF0123456789ABCDEF"
VERSIONS = ["2.4", "2.0r1"]


def all_builders(version):
    district = District(DistrictSpec(students=5, previous_school_years=True, excluded_schools=True, smp_on=True))
    yield build_register(
        "canvas", name="Canvas <&> agent", max_buffer_size=262144, versions=("2.*", "2.0r1"), version=version
    )
    yield build_unregister("canvas", version=version)
    yield build_subscribe("canvas", ["StudentPersonal", "SectionInfo"], version=version)
    yield build_provision(
        "canvas",
        Provision(subscribe=("StudentPersonal",), request=PUBLISHED_OBJECTS, publish_add=("GradingAssignment",)),
        version=version,
    )
    for command in ("SIF_Ping", "SIF_Sleep", "SIF_Wakeup", "SIF_GetMessage", "SIF_GetZoneStatus"):
        yield build_system_control("canvas", command, version=version)
    yield build_request("canvas", Query("StudentPersonal"), max_buffer_size=65536, version=version)
    yield build_request(
        "canvas",
        Query(
            "StudentPersonal",
            (Condition("@RefId", "EQ", REF), Condition("Name/LastName", "NE", "O'Brien & Co")),
            "Or",
            ("LocalId", "Name"),
        ),
        max_buffer_size=65536,
        versions=("2.*",),
        version=version,
        destination_id="PowerSchool",
    )
    for name in PUBLISHED_OBJECTS:
        records = [r for _, r in district.iter_records(name)][:3]
        yield build_response(
            "PowerSchool",
            destination_id="canvas",
            request_msg_id=REF,
            packet_number=2,
            more_packets=True,
            records=records,
            version=version,
        )
    yield build_response(
        "PowerSchool",
        destination_id="canvas",
        request_msg_id=REF,
        error=SifErrorInfo(8, 4, "No provider", "none"),
        version=version,
    )
    yield build_event(
        "canvas",
        GradingAssignment(
            ref_id=REF,
            section_ref_id=REF,
            term_ref_id=REF,
            school_ref_id=REF,
            category_ref_id=REF,
            description="Essay",
            points_possible=10,
            create_date=dt.date(2025, 9, 1),
            due_date=dt.date(2025, 9, 8),
            weight=Decimal("1.5"),
        ),
        "Add",
        version=version,
    )
    yield build_event(
        "canvas",
        GradingAssignmentScore(
            student_ref_id=REF,
            section_ref_id=REF,
            school_ref_id=REF,
            assignment_ref_id=REF,
            score_points=9,
            score_percent=Decimal("92.5"),
            score_letter="A-",
        ),
        "Change",
        version=version,
    )
    yield build_event("canvas", StudentPersonal(ref_id=REF, last_name="Renamed"), "Change", version=version)
    yield build_event("canvas", StudentPersonal(ref_id=REF), "Delete", version=version)
    for code in (0, 1, 2, 3, 7, 8, 9):
        yield build_ack(
            "ZIS", original_source_id="canvas", original_msg_id=REF, status_code=code, status_desc="ok", version=version
        )
    for category in range(15 if version == "2.4" else 14):  # category 14 came after 2.0r1
        yield build_ack(
            "ZIS",
            original_source_id="canvas",
            original_msg_id=REF,
            version=version,
            error=SifErrorInfo(category, 1, "failure", "details"),
        )
    inner = etree.fromstring(
        build_response(
            "PowerSchool",
            destination_id="canvas",
            request_msg_id=REF,
            records=[district.record("StudentPersonal", 0)],
            version=version,
        ).data
    )
    yield build_ack("ZIS", original_source_id="canvas", original_msg_id=REF, status_code=0, data=inner, version=version)
    status = ZoneStatus(
        "PSZONE",
        "Zone",
        False,
        (ZoneNode("canvas", "Canvas", "Agent", "Pull", ("2.*",), 1024),),
        {"PowerSchool": ("StudentPersonal",)},
        {"canvas": ("StudentPersonal",)},
        ("2.4",),
        {"Note": "x"},
        "https://zis.example.org/zones/PSZONE",
    )
    yield build_ack(
        "ZIS", original_source_id="canvas", original_msg_id=REF, status_code=0, data=status.to_xml(), version=version
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_every_built_message_is_schema_valid(version):
    built = list(all_builders(version))
    assert len(built) > 40
    for outgoing in built:
        assert_valid(outgoing.data, version)


def test_invalid_message_is_caught_by_the_schema_helper():
    outgoing = build_register("canvas", name="x", max_buffer_size=1024)
    broken = outgoing.data.replace(b"<SIF_Mode>Pull</SIF_Mode>", b"<SIF_Mode>Sideways</SIF_Mode>")
    assert not is_valid(broken)


def test_user_data_is_escaped_not_concatenated():
    outgoing = build_register("canvas", name="</SIF_Name><SIF_Mode>Push</SIF_Mode>", max_buffer_size=1024)
    root = parse_message_bytes(outgoing.data)
    info = read_message(root)
    assert info.body.findtext("{*}SIF_Name") == "</SIF_Name><SIF_Mode>Push</SIF_Mode>"
    assert info.body.findtext("{*}SIF_Mode") == "Pull"


def test_ack_roundtrip_reads_status_error_and_data():
    ack = build_ack(
        "ZIS", original_source_id="canvas", original_msg_id=REF, error=SifErrorInfo(14, 1, "Zone is not ready")
    )
    info = read_ack(read_message(parse_message_bytes(ack.data)).body)
    assert info.error.category_name == "Zone services"
    assert "category 14 (Zone services), code 1: Zone is not ready" in str(info.error)
    assert info.original_msg_id == REF and info.status_code is None


def test_zone_status_roundtrip():
    status = ZoneStatus(
        "Z1",
        "Zone",
        True,
        (ZoneNode("ps", "PowerSchool", "Agent", "Push", ("2.4",), 262144, True),),
        {"ps": ("StudentPersonal", "SchoolInfo")},
        {},
        ("2.0r1", "2.4"),
        {},
        "http://zis/zones/Z1",
    )
    again = ZoneStatus.from_xml(status.to_xml())
    assert again == status
    assert again.provider_of("SchoolInfo") == "ps" and again.node("ps").mode == "Push"


def test_version_wildcards():
    assert version_matches("2.4", "2.*") and version_matches("2.0r1", "2.*")
    assert version_matches("2.0r1", "2.0r*") and not version_matches("2.4", "1.*")
    assert choose_version(["2.*"]) == "2.4"
    assert choose_version(["2.0r1"]) == "2.0r1"
    assert choose_version(["3.*"]) is None


def test_query_roundtrip():
    query = Query("StudentSchoolEnrollment", (Condition("@SchoolYear", "EQ", "2026"),), "And", ("EntryDate",))
    assert Query.from_xml(query.to_xml()) == query
    with pytest.raises(ValueError):
        Condition("LocalId", "LIKE", "1")


def test_a_query_without_its_object_is_a_protocol_error():
    # Query.from_xml raised AttributeError (no SIF_QueryObject) or built Query(None) (no ObjectName) before.
    with pytest.raises(SifProtocolError, match="SIF_QueryObject"):
        Query.from_xml(etree.Element(q("SIF_Query")))
    nameless = Query("StudentPersonal").to_xml()
    query_object = nameless.find(q("SIF_QueryObject"))
    assert query_object is not None
    del query_object.attrib["ObjectName"]
    with pytest.raises(SifProtocolError, match="ObjectName"):
        Query.from_xml(nameless)


def test_a_provision_object_without_a_name_is_left_out_and_the_rest_written_back():
    # Provision.from_xml kept None for it, which build_provision could not write (lxml refuses a None attribute).
    sent = build_provision("canvas", Provision(provide=("GradingAssignment", "GradingAssignmentScore")))
    root = etree.fromstring(sent.data)
    first = root.find(f".//{q('SIF_ProvideObjects')}/{q('SIF_Object')}")
    assert first is not None
    del first.attrib["ObjectName"]
    provision = Provision.from_xml(read_message(root).body)
    assert provision.provide == ("GradingAssignmentScore",)
    assert_valid(build_provision("canvas", provision).data)
