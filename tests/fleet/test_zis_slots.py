"""The per-ZIS slots on the real PostgreSQL: N per host, freed on release and when the holder dies, and a job that
finds none waits in the broker (a real worker) while saying so on its page."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conversion import jobs
from conversion.bench.fleet_workers import REPO, make_live
from conversion.models import Job, JobKind, JobState
from conversion.services import zis_slots
from sifclient.powerschool import DistrictSpec
from tests.fleet.conftest import run_database_url

HOLDER = """
import os, sys, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversion.settings")
django.setup()
from conversion.services import zis_slots
slot = zis_slots.acquire(sys.argv[1], 1)
print("held" if slot else "none", flush=True)
time.sleep(600)
"""


def test_zis_hosts_are_host_and_port():
    assert zis_slots.zis_host("https://ZIS.Example.org/zones") == "zis.example.org:443"
    assert zis_slots.zis_host("http://10.0.0.5/zis") == "10.0.0.5:80"
    assert zis_slots.zis_host("http://127.0.0.1:8123/zones") == "127.0.0.1:8123"


def test_the_limit_is_per_host_with_exceptions(settings):
    settings.ZIS_MAX_CONCURRENT_JOBS = 3
    settings.ZIS_CONCURRENCY = "zis.example.org:443=5, slow.example.org=1"
    assert zis_slots.limit_for("zis.example.org:443") == 5
    assert zis_slots.limit_for("slow.example.org:80") == 1
    assert zis_slots.limit_for("other:80") == 3


@pytest.mark.django_db(transaction=True)
def test_a_host_has_n_slots_freed_on_release():
    host = f"slots-{os.getpid()}.example.org:80"
    first, second = zis_slots.acquire(host, 2), zis_slots.acquire(host, 2)
    assert first is not None and second is not None and {first.index, second.index} == {0, 1}
    assert zis_slots.acquire(host, 2) is None
    other = zis_slots.acquire("another-" + host, 2)
    assert other is not None  # other hosts are not held back
    other.release()
    assert zis_slots.held(host, 2) == 2
    first.release()
    third = zis_slots.acquire(host, 2)
    assert third is not None and third.index == first.index
    second.release()
    third.release()
    assert zis_slots.held(host, 2) == 0


@pytest.mark.django_db(transaction=True)
def test_a_slot_whose_holder_is_killed_is_free_at_once():
    host = f"killed-{os.getpid()}.example.org:80"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, host],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": run_database_url()},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert zis_slots.acquire(host, 1) is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()
    for _ in range(100):  # bounded: PostgreSQL ends the dead session's backend as soon as it sees the socket close
        slot = zis_slots.acquire(host, 1)
        if slot is not None:
            slot.release()
            break
        time.sleep(0.1)
    else:
        pytest.fail("the killed holder's slot was never freed")


def test_a_job_without_a_slot_waits_in_the_broker_and_runs_when_one_is_free(peers, workers):
    zis = peers.add_zis()
    conversion = make_live(peers.add_district("w001", DistrictSpec(students=8, schools=1, seed=7), zis))
    host = zis_slots.zis_host(conversion.zis_url)
    taken = zis_slots.acquire(host, 1)
    assert taken is not None
    workers("waiting", concurrency=1, ZIS_MAX_CONCURRENT_JOBS="1")
    job, _ = jobs.start_job(conversion, JobKind.TEST_CONNECTION)
    try:
        deadline = time.monotonic() + 90
        while "Waiting for the ZIS" not in Job.objects.get(pk=job.pk).message:
            assert time.monotonic() < deadline, Job.objects.get(pk=job.pk).message
            time.sleep(0.2)
        time.sleep(2)  # several retries come and go; none may start the job
        assert Job.objects.get(pk=job.pk).state == JobState.QUEUED
        assert zis.requests == 0
    finally:
        taken.release()
    deadline = time.monotonic() + 90
    while not Job.objects.get(pk=job.pk).is_finished:
        assert time.monotonic() < deadline, "the job did not run once its slot was free"
        time.sleep(0.2)
    assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED, Job.objects.get(pk=job.pk).error
    assert zis.requests > 0


def test_a_host_with_a_long_queue_is_asked_less_often(settings):
    settings.ZIS_SLOT_RETRY_SECONDS = 10
    first = [zis_slots.retry_countdown(0) for _ in range(200)]
    later = [zis_slots.retry_countdown(40) for _ in range(200)]
    assert 5 <= min(first) and max(first) <= 15
    assert 20 <= min(later) and max(later) <= 60


def _wait_finished(job_id: int, what: str, timeout: float = 120) -> Job:
    deadline = time.monotonic() + timeout
    while not (job := Job.objects.get(pk=job_id)).is_finished:
        assert time.monotonic() < deadline, f"{what}: {job.state} {job.message}"
        time.sleep(0.2)
    return job


def test_a_sync_frees_its_zis_slot_once_its_pull_is_stored(peers, workers):
    """With one slot per ZIS, a district whose Canvas import is still running does not hold back the next district
    of the same ZIS: the first sync's slot was freed when its pull was stored, not when its import ended."""
    zis = peers.add_zis()
    first = peers.add_district("s001", DistrictSpec(students=8, schools=1, seed=11), zis)
    second = peers.add_district("s002", DistrictSpec(students=8, schools=1, seed=12), zis)
    held_back, other = make_live(first), make_live(second)
    first.canvas.hold_imports_at("importing")
    workers("slots", concurrency=2, ZIS_MAX_CONCURRENT_JOBS="1")
    job_a, _ = jobs.start_job(held_back, JobKind.SYNC)
    try:
        assert first.canvas.wait_until_held(timeout=120), "the first district's import never reached Canvas"
        assert zis_slots.held(zis_slots.zis_host(held_back.zis_url), 1) == 0  # pulled: the slot is free again
        job_b, _ = jobs.start_job(other, JobKind.SYNC)
        done = _wait_finished(job_b.pk, "the second district waited behind the first one's Canvas import")
        assert done.state == JobState.SUCCEEDED, done.error
        assert not Job.objects.get(pk=job_a.pk).is_finished  # its import is still held in Canvas
    finally:
        first.canvas.release_held_import()
    done = _wait_finished(job_a.pk, "the first district's sync did not end once Canvas let its import go")
    assert done.state == JobState.SUCCEEDED, done.error
    assert second.imports() == 1 and first.imports() == 1
