"""A nightly run of many live districts through the real beat task, the broker and real worker processes.

No district is synced twice with two workers; a worker killed with SIGKILL mid-night has its districts finished by
the other (the job lease and the stale-job re-send, conversion/services/schedule.py); no ZIS host gets more jobs at
once than its limit, counted at the ZIS itself, and a slow ZIS does not hold back the districts of another.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from conversion import tasks
from conversion.bench.fleet_workers import make_live, wait_for_night
from conversion.models import Job, JobKind, JobState, SyncRun, SyncState
from conversion.services.schedule import business_date
from sifclient.powerschool import DistrictSpec

pytestmark = pytest.mark.django_db(transaction=True)


def live_fleet(peers, count: int, zis, *, first: int = 0, students: int = 12) -> list:
    """`count` live districts with zones on `zis`, each with its own Canvas."""
    conversions = []
    for i in range(first, first + count):
        spec = DistrictSpec(students=students, schools=1, seed=100 + i, school_year=2027)
        conversions.append(make_live(peers.add_district(f"d{i:03d}", spec, zis)))
    return conversions


def beat_fires_midnight() -> dt.date:
    """What beat does at 00:00 Mountain time: send the nightly task to the broker (a worker runs it)."""
    tasks.nightly_syncs.apply_async()
    return business_date()


def assert_each_district_synced_once(peers, night: list[Job]) -> None:
    assert all(job.state == JobState.SUCCEEDED for job in night), [(j.pk, j.state, j.error) for j in night]
    by_conversion: dict[int, int] = {}
    for job in night:
        by_conversion[job.conversion_id] = by_conversion.get(job.conversion_id, 0) + 1
    assert set(by_conversion.values()) == {1}, "a district got two sync jobs"
    runs = SyncRun.objects.filter(job__in=night)
    assert runs.count() == len(night) and {r.state for r in runs} == {SyncState.IMPORTED}
    # What the peers saw: exactly one SIS import in every district's Canvas.
    assert [d.imports() for d in peers.districts] == [1] * len(peers.districts)


def test_two_workers_run_the_nightly_beat_over_many_districts_and_sync_none_twice(peers, workers):
    zis = peers.add_zis()
    conversions = live_fleet(peers, 12, zis)
    env = {"ZIS_MAX_CONCURRENT_JOBS": "4"}  # the limit is another test's subject
    workers("one", concurrency=2, **env)
    workers("two", concurrency=2, **env)

    night = wait_for_night(beat_fires_midnight(), len(conversions), timeout=240)

    assert_each_district_synced_once(peers, night)
    ran_on = {job.worker.split(":")[0] + ":" + job.worker.split(":")[1] for job in night}
    assert len(ran_on) >= 2, "the night was not shared between worker processes"
    assert {job.attempts for job in night} == {1}
    # A second beat the same night (a duplicate or late trigger) starts nothing new.
    beat_fires_midnight()
    time.sleep(3)
    assert Job.objects.filter(kind=JobKind.SYNC).count() == len(conversions)
    assert [d.imports() for d in peers.districts] == [1] * len(conversions)


def test_a_worker_killed_mid_night_has_its_districts_finished_by_the_other(peers, workers, settings):
    lease = 6
    settings.JOB_LEASE_SECONDS = lease  # this process's stale-job sweep, as the workers' own (below)
    # A slow ZIS keeps every job running for a while, so the killed worker surely holds some.
    zis = peers.add_zis(delay=0.15)
    conversions = live_fleet(peers, 8, zis)
    env = {"JOB_LEASE_SECONDS": str(lease), "ZIS_MAX_CONCURRENT_JOBS": "8"}
    doomed = workers("doomed", concurrency=2, **env)
    day = beat_fires_midnight()
    deadline = time.monotonic() + 120
    while not Job.objects.filter(kind=JobKind.SYNC, state=JobState.RUNNING).count() >= 2:
        assert time.monotonic() < deadline, "the doomed worker started nothing"
        time.sleep(0.1)
    doomed.kill()
    orphaned = set(Job.objects.filter(kind=JobKind.SYNC, state=JobState.RUNNING).values_list("pk", flat=True))
    assert orphaned, "the kill came after the doomed worker's jobs had ended"
    survivor = workers("survivor", concurrency=2, **env)

    # Beat's stale-job sweep (every 5 minutes in production) re-sends the orphans once their lease has run out.
    deadline = time.monotonic() + 240
    while Job.objects.filter(kind=JobKind.SYNC).exclude(state__in=[JobState.SUCCEEDED, JobState.FAILED]).exists():
        assert time.monotonic() < deadline, list(Job.objects.values_list("pk", "state", "message"))
        tasks.requeue_stale_jobs.apply_async()
        time.sleep(lease / 2)
    night = wait_for_night(day, len(conversions), timeout=30)

    assert_each_district_synced_once(peers, night)
    assert survivor.process.poll() is None
    for job in night:
        if job.pk in orphaned:
            assert job.attempts == 2, "an orphaned job was not taken over exactly once"
            assert job.finished_at > timezone.now() - dt.timedelta(minutes=5)


def test_no_zis_gets_more_jobs_at_once_than_its_limit_and_a_slow_one_holds_back_no_other(peers, workers):
    slow = peers.add_zis(delay=0.2)
    fast = peers.add_zis()
    # The slow ZIS's districts come first, so every worker process would be on the slow ZIS without the limit.
    slow_districts = live_fleet(peers, 6, slow)
    fast_districts = live_fleet(peers, 3, fast, first=6)
    env = {"ZIS_MAX_CONCURRENT_JOBS": "1"}
    workers("one", concurrency=2, **env)
    workers("two", concurrency=2, **env)

    night = wait_for_night(beat_fires_midnight(), 9, timeout=300)

    assert_each_district_synced_once(peers, night)
    assert slow.peak_in_flight == 1, f"{slow.peak_in_flight} requests at once on a ZIS limited to 1 job"
    assert fast.peak_in_flight == 1
    done = {job.conversion_id: job.finished_at for job in night}
    slow_done = sorted(done[c.pk] for c in slow_districts)
    # Four worker processes and one slot: the fast ZIS's districts ran beside the slow queue, not behind it.
    assert max(done[c.pk] for c in fast_districts) < slow_done[2]
