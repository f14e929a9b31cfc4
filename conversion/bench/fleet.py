"""The fleet night: many live districts synced by the midnight beat run through the broker and real workers.

Runs in a bench child (`python -m conversion.bench.child fleet ...`) on a scratch database of its own. It starts the
peers in this process (hosted ZIS servers, one of them slow, and a Canvas per district: conversion/bench/fleet_peers),
makes every district live, runs a first night (every district's first, whole import), then one measured night per
worker count: each night every district's zone changes by a few % of its enrollments, beat's task
`conversion.scheduled.nightly_syncs` is sent to the broker, and the workers (`celery worker` processes, each running
several jobs at once on a thread pool, since a sync mostly waits on its peers) do the night. It checks that no
district ran twice and that no ZIS got more jobs at once than its limit, and times every district.

District sizes follow NCES's distribution of US regular public school districts by enrollment (Digest of Education
Statistics 2022, table 214.20, school year 2021-22): a log-normal fitted to its size classes (`fitted_lognormal`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

# NCES Digest of Education Statistics 2022, table 214.20 (nces.ed.gov/programs/digest/d22/tables/dt22_214.20.asp):
# regular public school districts by enrollment size, 2021-22 (117 of size not reported left out).
NCES_2021_22 = [
    (1, 299, 2558),
    (300, 599, 1922),
    (600, 999, 1810),
    (1000, 2499, 3185),
    (2500, 4999, 1854),
    (5000, 9999, 996),
    (10000, 24999, 610),
    (25000, None, 266),
]
LARGEST = 500_000  # the largest US districts are of this order (New York City's is larger; no other is)
SMALLEST = 20
MOUNTAIN_WINDOW_HOURS = 5.0  # 00:00 to 05:00 Mountain time
ENROLLMENTS_PER_STUDENT = 4  # DistrictSpec.sections_per_student


def fitted_lognormal() -> tuple[float, float]:
    """(mu, sigma) of ln(students): the least-squares line through (z of each class's cumulative share,
    ln of its upper bound), a probit fit of the NCES classes."""
    total = sum(n for _, _, n in NCES_2021_22)
    points, below = [], 0
    for _, upper, count in NCES_2021_22:
        below += count
        if upper is not None:
            z = statistics.NormalDist().inv_cdf(below / total)
            points.append((z, math.log(upper + 1)))
    zs, logs = zip(*points, strict=True)
    slope, intercept = statistics.linear_regression(zs, logs)
    return intercept, slope


def sample_sizes(count: int, *, seed: int = 2027) -> list[int]:
    """`count` district sizes (students), drawn from the fitted log-normal, clipped to [SMALLEST, LARGEST]."""
    mu, sigma = fitted_lognormal()
    rng = random.Random(seed)
    return [min(LARGEST, max(SMALLEST, round(rng.lognormvariate(mu, sigma)))) for _ in range(count)]


def nightly_change(students: int, share: float) -> int:
    """DistrictSpec `day` steps that change about `share` of the district's enrollments: each step adds 3 students
    (4 enrollments each) and drops 2 enrollments, so 14 enrollment rows change per step."""
    return max(1, round(share * ENROLLMENTS_PER_STUDENT * students / 14))


def spec_for(students: int, seed: int):
    from sifclient.powerschool import DistrictSpec

    return DistrictSpec(students=students, schools=max(1, min(40, students // 600)), seed=seed, school_year=2027)


def _shift_previous_nights() -> None:
    """Earlier nights of this run move one day back, so tonight's beat (keyed by today's business date) starts
    tonight's syncs instead of finding the earlier ones (start_nightly_syncs is idempotent per date)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE conversion_job SET params = jsonb_set(params, '{business_date}', "
            "to_jsonb(((params->>'business_date')::date - 1)::text)), "
            "idempotency_key = 'sync:' || conversion_id || ':' || ((params->>'business_date')::date - 1)::text "
            "WHERE kind = 'sync' AND params ? 'business_date'"
        )
        cursor.execute(
            "UPDATE conversion_syncrun SET business_date = business_date - 1 WHERE business_date IS NOT NULL"
        )


def _read_probes(folder: Path) -> list[dict]:
    lines = []
    for path in folder.glob("*.jsonl"):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def run(args: dict) -> dict:
    """One fleet bench: the first night, then a measured night per entry of `args["workers"]`."""
    from django.conf import settings

    from conversion import tasks
    from conversion.bench.fleet_peers import Peers
    from conversion.bench.fleet_workers import group_cpu_seconds, make_live, start_worker, wait_for_night
    from conversion.models import Job, JobKind, JobState, SyncRun
    from conversion.services.schedule import business_date
    from conversion.services.zis_slots import zis_host

    districts, scale = int(args["districts"]), float(args["scale"])
    threads, limit, share = int(args["threads"]), int(args["limit"]), float(args["change_share"])
    real_sizes = sample_sizes(districts, seed=int(args.get("seed", 2027)))
    sizes = [max(5, round(s / scale)) for s in real_sizes]
    worker_env = {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "ZIS_MAX_CONCURRENT_JOBS": str(limit),
        "ZIS_SLOT_RETRY_SECONDS": str(args["retry_seconds"]),
    }
    results: dict[str, Any] = {
        "districts": districts,
        "scale": scale,
        "real_sizes": {
            "median": statistics.median(real_sizes),
            "mean": statistics.fmean(real_sizes),
            "max": max(real_sizes),
            "total": sum(real_sizes),
        },
        "sizes": {"median": statistics.median(sizes), "max": max(sizes), "total": sum(sizes)},
        "lognormal": fitted_lognormal(),
        "nights": [],
        "limit": limit,
        "threads": threads,
    }
    peers = Peers(canvas_poll_interval=0.5)
    try:
        zis_hosts = [peers.add_zis() for _ in range(int(args["zis_hosts"]) - 1)]
        slow = peers.add_zis(delay=float(args["slow_delay"]))
        zis_hosts.append(slow)
        conversions = []
        for i, students in enumerate(sizes):
            district = peers.add_district(f"f{i:04d}", spec_for(students, 1000 + i), zis_hosts[i % len(zis_hosts)])
            conversions.append(make_live(district))
        slow_host = zis_host(slow.base_url)
        host_of = {c.pk: zis_host(c.zis_url) for c in conversions}
        students_of = {c.pk: s for c, s in zip(conversions, sizes, strict=True)}

        for label, processes in [("first night (whole imports)", max(args["workers"]))] + [
            (f"{n} worker process{'es' if n > 1 else ''}", n) for n in args["workers"]
        ]:
            first = not results["nights"]
            if not first:
                _shift_previous_nights()
                for district, students in zip(peers.districts, sizes, strict=True):
                    district.zone.set_spec(
                        district.zone.spec.replace(day=district.zone.spec.day + nightly_change(students, share))
                    )
            imports_before = [d.imports() for d in peers.districts]
            for zis in peers.zis_hosts:
                zis.reset_counts()
            probes = Path(tempfile.mkdtemp(prefix="fleet-probe-"))
            workers = [
                start_worker(
                    f"fleet{n}",
                    concurrency=threads,
                    pool="threads",
                    env={**worker_env, "FLEET_PROBE_DIR": str(probes)},
                    extra=["--include", "conversion.bench.fleet_probe"],
                )
                for n in range(processes)
            ]
            try:
                time.sleep(3)  # the workers connect before beat fires, as at midnight
                peers_cpu_before = time.process_time()
                fired = dt.datetime.now(dt.UTC)
                tasks.nightly_syncs.apply_async()
                night = wait_for_night(business_date(), districts, timeout=float(args["timeout"]))
                worker_cpu = sum(group_cpu_seconds(w.pid) for w in workers)
                peers_cpu = time.process_time() - peers_cpu_before
            finally:
                for worker in workers:
                    worker.stop(timeout=30)
            day = business_date().isoformat()
            failed = [(j.pk, j.state, j.error[:200]) for j in night if j.state != JobState.SUCCEEDED]
            per_conversion = Counter(
                Job.objects.filter(kind=JobKind.SYNC, params__business_date=day).values_list("conversion_id", flat=True)
            )
            twice = [c for c, n in per_conversion.items() if n > 1]
            twice += [j.conversion_id for j in night if j.attempts != 1]
            new_imports = [d.imports() - before for d, before in zip(peers.districts, imports_before, strict=True)]
            runs = SyncRun.objects.filter(job__in=night).count()
            finished = {j.conversion_id: (j.finished_at - fired).total_seconds() for j in night if j.finished_at}
            slow_done = [t for c, t in finished.items() if host_of[c] == slow_host]
            other_done = [t for c, t in finished.items() if host_of[c] != slow_host]
            probe = _read_probes(probes)
            job_cpu = {p["job"]: p["cpu"] for p in probe if p["state"] == "SUCCESS" and p["job"]}
            retries = [p for p in probe if p["state"] == "RETRY"]
            results["nights"].append(
                {
                    "label": label,
                    "processes": processes,
                    "first": first,
                    "seconds_to_last": max(finished.values()),
                    "worker_cpu": worker_cpu,
                    "peers_cpu": peers_cpu,
                    "students": sum(sizes),
                    "jobs": len(night),
                    "failed": failed[:5],
                    "failed_count": len(failed),
                    "run_twice": sorted(set(twice)),
                    "imports_not_one": sum(1 for n in new_imports if n != 1),
                    "sync_runs": runs,
                    "peak_in_flight": {zis_host(z.base_url): z.peak_in_flight for z in peers.zis_hosts},
                    "slow_last": max(slow_done) if slow_done else None,
                    "others_last": max(other_done) if other_done else None,
                    "others_p50": statistics.median(other_done) if other_done else None,
                    "retries": len(retries),
                    "retry_cpu": sum(p["cpu"] for p in retries),
                    "job_cpu": [[students_of[j.conversion_id], job_cpu[j.pk]] for j in night if j.pk in job_cpu],
                }
            )
    finally:
        peers.close()
    results["settings_lease"] = settings.JOB_LEASE_SECONDS
    return results


def cost_model(points: list[list[float]]) -> tuple[float, float]:
    """(a, b): CPU seconds of one district's night = a + b x students, least squares over (students, cpu)."""
    xs, ys = zip(*points, strict=True)
    if len(set(xs)) < 2:
        return statistics.fmean(ys), 0.0
    slope, intercept = statistics.linear_regression(xs, ys)
    return max(intercept, 0.0), max(slope, 0.0)


def machines_table(a: float, b: float, efficiency: float, *, cores: int, fleet_sizes: list[int]) -> list[list[str]]:
    """Worker machines (of `cores` cores) that finish N districts (sizes from the NCES fit, unscaled) in the
    00:00-05:00 Mountain window, with the measured per-district cost `a + b x students` and the parallel
    efficiency measured from 1 to the most worker processes."""
    rows = []
    window = MOUNTAIN_WINDOW_HOURS * 3600
    for n in fleet_sizes:
        sizes = sample_sizes(n, seed=11)
        cpu = sum(a + b * s for s in sizes)
        machines = max(1, math.ceil(cpu / (window * cores * efficiency)))
        largest = a + b * max(sizes)
        rows.append(
            [
                f"{n:,}",
                f"{sum(sizes):,}",
                f"{cpu / 3600:,.1f}",
                f"{machines:,}",
                f"{largest / 60:,.1f} min" + ("" if largest < window else " (over the window)"),
            ]
        )
    return rows
