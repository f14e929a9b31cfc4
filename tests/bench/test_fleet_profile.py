"""py-spy's samples of a fleet night are attributed to the phase of the deepest frame that starts one."""

from __future__ import annotations

from conversion.bench.fleet_profile import OTHER, attribute, parse

CHILD = 'process 100:"python -m conversion.bench.child fleet {} out.json"'
WORKER = 'process 200:"python -m celery -A conversion worker -n fleet0@%h -P threads"'


def stack(*frames: str) -> str:
    return ";".join(frames)


def test_a_sample_goes_to_its_deepest_phase():
    frames = [
        "Thread._bootstrap (threading.py:1002)",
        "run_job (conversion/services/jobs.py:299)",
        "run_sync (conversion/services/sync.py:130)",
        "pull (conversion/services/pull.py:213)",
        "Ingest.handle (conversion/services/pull.py:120)",
        "row_values (conversion/services/sif_keys.py:80)",
    ]
    assert attribute(frames, "workers") == "pull: storing what the zone sent (ingest)"
    assert attribute(frames[:4], "workers") == "pull: SIF exchanges with the ZIS"
    assert attribute(frames[:3], "workers") == "rest of the sync (decision, packages kept, runs saved)"
    assert attribute(["Thread._bootstrap (threading.py:1002)"], "workers") == OTHER


def test_raw_output_is_split_by_process_role_and_counted():
    lines = [
        stack(CHILD, "Thread.run (threading.py:982)", "Zone.handle (zone.py:236)", "build_packet (packets.py:126)")
        + " 30",
        stack(CHILD, "Thread.run (threading.py:982)", "Zone.handle (zone.py:236)", "_ack (zone.py:268)") + " 10",
        stack(CHILD, WORKER, "Thread.run (threading.py:982)", "read_for (canvas_keep.py:170)", "x (y.py:1)") + " 5",
        "a line that is not a stack",
        "",
    ]
    breakdown = parse(lines, rate=10)
    assert breakdown.samples["peers"] == {
        "ZIS: building response packets (the district's records as XML)": 30,
        "ZIS: the rest of each SIF message": 10,
    }
    assert breakdown.samples["workers"] == {"reading Canvas's integration ids (canvas_keep)": 5}
    assert breakdown.seconds("peers") == 4.0
    rows = breakdown.rows()
    assert rows[0] == ["workers", "reading Canvas's integration ids (canvas_keep)", "0.5 s", "100%"]
    assert ["peers", "ZIS: the rest of each SIF message", "1.0 s", "25%"] in rows
