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
        # Keys are unique row by row during an UPDATE: move them out of the way first, then to their new dates.
        cursor.execute(
            "UPDATE conversion_job SET idempotency_key = idempotency_key || ':moving' "
            "WHERE kind = 'sync' AND params ? 'business_date'"
        )
        cursor.execute(
            "UPDATE conversion_job SET params = jsonb_set(params, '{business_date}', "
            "to_jsonb(((params->>'business_date')::date - 1)::text)), "
            "idempotency_key = 'sync:' || conversion_id || ':' || ((params->>'business_date')::date - 1)::text "
            "WHERE kind = 'sync' AND params ? 'business_date'"
        )
        # (conversion, business_date) is unique too: through dates no night has, then to the day before.
        for days in (-10_000, 9_999):
            cursor.execute(
                "UPDATE conversion_syncrun SET business_date = business_date + %s WHERE business_date IS NOT NULL",
                [days],
            )


NETNS_HUB = "10.77.0.1"  # scripts/netns-fleet: the host's address every namespace reaches over its own link
NETNS_NETWORK = "10.77.0.0/16"


def _on_host(url: str, host: str) -> str:
    """`url` with its host replaced (user, password, port, path kept)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = (credentials + "@" if credentials else "") + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _netns_pids(namespace: str) -> list[int]:
    import subprocess

    out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


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
        "zis_hosts": int(args["zis_hosts"]),
        "retry_seconds": float(args["retry_seconds"]),
    }
    namespaces: list[str] = list(args.get("netns") or [])
    peer_host = NETNS_HUB if namespaces else "127.0.0.1"
    if namespaces:  # the workers reach PostgreSQL, Redis and the peers through their own link to the hub
        worker_env.update(
            DATABASE_URL=_on_host(os.environ["DATABASE_URL"], NETNS_HUB),
            CELERY_BROKER_URL=_on_host(settings.CELERY_BROKER_URL, NETNS_HUB),
            PEER_ALLOWED_NETWORKS=f"loopback,{NETNS_NETWORK}",
        )
        nights = [
            ("first night (workers in network namespaces)", len(namespaces)),
            (f"{len(namespaces)} hosts (network namespaces), one worker process each", len(namespaces)),
        ]
    else:
        nights = [("first night (whole imports)", max(args["workers"]))] + [
            (f"{n} worker process{'es' if n > 1 else ''}", n) for n in args["workers"]
        ]
    peers = Peers()
    try:
        zis_hosts = [peers.add_zis(host=peer_host) for _ in range(int(args["zis_hosts"]) - 1)]
        slow = peers.add_zis(delay=float(args["slow_delay"]), host=peer_host)
        zis_hosts.append(slow)
        conversions = []
        for i, students in enumerate(sizes):
            district = peers.add_district(
                f"f{i:04d}", spec_for(students, 1000 + i), zis_hosts[i % len(zis_hosts)], host=peer_host
            )
            conversions.append(make_live(district))
        slow_host = zis_host(slow.base_url)
        host_of = {c.pk: zis_host(c.zis_url) for c in conversions}
        students_of = {c.pk: s for c, s in zip(conversions, sizes, strict=True)}

        for label, processes in nights:
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
                    prefix=["ip", "netns", "exec", namespaces[n]] if namespaces else [],
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
                namespace_of = {pid: ns for ns in namespaces for pid in _netns_pids(ns)}
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
                    "jobs_per_namespace": dict(
                        Counter(namespace_of.get(int(j.worker.split(":")[1]), "?") for j in night)
                    )
                    if namespaces
                    else {},
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


def _night_row(night: dict, limit: int) -> list[str]:
    job_cpu = sum(c for _, c in night["job_cpu"])
    peak = max(night["peak_in_flight"].values())
    clean = not night["run_twice"] and not night["imports_not_one"] and night["sync_runs"] == night["jobs"]
    held_back = night["slow_last"] is not None and night["others_last"] is not None
    return [
        night["label"],
        f"{night['jobs']:,} ({night['failed_count']} failed)",
        f"{night['seconds_to_last']:,.1f} s",
        f"{night['worker_cpu']:,.1f} s",
        f"{job_cpu:,.1f} s",
        f"{night['students'] / night['worker_cpu']:,.0f}",
        f"{night['students'] / max(job_cpu, 1e-9):,.0f}",
        "none" if clean else f"MISSED: {night['run_twice'][:5]} {night['imports_not_one']} imports not one",
        f"{peak} (limit {limit}: {'met' if peak <= limit else 'MISSED'})",
        f"others done at {night['others_last']:,.0f} s (p50 {night['others_p50']:,.0f} s), slow ZIS's at "
        f"{night['slow_last']:,.0f} s"
        if held_back
        else "",
        f"{night['retries']:,} ({night['retry_cpu']:.1f} s CPU)",
        f"{night['peers_cpu']:,.1f} s",
    ]


def report(result: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """The fleet's sections and notes for BENCHMARKS.md."""
    from conversion.bench.report import table

    limit = result["limit"]
    measured = [n for n in result["nights"] if not n["first"]]
    rows = [_night_row(n, limit) for n in result["nights"]]
    header = [
        "night",
        "districts synced",
        "beat to last district done",
        "workers' CPU",
        "jobs' CPU",
        "students per worker CPU-s",
        "students per job CPU-s",
        "district run twice",
        "most jobs at once on one ZIS",
        "slow ZIS vs the others",
        "slot retries",
        "peers' CPU (ZIS + Canvas sims)",
    ]
    points = [p for n in measured for p in n["job_cpu"]]
    a, b = cost_model(points) if points else (0.0, 0.0)
    best = min(measured, key=lambda n: n["seconds_to_last"]) if measured else None
    rate = sum(c for _, c in best["job_cpu"]) / best["seconds_to_last"] if best else 0.0
    machine_rows = []
    if rate > 0:
        window = MOUNTAIN_WINDOW_HOURS * 3600
        for n in (100, 1_000, 5_000, 13_318):
            sizes = sample_sizes(n, seed=11)
            cpu = sum(a + b * s for s in sizes)
            largest = a + b * max(sizes)
            machine_rows.append(
                [
                    f"{n:,}",
                    f"{sum(sizes):,}",
                    f"{cpu / 3600:,.1f} h",
                    f"{max(1, math.ceil(cpu / (window * rate))):,}",
                    f"{largest / 60:,.1f} min" + ("" if largest < window else " (longer than the window)"),
                ]
            )
    real, scaled = result["real_sizes"], result["sizes"]
    mu, sigma = result["lognormal"]
    sections = [
        (
            f"The fleet: {result['districts']:,} live districts, one night each per worker count",
            table(header, rows),
        ),
    ]
    if machine_rows:
        sections.append(
            (
                "Worker machines to finish the night by 05:00 Mountain",
                table(
                    ["districts", "students (NCES-sized)", "CPU of one night", "machines like this one", "largest"],
                    machine_rows,
                ),
            )
        )
    notes = [
        f"Fleet district sizes: log-normal with ln-median {mu:.2f} (median {math.exp(mu):,.0f} students) and "
        f"sigma {sigma:.2f}, fitted (probit least squares) to NCES's count of US regular public school districts "
        "by enrollment class (Digest of Education Statistics 2022, table 214.20, 2021-22: 19% under 300 "
        "students, 48% under 1,000, 2% of 25,000 or more), clipped to "
        f"[{SMALLEST}, {LARGEST:,}]. This fleet: median {real['median']:,.0f}, mean {real['mean']:,.0f}, largest "
        f"{real['max']:,}, {real['total']:,} students in all, run scaled down {result['scale']:g}x (at least 5 "
        f"students each: median {scaled['median']:,.0f}, largest {scaled['max']:,}, {scaled['total']:,} in all) "
        "to keep each night's run time near ten minutes on this 2-core machine, where the simulators of every "
        "ZIS and Canvas, PostgreSQL, Redis and the workers share the two cores. The districts are dealt "
        f"round-robin over {result['zis_hosts']} hosted ZIS servers, so each hosts about "
        f"{result['districts'] / result['zis_hosts']:,.0f} zones (a hosted ZIS serves many "
        "districts' zones).",
        "Each night after the first, every district's zone changes about 2% of its enrollments (DistrictSpec day "
        "steps: 3 new students with 4 enrollments each and 2 drops per step, at least one step), the size of a "
        "typical school night's adds, drops and schedule changes; the first night is every district's whole first "
        "import and is not a typical night.",
        f"Beat's task conversion.scheduled.nightly_syncs is sent to the broker (Redis) and run by a worker; each "
        f"worker process is `celery worker -P threads -c {result['threads']}` (a sync mostly waits on its ZIS and on "
        "Canvas's import, so one process runs several; the GIL makes CPU parallelism one core per process). "
        f"The ZIS hosts each carry a zone per district (districts dealt round-robin); one answers every request "
        f"after a delay (the slow ZIS). Every host allows {limit} jobs at once (ZIS_MAX_CONCURRENT_JOBS); 'most "
        "jobs at once' is counted at the ZIS simulators as requests in flight. 'Slot retries' are jobs sent back to "
        "the broker for want of a slot (conversion/services/zis_slots.py), each coming back after about "
        f"ZIS_SLOT_RETRY_SECONDS = {result['retry_seconds']} s (jittered, growing with its retries).",
        "'District run twice': a second sync job, a second claim (attempts > 1), or a Canvas receiving other than "
        "exactly one SIS import for a district that night. Workers' CPU is the worker process groups' user + system "
        "time (start-up and idle included); jobs' CPU is the sum of each sync task's own thread CPU "
        "(conversion/bench/fleet_probe.py). PostgreSQL's and Redis's CPU are not in either. Earlier nights are moved "
        "one day back before each night, so beat's per-date idempotency starts the new night.",
        f"Machines table: one district's night costs a + b x students job CPU-seconds, fitted over every measured "
        f"night's jobs: a = {a:.2f} s, b = {b * 1000:.3f} ms per student (the fleet is scaled down, so b is fitted "
        f"on small districts and a dominates). Assumption: a worker machine like this one delivers the job "
        f"CPU-seconds per second this machine delivered at its best worker count ({rate:.2f}, with PostgreSQL, Redis "
        "and the simulators on it too and its cores shared with other work), the districts are NCES-sized as above, "
        "and waits on ZIS and Canvas overlap (enough threads per process); PostgreSQL and the broker are sized apart. "
        "'largest' is the biggest district's own night on one thread, which no number of machines shortens.",
    ]
    return sections, notes


def child_args(options: dict, *, districts: int, workers: list[int], netns: list[str]) -> dict:
    """The fleet child's arguments (`run`'s) from the bench command's options."""
    return {
        "districts": districts,
        "scale": options["fleet_scale"],
        "threads": options["fleet_threads"],
        "limit": options["fleet_limit"],
        "change_share": 0.02,
        "workers": workers,
        "zis_hosts": options["fleet_zis_hosts"],
        "slow_delay": options["fleet_slow_delay"],
        "retry_seconds": options["fleet_retry_seconds"],
        "timeout": 3600,
        "netns": netns,
    }


def _child(options: dict, url: str, *, districts: int, workers: list[int], netns: list[str]) -> dict:
    from conversion.bench import scratchdb
    from conversion.bench.runner import run_child

    scratchdb.create(url)
    try:
        return run_child(
            "fleet", child_args(options, districts=districts, workers=workers, netns=netns), database_url=url
        )
    finally:
        scratchdb.drop(url)


def netns_report(result: dict, links: str) -> tuple[str, str]:
    from conversion.bench.report import table

    rows = []
    for night in result["nights"]:
        clean = not night["run_twice"] and not night["imports_not_one"] and night["sync_runs"] == night["jobs"]
        rows.append(
            [
                night["label"],
                f"{night['jobs']:,} ({night['failed_count']} failed)",
                f"{night['seconds_to_last']:,.1f} s",
                ", ".join(f"{ns}: {n:,}" for ns, n in sorted(night["jobs_per_namespace"].items())),
                "none" if clean else f"MISSED: {night['run_twice'][:5]}",
                f"{max(night['peak_in_flight'].values())} (limit {result['limit']})",
            ]
        )
    body = table(
        ["night", "districts synced", "beat to last district done", "jobs per host", "district run twice", "ZIS peak"],
        rows,
    )
    return (
        f"Scale-out: {result['districts']:,} districts, workers on two hosts (network namespaces)",
        body + "\n\nLinks after the run (scripts/netns-fleet status):\n\n```\n" + links.strip() + "\n```",
    )


def bench(options: dict, *, say) -> tuple[list[tuple[str, str]], list[str]]:
    """The fleet part of `manage.py bench`: scratch databases of its own, the children, the report."""
    import shutil
    import subprocess

    from conversion.bench import scratchdb
    from conversion.bench.runner import REPO

    workers = [int(n) for n in options["fleet_workers"].split(",") if n]
    say(
        f"fleet: {options['fleet_districts']:,} districts (sizes /{options['fleet_scale']:g}), nights with "
        f"{', '.join(map(str, workers))} worker processes"
    )
    url = scratchdb.scratch_url(options["database"] + "_fleet")
    result = _child(options, url, districts=options["fleet_districts"], workers=workers, netns=[])
    sections, notes = report(result)
    hosts = options["fleet_netns_hosts"]
    if hosts < 2:
        return sections, notes
    if os.geteuid() != 0 or not shutil.which("ip"):
        notes.append("Scale-out over network namespaces skipped: it needs root and iproute2's `ip`.")
        return sections, notes
    script = str(REPO / "scripts" / "netns-fleet")
    say(f"fleet scale-out: {hosts} network namespaces, {options['fleet_netns_districts']:,} districts")
    subprocess.run([script, "up", str(hosts)], check=True, capture_output=True)
    try:
        names = [f"sfleet{i}" for i in range(1, hosts + 1)]
        scaled = _child(options, url, districts=options["fleet_netns_districts"], workers=[1], netns=names)
        links = subprocess.run([script, "status"], capture_output=True, text=True, check=False).stdout
    finally:
        subprocess.run([script, "down"], check=False, capture_output=True)
    sections.append(netns_report(scaled, links))
    notes.append(
        "Scale-out: scripts/netns-fleet makes one network namespace per worker host, each with a veth link to the "
        f"host and nothing else; PostgreSQL and Redis (socat relays) and the simulators are at {NETNS_HUB}, so every "
        "byte a worker exchanges crosses its own link (a namespace's own 127.0.0.1 has none of them). One worker "
        "process per namespace; 'jobs per host' counts the night's jobs by the namespace of the process that ran "
        "them. Beat and the orchestration stay on the host, as beat runs on one machine."
    )
    return sections, notes
