"""SIF_Error codes: every constant sifclient uses is a (category, code) pair the SIF 2.4 schema enumerates for that
category and means what its name says; the simulator answers with them; the agent re-registers once on 4/9 only."""

from __future__ import annotations

import functools
from collections import Counter

import pytest
from lxml import etree

from sifclient import Agent, SifError, SifErrorInfo
from sifclient import errors as E
from sifclient.messages import (
    build_ack,
    build_event,
    build_register,
    build_request,
    build_subscribe,
    read_message,
)
from sifclient.powerschool import DistrictSpec
from sifclient.query import Query
from sifclient.records import GradingAssignment
from sifclient.safexml import parse_message_bytes, q
from sifclient.streaming import scan_message
from sifclient.zis.packets import iter_response_packets
from sifclient.zis.zone import Zone
from tests.sifclient.sifschema import assert_valid, schema_dir

XS = "{http://www.w3.org/2001/XMLSchema}"

# The simpleType of SIF_Error/SIF_Code that enumerates each category's codes in SIF_Message.xsd.
XSD_CODE_TYPES = {
    1: "InfrastructureXMLValidationErrorType",
    2: "InfrastructureEncryptionErrorType",
    3: "InfrastructureAuthenticationErrorType",
    4: "InfrastructureAccessAndPermissionErrorType",
    5: "InfrastructureRegistrationErrorType",
    6: "InfrastructureProvisionErrorType",
    7: "InfrastructureSubscriptionErrorType",
    8: "InfrastructureRequestAndResponseErrorType",
    9: "InfrastructureEventReportingAndProcessingErrorType",
    10: "InfrastructureTransportErrorType",
    11: "InfrastructureSystemErrorType",
    12: "InfrastructureGenericMessageHandlingErrorType",
    13: "InfrastructureSMBErrorType",
    14: "InfrastructureSIFZoneServiceErrorType",
}

# A constant's prefix names its category (see sifclient.errors).
PREFIXES = {
    "CODE_XML_": 1,
    "CODE_ACCESS_": 4,
    "CODE_REG_": 5,
    "CODE_PROV_": 6,
    "CODE_SUB_": 7,
    "CODE_REQ_": 8,
    "CODE_EVENT_": 9,
    "CODE_TRANSPORT_": 10,
    "CODE_SYSTEM_": 11,
    "CODE_GENERIC_": 12,
    "CODE_SMB_": 13,
    "CODE_ZONE_": 14,
}

# What each constant must mean (words of its meaning in the SIF 2.x table), so a name cannot drift from its
# number again. A new constant must be added here.
MEANINGS = {
    "CODE_XML_NOT_WELL_FORMED": "not well-formed",
    "CODE_XML_INVALID": "Generic validation error",
    "CODE_XML_INVALID_VALUE": "Invalid value",
    "CODE_XML_MISSING_ELEMENT": "Missing mandatory element",
    "CODE_ACCESS_SOURCE_ID_NOT_REGISTERED": "SIF_SourceId is not registered",
    "CODE_REG_TRANSPORT_UNSUPPORTED": "transport protocol is unsupported",
    "CODE_REG_VERSION_UNSUPPORTED": "SIF_Version(s) not supported",
    "CODE_REG_REGISTERED_FOR_PUSH": "registered for Push mode",
    "CODE_PROV_ALREADY_HAS_PROVIDER": "already has a provider",
    "CODE_REQ_INVALID_OBJECT": "Invalid object",
    "CODE_REQ_NO_PROVIDER": "No provider",
    "CODE_REQ_VERSION_UNSUPPORTED": "does not support requested SIF_Version",
    "CODE_REQ_MAX_BUFFER_SIZE_UNSUPPORTED": "does not support requested SIF_MaxBufferSize",
    "CODE_REQ_EXTENDED_QUERY_UNSUPPORTED": "No support for SIF_ExtendedQuery",
    "CODE_EVENT_INVALID": "Invalid event",
    "CODE_TRANSPORT_UNREACHABLE": "Unable to establish connection",
    "CODE_GENERIC_MESSAGE_UNSUPPORTED": "Message not supported",
    "CODE_GENERIC_NO_SUCH_MESSAGE": "No such message",
    "CODE_GENERIC_VERSION_UNSUPPORTED": "Version not supported",
}
NO_TABLE = {"CODE_GENERIC", "CODE_ZONE_NOT_READY"}  # 1 in every category; category 14 has no words in ERROR_CODES


@functools.cache
def xsd_codes(version_folder: str = "openzis_us_2_4") -> dict[int, set[int]]:
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    root = etree.parse(str(schema_dir() / version_folder / "SIF_Message.xsd.xml"), parser).getroot()
    types = {t.get("name"): t for t in root.iter(f"{XS}simpleType") if t.get("name")}
    return {
        category: {int(e.get("value")) for e in types[name].iter(f"{XS}enumeration")}
        for category, name in XSD_CODE_TYPES.items()
    }


def code_constants() -> dict[str, int]:
    return {name: value for name, value in vars(E).items() if name.startswith("CODE_")}


def category_of(name: str) -> int:
    return next(category for prefix, category in PREFIXES.items() if name.startswith(prefix))


def test_every_code_constant_is_a_pair_the_2_4_schema_allows_for_its_category():
    allowed = xsd_codes()
    constants = code_constants()
    assert set(constants) == set(MEANINGS) | NO_TABLE, "name the meaning of a new CODE_ constant in MEANINGS"
    assert all(constants["CODE_GENERIC"] in allowed[category] for category in range(1, 15))
    for name, code in constants.items():
        if name == "CODE_GENERIC":
            continue
        category = category_of(name)
        assert code in allowed[category], f"{name} = {code} is not a category {category} code in the 2.4 schema"
        if name in MEANINGS:
            meaning = E.ERROR_CODES[category].get(code)
            assert meaning is not None and MEANINGS[name] in meaning, (name, category, code, meaning)


def test_the_code_tables_hold_only_codes_the_schema_enumerates():
    allowed = xsd_codes()
    assert set(E.ERROR_CODES) == set(range(1, 14))
    for category, table in E.ERROR_CODES.items():
        assert set(table) <= allowed[category], (category, set(table) - allowed[category])
        assert table[1] == "Generic error"


def test_not_registered_and_push_mode_are_told_apart():
    assert (E.CAT_ACCESS, E.CODE_ACCESS_SOURCE_ID_NOT_REGISTERED) == (4, 9)
    assert (E.CAT_REGISTRATION, E.CODE_REG_REGISTERED_FOR_PUSH) == (5, 9)
    assert "registered for Push mode" in E.ERROR_CODES[5][9] and "not registered" in E.ERROR_CODES[4][9]


# ---- the simulator answers with spec codes ---------------------------------------------------------------


def zone() -> Zone:
    return Zone("ALPHA", DistrictSpec(students=5, schools=1))


def error_of(reply: bytes) -> tuple[int, int]:
    assert_valid(reply)
    error = scan_message(reply).error
    assert error is not None
    assert error.code in xsd_codes()[error.category]
    return error.category, error.code


def register(z: Zone, source_id: str = "canvas", **kwargs) -> bytes:
    return z.handle(build_register(source_id, name="Canvas", max_buffer_size=65536, **kwargs).data)


def test_the_simulator_answers_with_spec_codes():
    z = zone()
    assert error_of(z.handle(build_request("canvas", Query("StudentPersonal"), max_buffer_size=65536).data)) == (4, 9)
    assert error_of(register(z, mode="Push")) == (5, E.CODE_REG_TRANSPORT_UNSUPPORTED)
    assert error_of(register(z, versions=("1.5r1",))) == (5, 4)
    register(z)
    assert error_of(z.handle(build_request("canvas", Query("BusInfo"), max_buffer_size=65536).data)) == (8, 4)
    assert error_of(
        z.handle(build_request("canvas", Query("StudentPersonal"), max_buffer_size=65536, versions=("3.0",)).data)
    ) == (8, 7)
    assert error_of(
        z.handle(build_ack("canvas", original_source_id="PowerSchool", original_msg_id="A" * 32, status_code=1).data)
    ) == (12, 6)
    ref = "B" * 32  # names nothing in the district
    unknown = build_event(
        "canvas",
        GradingAssignment(ref_id=ref, section_ref_id=ref, term_ref_id=ref, school_ref_id=ref, category_ref_id=ref),
        "Add",
    )
    assert error_of(z.handle(unknown.data)) == (9, 3)
    assert error_of(z.handle(build_event("canvas", GradingAssignment(ref_id=ref), "Add").data)) == (1, 6)


def _without(data: bytes, path: str, attribute: str | None = None) -> bytes:
    """The message with the first element at ``path`` removed (or only its ``attribute``)."""
    root = etree.fromstring(data)
    element = root.find(path)
    assert element is not None
    if attribute is None:
        parent = element.getparent()
        assert parent is not None
        parent.remove(element)
    else:
        del element.attrib[attribute]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_a_request_whose_query_names_no_object_gets_a_validation_error_not_a_dropped_connection():
    # The default zone raised AttributeError out of handle() here (Query.from_xml read a missing SIF_QueryObject).
    z = zone()
    register(z)

    def request() -> bytes:  # a new SIF_MsgId each time: a repeated one is answered "duplicate" (status 7)
        return build_request("canvas", Query("StudentPersonal"), max_buffer_size=65536).data

    query_object = f".//{q('SIF_QueryObject')}"
    assert error_of(z.handle(_without(request(), query_object))) == (E.CAT_XML_VALIDATION, E.CODE_XML_INVALID)
    assert error_of(z.handle(_without(request(), query_object, "ObjectName"))) == (1, 3)


def test_a_subscription_to_an_unnamed_object_is_refused_and_the_zone_status_still_reads():
    # The None it stored among the names broke every later SIF_GetZoneStatus (sorted() of None and text).
    z = zone()
    register(z)

    def subscribe() -> bytes:
        return build_subscribe("canvas", ["StudentPersonal", "SchoolInfo"]).data

    assert error_of(z.handle(_without(subscribe(), f".//{q('SIF_Object')}", "ObjectName"))) == (1, 3)
    assert scan_message(z.handle(subscribe())).error is None
    assert z.zone_status().subscribers["canvas"] == ("SchoolInfo", "StudentPersonal")


def test_a_buffer_too_small_for_one_object_gets_responder_does_not_support_the_buffer_size():
    packet = next(iter_response_packets(DistrictSpec(students=5, schools=1), "StudentPersonal", 300))
    assert_valid(packet.data)
    error = scan_message(packet.data).delivered.error
    assert (error.category, error.code) == (E.CAT_REQUEST_RESPONSE, E.CODE_REQ_MAX_BUFFER_SIZE_UNSUPPORTED) == (8, 8)


# ---- the agent re-registers once on 4/9, never on 5/9 ----------------------------------------------------


class ZoneTransport:
    """The simulator's Zone in-process; ``faults[key]`` answers that message with a SIF_Error instead."""

    url = "inprocess://ALPHA"

    def __init__(self, z: Zone, faults: dict[str, SifErrorInfo] | None = None):
        self.zone = z
        self.faults = faults or {}
        self.counts: Counter = Counter()

    def post(self, data: bytes) -> bytes:
        info = read_message(parse_message_bytes(data))
        key = info.kind
        if info.kind == "SIF_SystemControl":
            key = etree.QName(info.body.find(q("SIF_SystemControlData"))[0]).localname
        self.counts[key] += 1
        error = self.faults.get(key)
        if error is not None:
            return build_ack("SimZIS", original_source_id=info.source_id, original_msg_id=info.msg_id, error=error).data
        return self.zone.handle(data)

    def close(self) -> None:
        pass


NOT_REGISTERED = SifErrorInfo(4, 9, "SIF_SourceId is not registered")
PUSH_MODE = SifErrorInfo(5, 9, "Agent is registered for Push mode")


def agent_on(transport: ZoneTransport) -> Agent:
    agent = Agent(transport, source_id="canvas", retries=2, retry_delay=0, sleep=lambda s: None)
    agent.register()
    return agent


def test_a_zis_that_lost_the_registration_gets_one_and_the_request_goes_again():
    transport = ZoneTransport(zone())
    agent = agent_on(transport)
    transport.zone.agents.clear()  # a restart without state: the zone itself answers 4/9
    agent.request("SchoolInfo")
    assert agent.reregistrations == 1 and transport.counts["SIF_Register"] == 2
    assert transport.counts["SIF_Request"] == 2
    assert agent.drain(lambda d: None).responses == 1


SENDS = {
    "SIF_Request": lambda agent: agent.request("SchoolInfo"),
    "SIF_GetMessage": lambda agent: agent.get_message(),
    "SIF_Sleep": lambda agent: agent.sleep(),
}


@pytest.mark.parametrize("key", sorted(SENDS))
def test_a_zis_that_keeps_answering_not_registered_gets_one_re_registration(key):
    transport = ZoneTransport(zone(), {key: NOT_REGISTERED})
    agent = agent_on(transport)
    with pytest.raises(SifError) as caught:
        SENDS[key](agent)
    assert (caught.value.category, caught.value.code) == (4, 9)
    assert agent.reregistrations == 1 and transport.counts["SIF_Register"] == 2 and transport.counts[key] == 2


@pytest.mark.parametrize("key", sorted(SENDS))
def test_registered_for_push_mode_is_raised_without_re_registering(key):
    transport = ZoneTransport(zone(), {key: PUSH_MODE})
    agent = agent_on(transport)
    with pytest.raises(SifError) as caught:
        SENDS[key](agent)
    assert (caught.value.category, caught.value.code) == (5, 9) and caught.value.during == key
    assert agent.reregistrations == 0 and transport.counts["SIF_Register"] == 1 and transport.counts[key] == 1


def test_an_agent_that_never_registered_does_not_register_on_not_registered():
    transport = ZoneTransport(zone())
    agent = Agent(transport, source_id="canvas", retries=0, sleep=lambda s: None)
    with pytest.raises(SifError) as caught:
        agent.get_message()
    assert (caught.value.category, caught.value.code) == (4, 9)
    assert transport.counts["SIF_Register"] == 0
