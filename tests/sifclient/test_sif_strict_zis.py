"""The strict ZIS profile (sifclient.zis.strict, modelled on OpenZIS) and the agent that survives it.

Each test names the OpenZIS file (openzis/OpenZIS, OpenZIS/ZIT_APPLICATION/main_lib/...) whose behaviour it
checks. Most run the zone in-process through a transport that calls ``zone.handle``, with a clock the
agent's pauses advance, so "the same second" is exact and no test waits.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from sifclient import Agent, SifError, ZisConnectionError, ZoneAsleepError
from sifclient.messages import (
    SIF_VERSIONS,
    STATUS_NO_MESSAGES,
    STATUS_SLEEPING,
    AgentAcl,
    Provision,
    build_register,
    build_system_control,
)
from sifclient.powerschool import PUBLISHED_OBJECTS, District, DistrictSpec
from sifclient.query import Condition, Query
from sifclient.records import GradingAssignment
from sifclient.schemas import SCHEMA_FOLDERS
from sifclient.streaming import scan_message
from sifclient.zis import StrictZone, ZisSimulator
from sifclient.zis.strict import DEFAULT_ACL
from tests.sifclient.simhelpers import Store, new_agent

SPEC = DistrictSpec(students=12, schools=1, seed=4)
AGENT = "KIMONO_TEST"


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class ZoneTransport:
    """Posts straight to a zone; ``lose`` names message kinds whose reply is lost once (the ZIS did get them)."""

    def __init__(self, zone, lose: set[str] = frozenset()):
        self.zone = zone
        self.lose = set(lose)
        self.sent: list[bytes] = []

    def post(self, data: bytes) -> bytes:
        self.sent.append(data)
        reply = self.zone.handle(data)
        for kind in list(self.lose):
            if f"<{kind}>".encode() in data or f"<{kind} ".encode() in data:
                self.lose.discard(kind)
                raise ZisConnectionError("connection reset after the request was sent", url="zone")
        return reply

    def close(self) -> None:
        pass


def strict(version: str = "2.4", *, define: bool = True, clock: Clock | None = None, spec=SPEC) -> StrictZone:
    zone = StrictZone("STRICT", spec, version=version, clock=clock or Clock())
    if define:
        zone.define_agent(AGENT)
    return zone


def agent_for(zone, *, lose=(), clock: Clock | None = None, **kwargs) -> Agent:
    clock = clock or zone.clock
    kwargs.setdefault("version", zone.version)
    return Agent(ZoneTransport(zone, set(lose)), source_id=AGENT, retry_delay=0.01, sleep=clock.sleep, **kwargs)


def assignment() -> GradingAssignment:
    district = District(SPEC)
    return GradingAssignment(
        ref_id="A" * 32,
        section_ref_id=district.record("SectionInfo", 0).ref_id,
        term_ref_id=district.ref_id("TermInfo", 0),
        school_ref_id=district.ref_id("SchoolInfo", 0),
        category_ref_id=district.ref_id("GradingCategory", 0),
        description="Essay 1",
        points_possible=10,
    )


def sif_error(excinfo) -> tuple[int, int]:
    return excinfo.value.category, excinfo.value.code


# --- one SIF version per zone: SifProcessRequest.php, retrieveVersion + GeneralError.php, versionError ----------


def test_a_message_in_another_version_is_refused_with_12_3_and_the_agent_switches_to_the_zones():
    zone = strict("2.0r1")
    agent = agent_for(zone, version="2.4", detect_version=False)
    with pytest.raises(SifError) as refused:
        agent.register()
    assert sif_error(refused) == (12, 3) and refused.value.info.extended_description == "Version not supported."

    agent = agent_for(zone, version="2.4")
    agent.register()  # the 12/3 reply is in the zone's version: the agent speaks it from now on
    assert agent.version == agent.detected_version == "2.0r1"
    assert any("SIF 2.0r1" in note for note in agent.notes)
    store = Store()
    agent.request("SchoolInfo")
    agent.drain(store.save, seen=store.seen)
    assert store.counts() == {"SchoolInfo": 1}


@pytest.mark.parametrize("version", sorted(SCHEMA_FOLDERS))
def test_every_message_the_agent_builds_passes_a_validating_zone_of_its_version(version):
    """ZIT_SERVER/index.php validates each message against the zone version's schema (strict: refuse)."""
    zone = strict(version)
    agent = agent_for(zone)
    agent.register()
    agent.provision(
        Provision(provide=("GradingAssignment",), publish_add=("GradingAssignment",), request=PUBLISHED_OBJECTS)
    )
    agent.zone_status()
    store = Store()
    for name in ("SchoolInfo", "StudentPersonal"):
        agent.request(name)
    agent.request("StaffPersonal", Query("StaffPersonal", conditions=(Condition("@RefId", "EQ", "0" * 32),)))
    agent.drain(store.save, seen=store.seen)
    [result] = agent.send_event("GradingAssignment", "Add", [assignment()])
    assert result.error is None, result.error
    agent.unregister()
    assert store.counts()["StudentPersonal"] == 12


def test_an_invalid_message_is_refused_with_a_category_1_error():
    zone = strict()
    data = build_register(AGENT, name="x", max_buffer_size=4096, version="2.4").data
    broken = data.replace(b"<SIF_Mode>Pull</SIF_Mode>", b"")
    envelope = scan_message(zone.handle(broken))
    assert (envelope.error.category, envelope.error.code) == (1, 2)
    assert "SIF_Mode" in envelope.error.extended_description or "not expected" in envelope.error.extended_description


# --- agents defined in the zone: Agent.php checkSourceId + RegisterError.php invalidSourceId ----------------------


def test_an_agent_not_defined_in_the_zone_gets_8_2_and_is_not_re_registered():
    zone = strict(define=False)
    agent = agent_for(zone)
    with pytest.raises(SifError) as refused:
        agent.register()
    assert sif_error(refused) == (8, 2)
    assert "SIF_SourceId is invalid" in refused.value.info.extended_description
    assert agent.reregistrations == 0


# --- not registered: RegisterError.php notRegisteredError (5/1) from Request/SystemControl/Ack/Event.php ---------


def test_a_dropped_registration_answers_5_1_and_the_agent_registers_again_once_and_says_so():
    clock = Clock()
    zone = strict(clock=clock)
    agent = agent_for(zone)
    agent.register()
    clock.sleep(5)
    zone.forget(AGENT)
    agent.request("SchoolInfo")  # 5/1 to the SIF_Request: register, send it again
    clock.sleep(5)
    zone.forget(AGENT)
    store = Store()
    agent.drain(store.save, seen=store.seen)  # 5/1 to the SIF_GetMessage: the same
    assert store.counts() == {"SchoolInfo": 1}
    assert agent.reregistrations == 2
    assert len([n for n in agent.notes if "not registered" in n]) == 2

    clock.sleep(5)
    zone.forget(AGENT)
    zone.define_agent("SOMEONE_ELSE")
    raw = scan_message(zone.handle(build_system_control(AGENT, "SIF_GetMessage").data))
    assert (raw.error.category, raw.error.code, raw.error.extended_description) == (5, 1, "Agent Not Registerd")


# --- register: Register.php + Agent.php updateRegistration (one row must change; one-second timestamps) ----------


def test_a_register_whose_reply_was_lost_survives_the_5_1_of_the_same_second():
    clock = Clock()
    zone = strict(clock=clock)
    agent = agent_for(zone, lose={"SIF_Register"})
    ack = agent.register()
    assert ack.error is None and agent.registered
    registers = [m for m in agent.transport.sent if b"<SIF_Register>" in m]
    assert len(registers) == 3  # the lost one, its copy (5/1 in the same second), one a second later
    assert any("same second" in note for note in agent.notes)


def test_a_registration_right_after_an_earlier_one_survives():
    zone = strict()
    agent_for(zone).register()  # the connection test, say
    again = agent_for(zone)
    again.register()  # the pull, in the same second
    assert again.registered and any("5/1" in n for n in again.notes)


def test_the_register_ack_carries_the_agents_acl():
    acl = AgentAcl(request=("SchoolInfo",), provide=("GradingAssignment",))
    zone = strict()
    zone.define_agent(AGENT, acl)
    agent = agent_for(zone)
    agent.register()
    assert agent.acl == acl


# --- no duplicate detection: Ack.php updateMessageQueue + DataObject.php updateEvent; Request.php setupRequest ----


def test_a_re_sent_ack_gets_9_1_and_the_drain_goes_on():
    zone = strict()
    agent = agent_for(zone, lose={"SIF_Ack"})
    agent.register()
    agent.request("SchoolInfo")
    agent.request("TermInfo")
    store = Store()
    stats = agent.drain(store.save, seen=store.seen)
    assert store.counts() == {"SchoolInfo": 1, "TermInfo": District(SPEC).count("TermInfo")}
    assert stats.acks_already_taken == 1

    raw = agent.transport.sent
    acks = [m for m in raw if b"<SIF_Ack>" in m]
    resent = scan_message(zone.handle(acks[0]))  # what the copy got: OpenZIS's EventACKError
    assert (resent.error.category, resent.error.code) == (9, 1)


def test_a_re_sent_request_is_queued_twice_with_answers_of_their_own_ids():
    zone = strict()
    agent = agent_for(zone, lose={"SIF_Request"})
    agent.register()
    request_id = agent.request("SchoolInfo")
    answers = []
    agent.drain(answers.append)
    assert [d.request_msg_id for d in answers] == [request_id, request_id]
    assert len({d.msg_id for d in answers}) == 2
    assert [d.packet_number for d in answers] == [1, 1]


# --- sleeping: SifProcessRequest.php checkIfZitIsSleeping / checkIfZoneIsSleeping -----------------------------------


def test_a_sleeping_zone_answers_every_message_with_status_8_and_the_agent_backs_off_then_says_so():
    clock = Clock()
    zone = strict(clock=clock)
    agent = agent_for(zone)
    agent.register()
    zone.set_asleep(True)
    start = clock.now
    with pytest.raises(ZoneAsleepError) as asleep:
        agent.request("SchoolInfo")
    assert asleep.value.during == "SIF_Request" and clock.now > start  # it paused before giving up
    assert zone.agents[AGENT].queue == type(zone.agents[AGENT].queue)()  # nothing was queued
    with pytest.raises(ZoneAsleepError):
        agent.register()
    assert agent.get_message().status_code == STATUS_SLEEPING
    assert agent.drain(lambda d: None).stopped_by == "sleeping"
    with pytest.raises(ZoneAsleepError):
        agent.send_event("GradingAssignment", "Add", [assignment()])
    zone.set_asleep(False)
    agent.request("SchoolInfo")
    assert agent.get_message().status_code == 0


def test_the_agent_wakes_with_a_zone_that_sleeps_briefly():
    clock = Clock()
    zone = strict(clock=clock)
    agent = agent_for(zone)
    agent.register()
    zone.set_asleep(True)
    real_sleep = agent._sleep

    def sleep_then_wake(seconds):
        real_sleep(seconds)
        zone.set_asleep(False)

    agent._sleep = sleep_then_wake
    agent.request("SchoolInfo")  # status 8, a pause, then accepted
    assert agent.get_message().delivered.object_name == "SchoolInfo"


# --- permissions: Request.php (4/5), Provision.php (4/3 ...), Event.php (4/10, 6/5) ---------------------------------


def test_requests_provisions_and_events_are_checked_against_the_acl_and_the_provider():
    zone = strict()
    zone.define_agent(
        AGENT, AgentAcl(request=("SchoolInfo",), provide=("GradingAssignment",), publish_change=("GradingAssignment",))
    )
    agent = agent_for(zone)
    agent.register()
    with pytest.raises(SifError) as refused:
        agent.request("StudentPersonal")
    assert sif_error(refused) == (4, 5)
    with pytest.raises(SifError) as refused:
        agent.provision(Provision(provide=("GradingAssignmentScore",)))
    assert sif_error(refused) == (4, 3)
    record = assignment()
    [not_provider] = agent.send_event("GradingAssignment", "Change", [record])
    assert (not_provider.error.category, not_provider.error.code) == (6, 5)
    agent.provision(Provision(provide=("GradingAssignment",), publish_change=("GradingAssignment",)))
    [no_add] = agent.send_event("GradingAssignment", "Add", [record])
    assert (no_add.error.category, no_add.error.code) == (4, 10)


# --- no ZoneReady; an empty answer is dropped (Response.php setupResponseNew) --------------------------------------


def test_zone_status_has_no_readiness_and_an_empty_answer_never_arrives():
    zone = strict()
    agent = agent_for(zone)
    agent.register()
    assert agent.zone_status().ready is None
    request_id = agent.request(
        "StudentPersonal", Query("StudentPersonal", conditions=(Condition("LocalId", "EQ", "no such student"),))
    )
    assert agent.get_message().status_code == STATUS_NO_MESSAGES
    assert zone.dropped_empty == [request_id]


# --- the profile switch and the fixture --------------------------------------------------------------------------


def test_the_command_line_switch_starts_a_strict_zone():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sifclient.zis",
            "--port",
            "0",
            "--students",
            "5",
            "--profile",
            "strict",
            "--zone-version",
            "2.1",
            "--agent",
            AGENT,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        outsider = scan_message(
            httpx.post(
                url, content=build_register("OUTSIDER", name="x", max_buffer_size=4096, version="2.1").data
            ).content
        )
        assert (outsider.error.category, outsider.error.code) == (8, 2)
        ours = scan_message(
            httpx.post(url, content=build_register(AGENT, name="x", max_buffer_size=4096, version="2.4").data).content
        )
        assert (ours.error.category, ours.error.code) == (12, 3)
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_credentials_without_a_password_are_refused_before_the_zone_starts():
    # "--credentials user" became a one-element tuple and the zone started, asking for a Basic credential no agent
    # could send; now argparse refuses it (exit status 2). The timeout only keeps a regression from hanging the run.
    finished = subprocess.run(
        [sys.executable, "-m", "sifclient.zis", "--port", "0", "--profile", "strict", "--credentials", "user"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2
    assert "--credentials takes USER:PASSWORD" in finished.stderr


def test_both_profiles_serve_a_whole_pull(zis_profile):
    with ZisSimulator(SPEC, profile=zis_profile, agents=(AGENT,)) as zis:
        agent = new_agent(zis, AGENT)
        agent.register()
        store = Store()
        for name in PUBLISHED_OBJECTS:
            agent.request(name)
        agent.drain(store.save, seen=store.seen)
        expected = {k: v for k, v in District(SPEC).counts().items() if v}
        assert store.counts() == expected
        assert (agent.acl is not None) == (zis_profile == "strict")
        assert DEFAULT_ACL.may("request", "StudentPersonal")
        assert set(SIF_VERSIONS) >= set(SCHEMA_FOLDERS)


# --- SystemControl.php getFirstMessage: queue order; Agent.php bufferSizeAllowed -----------------------------------


def test_responses_come_before_events_queued_earlier():
    spec = DistrictSpec(students=12, schools=1, seed=4, smp_on=True)  # three events queued at registration
    for zone in (strict(spec=spec), None):
        if zone is None:
            with ZisSimulator(spec, agents=(AGENT,)) as zis:
                agent = new_agent(zis, AGENT)
                agent.register()
                agent.request("SchoolInfo")
                assert agent.get_message().delivered.kind == "event"  # the default profile: arrival order
            continue
        agent = agent_for(zone)
        agent.register()
        agent.request("SchoolInfo")
        delivered: list = []
        agent.drain(delivered.append)
        assert [d.kind for d in delivered] == ["response", "event", "event", "event"]


def test_a_request_for_a_larger_buffer_than_registered_is_acked_and_never_queued():
    zone = strict()
    agent = agent_for(zone, max_buffer_size=8192)
    agent.register()
    agent.max_buffer_size = 65536  # a request asking more than the registration allowed
    agent.request("SchoolInfo")
    assert agent.get_message().status_code == STATUS_NO_MESSAGES


def test_ping_and_zone_status_answer_before_registering_subscriptions_need_known_objects():
    """SystemControl.php processPing / processZoneStatus check only the SourceId; Subscribe.php: 6/3, then 4/4."""
    zone = strict()
    agent = agent_for(zone)
    assert agent.ping() is True
    assert agent.zone_status().zone_id == "STRICT"
    with pytest.raises(SifError) as refused:
        agent.subscribe(["StudentPersonal"])
    assert sif_error(refused) == (5, 1)  # not registered (and the agent had not registered: no retry)
    agent.register()
    with pytest.raises(SifError) as refused:
        agent.subscribe(["BusInfo"])  # schema-valid, not in this zone's object table
    assert sif_error(refused) == (6, 3)
    with pytest.raises(SifError) as refused:
        agent.subscribe(["StudentPersonal"])
    assert sif_error(refused) == (4, 4)
