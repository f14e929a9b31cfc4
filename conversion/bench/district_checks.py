"""Per-district figures on an ingested snapshot: the SIS CSV build, the nightly "no new data" decision
and the mapping diff of every user. Each runs inside a child process (see child.py)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from unittest import mock

from django.db import transaction
from django.utils import timezone


def _build(snapshot) -> dict:
    """Build the snapshot's whole package once: rows, wall and CPU seconds (this machine is shared: CPU time is
    what the build itself costs), the zip's size, and the package."""
    from conversion.services.roster import DCID, Roster
    from conversion.services.sis_csv import build_package

    with tempfile.TemporaryDirectory() as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        package = build_package(Roster.for_snapshot(snapshot), Path(tmp) / "sis_import.zip", scheme=DCID)
        build_seconds, build_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        zip_bytes = (Path(tmp) / "sis_import.zip").stat().st_size
    return {
        "rows": sum(package.counts.values()),
        "counts": package.counts,
        "build_seconds": build_seconds,
        "build_cpu_seconds": build_cpu_seconds,
        "zip_bytes": zip_bytes,
        "package": package,
    }


def csv_build(snapshot_id: int) -> dict:
    """The CSV build alone, for the sizes measured only for it (the bench's --csv-sizes)."""
    from conversion.models import Snapshot

    built = _build(Snapshot.objects.select_related("conversion__district").get(pk=snapshot_id))
    built.pop("package")
    return built


def csv_and_nightly(snapshot_id: int) -> dict:
    """Build the whole package once (rows/s), then time run_sync's decision on two unchanged nights.

    The pull is the one thing replaced: the nightly job is handed the already ingested snapshot (night 1)
    and an identical new snapshot (night 2, as an unchanged pull produces), so what is timed is exactly
    what the real run_sync does after its pull: build or look up the package, compare, record the skip.
    """
    from conversion.jobs import Progress, worker_name
    from conversion.models import Job, JobKind, JobState, Snapshot, SyncRun, SyncState
    from conversion.services import pull, sync

    first = Snapshot.objects.select_related("conversion__district").get(pk=snapshot_id)
    conversion = first.conversion
    built = _build(first)
    package = built.pop("package")
    SyncRun.objects.create(
        conversion=conversion,
        trigger="manual",
        state=SyncState.IMPORTED,
        fingerprint=package.fingerprint,
        finished_at=timezone.now(),
        snapshot=first,
    )

    builds: list[float] = []
    real_build = sync.build_package

    def timed_build(*args, **kwargs):
        started = time.perf_counter()
        try:
            return real_build(*args, **kwargs)
        finally:
            builds.append(time.perf_counter() - started)

    def night(snapshot: Snapshot) -> tuple[float, SyncRun]:
        job = Job.objects.create(conversion=conversion, kind=JobKind.SYNC, params={"trigger": "manual"})
        job.claim(worker_name())  # progress is written under a claim, as a worker's run does
        with (
            mock.patch.object(pull, "pull", lambda conversion, *, job, progress=None: snapshot),
            mock.patch.object(sync, "build_package", timed_build),
        ):
            started = time.perf_counter()
            sync.run_sync(job, Progress(job))
            seconds = time.perf_counter() - started
        Job.objects.filter(pk=job.pk).update(state=JobState.SUCCEEDED, finished_at=timezone.now())  # one active sync
        return seconds, SyncRun.objects.get(job=job)

    cold_seconds, cold = night(first)
    if len(builds) != 1:
        raise RuntimeError(f"the first night built {len(builds)} packages, not one")
    second = Snapshot.objects.create(
        conversion=conversion,
        state=first.state,
        fingerprint=first.fingerprint,
        counts=first.counts,
        requests=first.requests,
        completed_at=timezone.now(),
        summary={k: v for k, v in first.summary.items() if k != "sis_packages"},
    )
    warm_seconds, warm = night(second)
    for run in (cold, warm):
        if run.state != SyncState.SKIPPED or run.fingerprint != package.fingerprint:
            raise RuntimeError(f"sync run {run.pk} ended {run.state}, not skipped with the same fingerprint")
    return {
        **built,
        "nightly_cold_seconds": cold_seconds,
        "cold_build_seconds": builds[0],
        "nightly_seconds": warm_seconds,
    }


def mapping_users(snapshot_id: int) -> dict:
    """diff_users of every person of the snapshot against as many Canvas users, and the rows saved."""
    from conversion.models import MappingDiff, Snapshot
    from conversion.services.mapping import CanvasUser, diff_users, save_rows
    from conversion.services.roster import Roster

    snapshot = Snapshot.objects.select_related("conversion").get(pk=snapshot_id)
    started = time.perf_counter()
    people = list(Roster.for_snapshot(snapshot).iter_people())
    read_seconds = time.perf_counter() - started
    # Canvas as the legacy sync left it: everyone under the PowerSchool ID, a few renamed, some departed.
    canvas = [
        CanvasUser(p.local_id, p.name if n % 97 else f"{p.first_name} Renamed", f"{p.last_name}, {p.first_name}")
        for n, p in enumerate(people)
        if n % 211
    ]
    canvas += [CanvasUser(f"9{n:07d}", f"Departed {n}") for n in range(len(people) - len(canvas))]
    started = time.perf_counter()
    rows = diff_users(people, canvas)
    diff_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with transaction.atomic():  # as run_mapping saves them
        diff = MappingDiff.objects.create(conversion=snapshot.conversion, snapshot=snapshot)
        save_rows(diff, rows)
    save_seconds = time.perf_counter() - started
    return {
        "people": len(people),
        "canvas_users": len(canvas),
        "rows": len(rows),
        "read_seconds": read_seconds,
        "diff_seconds": diff_seconds,
        "save_seconds": save_seconds,
    }
