"""The ZIS simulator: queue semantics, packetting, determinism, switches, control API, validity."""

import httpx
import pytest

from sifclient import SifError
from sifclient.errors import CAT_ACCESS, CAT_TRANSPORT, CAT_ZONE_SERVICES, CODE_ACCESS_SOURCE_ID_NOT_REGISTERED
from sifclient.messages import STATUS_DUPLICATE, build_system_control
from sifclient.powerschool import PUBLISHED_OBJECTS, District, DistrictSpec
from sifclient.query import Condition, Query
from sifclient.streaming import scan_message
from sifclient.zis import ZisSimulator, iter_response_packets
from tests.sifclient.simhelpers import Capture, Naps, Store, new_agent


def pull(agent, *object_names):
    store = Store()
    for name in object_names:
        agent.request(name)
    agent.drain(store.save, seen=store.seen)
    return store


def test_every_message_the_simulator_sends_is_schema_valid():
    capture = Capture()
    spec = DistrictSpec(students=30, previous_school_years=True, excluded_schools=True, smp_on=True)
    with ZisSimulator(spec, on_send=capture) as zis:
        for source_id, versions in (("canvas24", ("2.*",)), ("legacy20", ("2.0r1",))):
            agent = new_agent(
                zis, source_id, accepted_versions=versions, version=versions[0].replace("*", "4"), max_buffer_size=8192
            )
            agent.register()
            agent.zone_status()
            agent.ping()
            pull(agent, *PUBLISHED_OBJECTS)
        agent.request("StudentPersonal", Query("StudentPersonal", elements=("LocalId",)))
        agent.drain(lambda d: None)
        with pytest.raises(SifError):
            agent.request("StaffPersonal", Query("StaffPersonal"), destination_id="nobody")
        zis.update_spec(zone_not_ready=True)
        with pytest.raises(SifError):
            agent.request("StudentPersonal")
        zis.update_spec(zone_not_ready=False, push_mode=True)
        with pytest.raises(SifError):
            agent.request("StudentPersonal")
    assert capture.assert_all_valid() > 50


def test_redelivery_until_acked_duplicates_and_empty_queue():
    with ZisSimulator(DistrictSpec(students=20)) as zis:
        agent = new_agent(zis)
        agent.register()
        request_id = agent.request("StudentPersonal")
        first = agent.get_message().delivered
        again = agent.get_message().delivered
        assert first.msg_id == again.msg_id and first.request_msg_id == request_id  # oldest unacked again
        agent.ack(first)
        assert agent.get_message().status_code == 9
        duplicate = build_system_control("canvas", "SIF_Ping")
        agent.transport.post(duplicate.data)
        reply = scan_message(agent.transport.post(duplicate.data))
        assert reply.status_code == STATUS_DUPLICATE


def test_selective_message_blocking_holds_events_until_final_ack():
    with ZisSimulator(DistrictSpec(students=20, smp_on=True)) as zis:
        agent = new_agent(zis)
        agent.register()  # smp_on queues three unsolicited attendance events
        event = agent.get_message().delivered
        assert event.kind == "event" and event.object_name == "StudentDailyAttendance"
        agent.ack(event, status_code=2)  # intermediate: freeze
        agent.request("LEAInfo")
        response = agent.get_message().delivered  # responses still flow while events are held
        assert response.kind == "response"
        agent.ack(response)
        assert agent.get_message().status_code == 9
        agent.ack(event, status_code=3)  # final ack ends SMB
        assert agent.get_message().delivered.kind == "event"


def test_packets_respect_the_requesters_buffer_and_are_numbered():
    spec = DistrictSpec(students=300)
    packets = list(iter_response_packets(spec, "StudentPersonal", 4096))
    assert [p.packet_number for p in packets] == list(range(1, len(packets) + 1))
    assert all(len(p.data) <= 4096 for p in packets)
    assert [p.more_packets for p in packets] == [True] * (len(packets) - 1) + [False]
    assert sum(p.record_count for p in packets) == 300
    small = list(iter_response_packets(spec, "StudentPersonal", 600))
    error = scan_message(small[0].data).delivered.error  # 8/8: responder cannot honour SIF_MaxBufferSize
    assert len(small) == 1 and (error.category, error.code) == (8, 8)


def test_same_spec_same_bytes_and_day_churn():
    spec = DistrictSpec(seed=11, students=200)
    a = [p.data for p in iter_response_packets(spec, "StudentPersonal", 65536)]
    b = [p.data for p in iter_response_packets(spec, "StudentPersonal", 65536)]
    assert a == b
    day1 = District(spec.replace(day=1))
    day0 = District(spec)
    assert day1.count("StudentPersonal") == day0.count("StudentPersonal") + 3
    assert day1.count("StudentSectionEnrollment") < day0.count("StudentSectionEnrollment") + 3 * 4
    renamed = [i for i in range(200) if day0.student(i).last_name != day1.student(i).last_name]
    assert len(renamed) == 1
    assert day0.student(5).ref_id == day1.student(5).ref_id  # identities are stable across days


def test_query_conditions_select_records():
    with ZisSimulator(DistrictSpec(students=40)) as zis:
        agent = new_agent(zis)
        agent.register()
        wanted = District(zis.spec).student(7)
        agent.request("StudentPersonal", Query("StudentPersonal", (Condition("LocalId", "EQ", wanted.local_id),)))
        records = []
        agent.drain(lambda d: records.extend(d.records()))
    assert records == [wanted]


def test_unregistered_agent_gets_sif_source_id_not_registered():
    with ZisSimulator(DistrictSpec(students=5)) as zis:
        agent = new_agent(zis)
        with pytest.raises(SifError) as caught:
            agent.request("StudentPersonal")
        assert (caught.value.category, caught.value.code) == (CAT_ACCESS, CODE_ACCESS_SOURCE_ID_NOT_REGISTERED)
        assert "Access and permissions" in str(caught.value) and agent.reregistrations == 0  # it never registered


def test_sleeping_agent_gets_status_8():
    naps = Naps()
    with ZisSimulator(DistrictSpec(students=5)) as zis:
        agent = new_agent(zis, sleep=naps)
        agent.register()
        agent.request("LEAInfo")
        agent.sleep()
        assert agent.drain(lambda d: None).stopped_by == "sleeping"
        assert naps == [0.01, 0.02]  # asked again asleep_retries times, after a growing pause
        assert agent.zone_status().node("canvas").sleeping
        agent.wakeup()
        assert agent.drain(lambda d: None).handled == 1


# --- troubleshooting switches ----------------------------------------------------------------


def test_previous_school_years_switch_shows_old_years():
    with ZisSimulator(DistrictSpec(students=30, previous_school_years=True)) as zis:
        agent = new_agent(zis)
        agent.register()
        records = []
        for name in ("TermInfo", "SectionInfo", "StudentSchoolEnrollment", "StudentSectionEnrollment"):
            agent.request(name)
        agent.drain(lambda d: records.extend(d.records()))
    years = {r.school_year for r in records}
    assert years == {2025, 2026}
    assert any(r.OBJECT_NAME == "StudentSchoolEnrollment" and r.time_frame == "Historical" for r in records)


def test_excluded_schools_switch_adds_schools_with_students():
    with ZisSimulator(DistrictSpec(students=200, excluded_schools=True)) as zis:
        agent = new_agent(zis)
        agent.register()
        store_records = []
        for name in ("SchoolInfo", "StudentSchoolEnrollment"):
            agent.request(name)
        agent.drain(lambda d: store_records.extend(d.records()))
    schools = {r.ref_id: r.name for r in store_records if r.OBJECT_NAME == "SchoolInfo"}
    assert {"District Office", "Summer School", "Graduated Students"} <= set(schools.values())
    enrolled = {schools[r.school_ref_id] for r in store_records if r.OBJECT_NAME == "StudentSchoolEnrollment"}
    assert {"Summer School", "Graduated Students"} <= enrolled


def test_mappings_missing_switch_drops_the_dcid():
    with ZisSimulator(DistrictSpec(students=10, mappings_missing=True)) as zis:
        agent = new_agent(zis)
        agent.register()
        records = []
        agent.request("StudentPersonal")
        agent.drain(lambda d: records.extend(d.records()))
    assert len(records) == 10 and all(r.dcid is None for r in records)
    assert all(
        r.dcid is not None and r.dcid != int(r.local_id)
        for r in District(DistrictSpec(students=10)).iter_records("StudentPersonal")
        for r in [r[1]]
    )


def test_push_mode_switch_shows_in_zone_status_and_fails_requests():
    with ZisSimulator(DistrictSpec(students=5, push_mode=True)) as zis:
        agent = new_agent(zis)
        agent.register()
        status = agent.zone_status()
        assert status.node(status.provider_of("StudentPersonal")).mode == "Push"
        with pytest.raises(SifError) as caught:
            agent.request("StudentPersonal")
        assert caught.value.category == CAT_TRANSPORT and "Push mode" in str(caught.value)


def test_smp_switch_adds_state_extras_and_unsolicited_events():
    with ZisSimulator(DistrictSpec(students=5, smp_on=True)) as zis:
        agent = new_agent(zis)
        agent.register()
        agent.request("StudentPersonal")
        delivered = []
        agent.drain(lambda d: delivered.append((d.kind, d.object_name, list(d.records()))))
    events = [d for d in delivered if d[0] == "event"]
    assert {e[1] for e in events} == {"StudentDailyAttendance"}
    students = [r for d in delivered if d[0] == "response" for r in d[2]]
    assert all("CO_SASID" in s.extended_elements for s in students)


def test_zone_not_ready_switch():
    with ZisSimulator(DistrictSpec(students=5, zone_not_ready=True)) as zis:
        agent = new_agent(zis)
        agent.register()
        assert agent.zone_status().ready is False
        with pytest.raises(SifError) as caught:
            agent.request("SchoolInfo")
        assert caught.value.category == CAT_ZONE_SERVICES
        zis.update_spec(zone_not_ready=False)
        assert agent.zone_status().ready is True


def test_control_api():
    with ZisSimulator(DistrictSpec(students=5)) as zis:
        base = zis.base_url
        assert httpx.get(f"{base}/_sim/spec").json()["students"] == 5
        assert httpx.post(f"{base}/_sim/spec", json={"students": 9, "smp_on": True}).json()["smp_on"] is True
        assert httpx.post(f"{base}/_sim/day", json={}).json()["day"] == 1
        assert httpx.get(f"{base}/_sim/counts").json()["StudentPersonal"] == 12
        assert httpx.post(f"{base}/_sim/spec", json={"nonsense": 1}).status_code == 400
        agent = new_agent(zis)
        agent.register()
        kinds = [m["kind"] for m in httpx.get(f"{base}/_sim/received").json()]
        assert kinds == ["SIF_Register"]
        assert httpx.get(f"{base}/_sim/grades").json() == []
