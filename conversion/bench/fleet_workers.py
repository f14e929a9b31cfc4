"""Real Celery worker processes for a fleet night, the live districts they sync, and waiting for the night's end.

Shared by the fleet bench (conversion/bench/fleet.py) and the fleet tests (tests/fleet/). Workers are
`celery -A conversion worker` processes started with the caller's environment plus `env`, so they reach the same
PostgreSQL database (DATABASE_URL) and the same broker queues (CELERY_BROKER_URL, CELERY_KEY_PREFIX).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from conversion.bench.fleet_peers import CANVAS_TOKEN, FleetDistrict

REPO = Path(__file__).resolve().parents[2]
ALL_QUEUES = "maintenance,sif,canvas,default"


@dataclass
class Worker:
    """One `celery worker` (its main process and its pool) in a process group of its own."""

    name: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL to the whole group at once, as when a machine dies: nothing runs its shutdown."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, timeout: float = 30) -> None:
        """A warm shutdown (SIGTERM: running tasks finish), then SIGKILL if it takes longer than `timeout`."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker's process group so far (live processes, from /proc)."""
        return group_cpu_seconds(self.process.pid)


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system, children that ended included) of the live processes of a process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid pgrp session ... utime(12) stime(13) cutime(14) cstime(15) (0-based here).
        if int(fields[2]) == pgid:
            total += sum(int(x) for x in fields[11:15])
    return total / tick


def start_worker(
    name: str,
    *,
    concurrency: int = 1,
    queues: str = ALL_QUEUES,
    env: dict[str, str] | None = None,
    pool: str = "prefork",
    log: Path | None = None,
    prefix: Iterable[str] = (),
    extra: Iterable[str] = (),
) -> Worker:
    """Start a worker; `prefix` runs it through another command (e.g. `ip netns exec NAME`), `extra` are more
    arguments of `celery worker` (e.g. `--include MODULE`)."""
    command = [
        *prefix,
        sys.executable,
        "-m",
        "celery",
        "-A",
        "conversion",
        "worker",
        "-n",
        f"{name}@%h",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-P",
        pool,
        "-l",
        "warning",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        *extra,
    ]
    # The child keeps its own copy of the log's descriptor: ours is closed as soon as it is started.
    with open(log, "ab") if log else open(os.devnull, "wb") as out:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(name, process)


def make_live(district: FleetDistrict, *, school_year: int = 2027):
    """The district and its conversion as after go-live: the nightly sync runs for it."""
    from conversion.models import Conversion, ConversionState, District

    row = District.objects.create(
        name=f"Fleet district {district.slug}",
        slug=district.slug,
        powerschool_url=f"https://{district.slug}.powerschool.example.org",
        canvas_url=district.canvas.url,
        canvas_token=CANVAS_TOKEN,
        canvas_account_id=str(district.canvas.root_account_id),
    )
    return Conversion.objects.create(
        district=row,
        school_year=school_year,
        agent_source_id=f"SIFCONVERT_{district.slug.upper()}",
        zis_url=district.zis_url,
        zone_id=district.zone.zone_id,
        state=ConversionState.LIVE,
    )


def wait_for_night(business_date: dt.date, expected: int, *, timeout: float, poll: float = 0.5) -> list:
    """Wait until `expected` nightly sync jobs of `business_date` exist and all have ended; returns them.
    Raises TimeoutError (with the states seen) when the night takes longer than `timeout` seconds."""
    from conversion.models import Job, JobKind

    deadline = time.monotonic() + timeout
    jobs: list = []
    while time.monotonic() < deadline:
        jobs = list(Job.objects.filter(kind=JobKind.SYNC, params__business_date=business_date.isoformat()))
        if len(jobs) >= expected and all(job.is_finished for job in jobs):
            return jobs
        time.sleep(poll)
    states: dict[str, int] = {}
    for job in jobs:
        states[job.state] = states.get(job.state, 0) + 1
    raise TimeoutError(f"after {timeout:.0f} s: {len(jobs)} of {expected} sync jobs, states {states}")
