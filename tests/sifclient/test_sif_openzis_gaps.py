"""The last gaps of issue 20: unreadable SIF_Error values, one bad object in a packet, and OpenZIS's queue.

Each test of a strict-zone behaviour names the OpenZIS file (openzis/OpenZIS, OpenZIS/ZIT_APPLICATION/main_lib/...)
whose behaviour it checks.
"""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from sifclient import Agent, SifError, SifProtocolError, SifXmlError, ZisHttpStatusError
from sifclient.errors import SifErrorInfo
from sifclient.messages import (
    STATUS_NO_MESSAGES,
    AgentAcl,
    Provision,
    build_ack,
    build_response,
    read_ack,
    read_message,
)
from sifclient.powerschool import WRITE_BACK_OBJECTS, DistrictSpec
from sifclient.records import StudentPersonal, UnreadableRecord
from sifclient.safexml import parse_message_bytes
from sifclient.streaming import scan_message
from sifclient.zis import ZisSimulator
from tests.sifclient.simhelpers import Naps, new_agent
from tests.sifclient.test_sif_strict_zis import AGENT, agent_for, assignment, strict

# --- a SIF_Error whose category or code cannot be read --------------------------------------------------------


def error_ack(category: str, code: str) -> bytes:
    data = build_ack(
        "ZIS", original_source_id="canvas", original_msg_id="A" * 32, error=SifErrorInfo(4, 9, "Access and Permissions")
    ).data
    data = data.replace(b"<SIF_Category>4<", f"<SIF_Category>{category}<".encode(), 1)
    return data.replace(b"<SIF_Code>9<", f"<SIF_Code>{code}<".encode(), 1)


@pytest.mark.parametrize(
    "category, code, names",
    [
        ("four", "9", "SIF_Ack/SIF_Error/SIF_Category"),
        ("", "9", "SIF_Ack/SIF_Error/SIF_Category"),
        ("4", "9.0", "SIF_Ack/SIF_Error/SIF_Code"),
        ("4", "\u0669", "SIF_Ack/SIF_Error/SIF_Code"),  # an Arabic-Indic nine: int() would take it
    ],
)
def test_an_unreadable_error_category_or_code_is_a_protocol_error_naming_it(category, code, names):
    data = error_ack(category, code)
    with pytest.raises(SifProtocolError, match=names):
        scan_message(data)
    with pytest.raises(SifProtocolError, match=names):
        read_ack(read_message(parse_message_bytes(data)).body)
    assert read_ack(read_message(parse_message_bytes(error_ack("4", "9"))).body).error.code == 9


def test_an_unreadable_error_in_a_delivered_response_refuses_the_packet():
    packet = build_response(
        "PowerSchool",
        destination_id="canvas",
        request_msg_id="B" * 32,
        error=SifErrorInfo(8, 8, "SIF_MaxBufferSize is too small"),
    ).data
    with pytest.raises(SifProtocolError, match="SIF_Response/SIF_Error/SIF_Code"):
        scan_message(packet.replace(b"<SIF_Code>8<", b"<SIF_Code>8b<", 1))
    assert scan_message(packet).delivered.error.code == 8


class OneAnswer:
    """A ZIS that answers every message with the same bytes."""

    def __init__(self, reply: bytes):
        self.reply = reply

    def post(self, data: bytes) -> bytes:
        return self.reply

    def close(self) -> None:
        pass


def test_the_agent_does_not_read_an_unreadable_error_as_error_0():
    agent = Agent(OneAnswer(error_ack("x", "9")), source_id="canvas", retry_delay=0, sleep=lambda s: None)
    with pytest.raises(SifProtocolError, match="SIF_Category"):
        agent.register()
    with pytest.raises(SifError) as readable:
        Agent(OneAnswer(error_ack("8", "2")), source_id="canvas", sleep=lambda s: None).register()
    assert (readable.value.category, readable.value.code) == (8, 2)


# --- one bad object in a packet ------------------------------------------------------------------------------


def students(n: int) -> list[StudentPersonal]:
    return [
        StudentPersonal(
            ref_id=f"{i:032X}",
            local_id=str(100000 + i),
            last_name=f"Last{i}",
            first_name="F",
            birth_date=dt.date(2010, 1, 1 + i),
        )
        for i in range(n)
    ]


class PacketZis:
    """Delivers one packet, then reports an empty queue; keeps the order of what the agent did."""

    def __init__(self, packet: bytes, log: list[str]):
        self.packet, self.log, self.delivered = packet, log, False

    def post(self, data: bytes) -> bytes:
        info = read_message(parse_message_bytes(data))
        reply = dict(original_source_id="canvas", original_msg_id=info.msg_id)
        if info.kind == "SIF_SystemControl" and not self.delivered:
            self.delivered = True
            return build_ack("ZIS", status_code=0, data=etree.fromstring(self.packet), **reply).data
        if info.kind == "SIF_Ack":
            self.log.append("acked")
        return build_ack("ZIS", status_code=STATUS_NO_MESSAGES if info.kind == "SIF_SystemControl" else 0, **reply).data

    def close(self) -> None:
        pass


def test_one_bad_object_keeps_the_packets_other_objects_and_the_packet_is_acked_after_storing():
    packet = build_response("PowerSchool", destination_id="canvas", request_msg_id="C" * 32, records=students(3)).data
    packet = packet.replace(b"<BirthDate>2010-01-02<", b"<BirthDate>01/02/2010<", 1)
    log: list[str] = []
    stored: list = []

    def store(delivered):
        for record in delivered.records():
            stored.append(record)
            log.append("stored")

    agent = Agent(PacketZis(packet, log), source_id="canvas", sleep=lambda s: None)
    stats = agent.drain(store)
    assert stats.handled == 1 and log == ["stored", "stored", "stored", "acked"]
    first, bad, third = stored
    assert (first, third) == (students(3)[0], students(3)[2])
    assert isinstance(bad, UnreadableRecord)
    assert (bad.object_name, bad.ref_id) == ("StudentPersonal", f"{1:032X}")
    assert "StudentPersonal/Demographics/BirthDate" in bad.error and b"01/02/2010" in bad.xml
    # The caller that wants the first bad value to stop the packet (and leave it unacked) can have that.
    with pytest.raises(SifXmlError, match="BirthDate"):
        list(scan_message(packet).delivered.records(strict=True))


def test_a_packet_that_is_not_well_formed_is_still_refused_whole():
    packet = build_response("PowerSchool", destination_id="canvas", request_msg_id="D" * 32, records=students(3)).data
    cut = packet.replace(b"</LastName>", b"</Last>", 2)
    with pytest.raises(SifXmlError):
        list(scan_message(cut).delivered.records())


# --- the strict zone's queue, as OpenZIS keeps it ----------------------------------------------------------------


def test_a_message_delivered_and_not_acked_comes_back_before_a_response_queued_since():
    """systemcontrol/SystemControl.php, getFirstMessage: ordered by status (2, handed out, first), type, arrival."""
    zone = strict(spec=DistrictSpec(students=12, schools=1, seed=4, smp_on=True))  # three events at registration
    agent = agent_for(zone)
    agent.register()
    handed_out = []

    def crash(delivered):
        handed_out.append(delivered.msg_id)
        raise RuntimeError("the database went away before the event was stored")

    with pytest.raises(RuntimeError):
        agent.drain(crash)
    request_id = agent.request("SchoolInfo")  # queued after the event was handed out, not acked
    order = []
    stats = agent.drain(lambda d: order.append((d.kind, d.msg_id, d.request_msg_id)))
    assert order[0] == ("event", handed_out[0], None)  # the unacked event first, then responses before events
    assert [kind for kind, _, _ in order] == ["event", "response", "event", "event"], order
    assert order[1][2] == request_id and stats.handled == 4 and stats.acks_already_taken == 0


def test_a_packet_larger_than_the_requesters_buffer_never_reaches_the_requester():
    """response/Response.php, processResponse: compareBufferSize fails, the provider gets 8/11 (invalidBufferSize),
    and the SIF_Response that createResponseError builds for the requester is never queued."""
    zone = strict(spec=DistrictSpec(students=60, schools=1, seed=4))
    zone.provider_packet_size = 64 * 1024  # the provider packs to its own size, not to the request's
    agent = agent_for(zone, max_buffer_size=16 * 1024)
    agent.register()
    too_big = agent.request("StudentPersonal")
    fits = agent.request("SchoolInfo")
    answers = []
    stats = agent.drain(answers.append)
    assert [d.request_msg_id for d in answers] == [fits] and stats.stopped_by == "empty"
    assert zone.dropped_oversized == [(too_big, 1)]
    zone.provider_packet_size = None  # a provider that honours SIF_MaxBufferSize: every packet arrives
    again = agent.request("StudentPersonal")
    answers.clear()
    agent.drain(answers.append)
    assert answers and {d.request_msg_id for d in answers} == {again} and not answers[-1].more_packets


def test_an_event_a_receiver_cannot_take_is_not_queued_for_it_and_its_publisher_hears_success():
    """event/Event.php, publishEvent: a subscriber whose registered buffer is smaller than the event, or whose
    registered version is not the event's, only gets a log entry; the publisher's ack says success."""
    zone = strict()
    listens = AgentAcl(subscribe=WRITE_BACK_OBJECTS)
    for source_id in ("SMALL_BUFFER", "ROOMY", "OLD_VERSION"):
        zone.define_agent(source_id, listens)
    receivers = {}
    for source_id, buffer in (("SMALL_BUFFER", 512), ("ROOMY", 65536), ("OLD_VERSION", 65536)):
        receiver = agent_for(zone, max_buffer_size=buffer)
        receiver.source_id = source_id
        receiver.register()
        receiver.subscribe(["GradingAssignment"])
        receivers[source_id] = receiver
    zone.agents["OLD_VERSION"].version = "2.3"  # registered before the zone's administrator moved it to 2.4
    publisher = agent_for(zone)
    publisher.register()
    publisher.provision(Provision(provide=("GradingAssignment",), publish_add=("GradingAssignment",)))
    [sent] = publisher.send_event("GradingAssignment", "Add", [assignment()])
    assert sent.accepted
    got = {name: r.get_message() for name, r in receivers.items()}
    assert got["ROOMY"].delivered.msg_id == sent.msg_id
    assert got["SMALL_BUFFER"].status_code == STATUS_NO_MESSAGES == got["OLD_VERSION"].status_code
    assert sorted(zone.events_not_queued) == [
        (sent.msg_id, "OLD_VERSION", "version"),
        (sent.msg_id, "SMALL_BUFFER", "buffer"),
    ]
    assert [w.msg_id for w in zone.grade_write_backs] == [sent.msg_id]
    # The simulated PowerSchool is such a receiver too: registered in another version, it never gets the grade.
    zone.provider_version = "2.3"
    [lost] = publisher.send_event("GradingAssignment", "Add", [assignment()])
    assert lost.accepted and [w.msg_id for w in zone.grade_write_backs] == [sent.msg_id]
    assert (lost.msg_id, zone.provider_id, "version") in zone.events_not_queued
    assert AGENT not in {name for _, name, _ in zone.events_not_queued}


def test_an_event_nobody_subscribes_to_crashes_the_zis_with_http_500_and_nothing_is_queued():
    """event/Event.php, publishEvent: with no subscriber it calls GeneralError::generalError, which GeneralError.php
    does not define, so PHP stops with a fatal error (HTTP 500, no SIF answer) instead of an 11/1."""
    with ZisSimulator(DistrictSpec(students=12, schools=1, seed=4), profile="strict", agents=(AGENT,)) as zis:
        naps = Naps()
        agent = new_agent(zis, AGENT, retries=1, sleep=naps)
        agent.register()
        agent.provision(Provision(provide=("GradingAssignment",), publish_add=("GradingAssignment",)))
        zis.strict_zone.provider_subscribes = False  # PowerSchool's grade write-back is off
        assert zis.zone.provider_id not in agent.zone_status().subscribers
        with pytest.raises(ZisHttpStatusError) as crashed:
            agent.send_event("GradingAssignment", "Add", [assignment()])
        assert crashed.value.status_code == 500 and crashed.value.attempts == 2  # retried once, as any 5xx
        assert naps == [0.01]  # after the agent's retry_delay
        assert zis.grade_write_backs == []
        zis.strict_zone.provider_subscribes = True
        [sent] = agent.send_event("GradingAssignment", "Add", [assignment()])
        assert sent.accepted and [w.msg_id for w in zis.grade_write_backs] == [sent.msg_id]


def test_a_zone_whose_event_rows_are_born_processed_delivers_no_event_and_says_success():
    """event/Event.php publishEvent inserts the receiver's messagequeue row without a status_id; with the MySQL
    schema's DEFAULT 3 (db/mysql/update.sql) the row is processed at once and SystemControl.php getFirstMessage,
    which hands out status 1 or 2, never delivers it (seen on OpenZIS with MariaDB)."""
    zone = strict()
    zone.define_agent("LISTENER", AgentAcl(subscribe=WRITE_BACK_OBJECTS))
    listener = agent_for(zone)
    listener.source_id = "LISTENER"
    listener.register()
    listener.subscribe(["GradingAssignment"])
    publisher = agent_for(zone)
    publisher.register()
    publisher.provision(Provision(provide=("GradingAssignment",), publish_add=("GradingAssignment",)))
    zone.deliver_events = False
    [sent] = publisher.send_event("GradingAssignment", "Add", [assignment()])
    assert sent.accepted and zone.grade_write_backs == []
    assert listener.get_message().status_code == STATUS_NO_MESSAGES
    assert sorted(zone.events_not_queued) == sorted(
        [(sent.msg_id, "LISTENER", "status 3"), (sent.msg_id, zone.provider_id, "status 3")]
    )
