"""The library pulls simulated districts over real HTTP, through crashes and ZIS restarts."""

from sifclient.powerschool import PUBLISHED_OBJECTS, District, DistrictSpec
from sifclient.zis import ZisSimulator
from tests.sifclient.simhelpers import Store, new_agent


class Crash(Exception):
    pass


def test_pull_10k_student_district_all_objects_counts_match():
    spec = DistrictSpec(seed=7, students=10_000, schools=6)
    with ZisSimulator(spec) as zis:
        agent = new_agent(zis)
        agent.register()
        requests = {agent.request(name): name for name in PUBLISHED_OBJECTS}
        store = Store()
        packets_by_request: dict[str, list[int]] = {}

        def handler(delivered):
            assert delivered.kind == "response" and delivered.error is None
            assert requests[delivered.request_msg_id] == delivered.object_name or delivered.object_name is None
            packets_by_request.setdefault(delivered.request_msg_id, []).append(delivered.packet_number)
            store.save(delivered)

        stats = agent.drain(handler, seen=store.seen)
    expected = District(spec).counts()
    assert store.counts() == expected
    assert len(set(store.keys())) == sum(expected.values())  # nothing duplicated
    assert stats.stopped_by == "empty" and stats.skipped_seen == 0
    assert expected["StudentPersonal"] == 10_000
    for numbers in packets_by_request.values():
        assert numbers == list(range(1, len(numbers) + 1))
    assert len(packets_by_request["".join(k for k, v in requests.items() if v == "StudentPersonal")]) > 10


def test_pull_killed_part_way_and_restarted_loses_and_duplicates_nothing():
    spec = DistrictSpec(seed=3, students=1500)
    store = Store()
    with ZisSimulator(spec) as zis:
        first = new_agent(zis, max_buffer_size=16_384)
        first.register()
        for name in ("StudentPersonal", "StudentSectionEnrollment"):
            first.request(name)
        calls = {"n": 0}

        def crashing_handler(delivered):
            calls["n"] += 1
            if calls["n"] == 4:
                raise Crash("worker died before storing")  # not stored, not acked
            store.save(delivered)
            if calls["n"] == 7:
                raise Crash("worker died after storing, before the ack")

        for _ in range(2):
            try:
                first.drain(crashing_handler, seen=store.seen)
            except Crash:
                pass
        assert calls["n"] == 7
        del first  # the agent object is dropped mid-drain; a new process takes over

        second = new_agent(zis, max_buffer_size=16_384)
        second.register()
        stats = second.drain(store.save, seen=store.seen)
    assert stats.skipped_seen == 1  # the stored-but-unacked packet came again and was recognised
    expected = District(spec).counts()
    assert store.counts() == {k: expected[k] for k in ("StudentPersonal", "StudentSectionEnrollment")}
    assert len(set(store.keys())) == len(store.keys())


def test_zis_restart_mid_drain_with_state_dir_resumes(tmp_path):
    spec = DistrictSpec(seed=5, students=600)
    store = Store()
    zis = ZisSimulator(spec, state_dir=tmp_path).start()
    port = zis.port
    holder = {"zis": zis, "restarts": 0}

    def restart_zis(_delay):  # the agent's back-off sleep: the ZIS comes back while we wait
        if holder["zis"] is None:
            holder["zis"] = ZisSimulator(spec, state_dir=tmp_path, port=port).start()
            holder["restarts"] += 1

    try:
        agent = new_agent(zis, max_buffer_size=8_192, sleep=restart_zis, retries=3)
        agent.register()
        agent.request("StudentPersonal")
        agent.drain(store.save, seen=store.seen, max_messages=3)
        zis.stop()
        holder["zis"] = None
        stats = agent.drain(store.save, seen=store.seen)
    finally:
        if holder["zis"] is not None:
            holder["zis"].stop()
    assert holder["restarts"] == 1
    assert stats.stopped_by == "empty"
    assert store.counts() == {"StudentPersonal": 600}
    assert len(set(store.keys())) == 600


def test_zis_restart_without_state_reregisters(tmp_path):
    spec = DistrictSpec(students=50)
    zis = ZisSimulator(spec).start()
    port = zis.port
    agent = new_agent(zis)
    agent.register()
    zis.stop()
    again = ZisSimulator(spec, port=port).start()
    try:
        assert agent.ping() is True  # "not registered" -> re-register -> ping again
        assert agent.reregistrations == 1
        assert again.zone.zone_status().node("canvas") is not None
    finally:
        again.stop()
