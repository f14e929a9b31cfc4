"""Where a fleet night's CPU goes: the fleet bench's child run under py-spy, its samples attributed to phases.

`python manage.py bench --fleet-profile N` runs a fleet of N districts (its first night and a 1-worker night) in the
bench's child, under `py-spy record --gil --subprocesses`: py-spy follows the Celery worker processes the child
starts, and `--gil` samples only the thread holding the GIL, so a process's samples stand for its Python CPU time
(waits on sockets and PostgreSQL are not sampled). Each sample is given to the deepest frame of its stack that names
a phase (`PHASES`), so a SIF exchange's ingest counts as the ingest, not as the pull around it.

py-spy (`pip install py-spy`, the `bench` extra) is a sampling profiler that reads another process's memory; it needs
no change to the processes it samples. It is not a test dependency: the tests check the attribution on made-up
stacks (tests/bench/test_fleet_profile.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_RATE = 50  # samples per second; py-spy falls behind above that on this 2-core machine with a fleet running

# (process role, phase, the function names that start it): the role is "workers" for the Celery worker processes,
# "peers" for the bench child (the ZIS and Canvas simulators, and the orchestration waiting for the night).
PHASES: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "workers": [
        ("pull: storing what the zone sent (ingest)", ("Ingest.handle",)),
        ("pull: SIF exchanges with the ZIS", ("pull",)),
        ("reading Canvas's integration ids (canvas_keep)", ("read_for",)),
        ("CSV build", ("build_package",)),
        ("removals against the last package", ("_removals",)),
        ("enrollment drops", ("_drops",)),
        ("sending the import and polling it", ("_submit_and_wait",)),
        ("rest of the sync (decision, packages kept, runs saved)", ("run_sync",)),
        ("job bookkeeping (claim, ZIS slot, diagnostics, progress)", ("run_job", "SlotTask.__call__")),
        ("Celery (start-up, broker, pool)", ("main", "WorkController.__init__")),
    ],
    "peers": [
        ("ZIS: building response packets (the district's records as XML)", ("build_packet",)),
        ("ZIS: the rest of each SIF message", ("Zone.handle",)),
        ("Canvas: running SIS imports", ("ImportRunner._work",)),
        ("Canvas: API requests", ("SimulatorHandler._dispatch",)),
        ("HTTP servers (both simulators)", ("BaseHTTPRequestHandler.handle", "AcceptLoop._run")),
        ("bench: setting up districts and waiting for the night", ("run",)),
    ],
}
OTHER = "other"


@dataclass
class Breakdown:
    """Samples by role and phase; `rate` converts samples to seconds."""

    rate: int = SAMPLE_RATE
    samples: dict[str, Counter] = field(default_factory=lambda: {role: Counter() for role in PHASES})

    def seconds(self, role: str) -> float:
        return sum(self.samples[role].values()) / self.rate

    def rows(self) -> list[list[str]]:
        out = []
        for role, counts in self.samples.items():
            total = sum(counts.values())
            for phase, n in counts.most_common():
                out.append([role, phase, f"{n / self.rate:,.1f} s", f"{n / max(total, 1):.0%}"])
        return out


def _function(frame: str) -> str:
    """`Class.method (path/file.py:line)` -> `Class.method`."""
    return frame.split(" (", 1)[0]


def _role(process_frame: str) -> str:
    return "workers" if " celery " in process_frame or "-m celery" in process_frame else "peers"


def attribute(frames: list[str], role: str) -> str:
    """The phase of one sample: the deepest frame that starts a phase of `role`, else OTHER."""
    names = [_function(f) for f in frames]
    for name in reversed(names):
        for phase, starts in PHASES[role]:
            if name in starts:
                return phase
    return OTHER


def parse(lines: Iterable[str], rate: int = SAMPLE_RATE) -> Breakdown:
    """A Breakdown of py-spy's raw output (`--format raw`: one stack per line, frames joined by ';', then a count;
    with --subprocesses every stack starts with its process chain, `process PID:"command"` frames)."""
    breakdown = Breakdown(rate=rate)
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        processes = [i for i, f in enumerate(frames) if f.startswith("process ")]
        if not processes:
            continue
        role = _role(frames[processes[-1]])
        breakdown.samples[role][attribute(frames[processes[-1] + 1 :], role)] += int(count)
    return breakdown


def run(options: dict, districts: int, *, say) -> tuple[Breakdown, dict]:
    """Run the fleet child under py-spy and return the breakdown and the child's own figures."""
    from conversion.bench import scratchdb
    from conversion.bench.fleet import child_args
    from conversion.bench.runner import REPO, child_command, child_env

    spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[bench]'")
    url = scratchdb.scratch_url(options["database"] + "_profile")
    scratchdb.create(url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            raw, result = Path(tmp) / "fleet.raw", Path(tmp) / "result.json"
            args = child_args(options, districts=districts, workers=[1], netns=[])
            command = child_command("fleet", args, result)
            say(f"fleet profile: {districts} districts under py-spy ({SAMPLE_RATE} samples/s, GIL holders only)")
            subprocess.run(
                [spy, "record", "--gil", "--subprocesses", "--format", "raw", "-r", str(SAMPLE_RATE), "-o", str(raw)]
                + ["--", *command],
                cwd=REPO,
                env=child_env(url),
                check=True,
                capture_output=True,
            )
            with raw.open() as lines:
                return parse(lines), json.loads(result.read_text())
    finally:
        scratchdb.drop(url)


def report(breakdown: Breakdown, figures: dict) -> str:
    from conversion.bench.report import table

    nights = ", ".join(
        f"{n['label']}: {n['seconds_to_last']:,.0f} s to the last district, workers' CPU {n['worker_cpu']:,.1f} s, "
        f"peers' CPU {n['peers_cpu']:,.1f} s"
        for n in figures.get("nights", [])
    )
    students = figures.get("sizes", {}).get("total", 0)
    return f"{figures.get('districts', '?')} districts, {students:,} students; {nights}.\n\n" + table(
        ["process", "phase", "CPU (GIL samples)", "share of the process"], breakdown.rows()
    )
