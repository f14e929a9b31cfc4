"""Job rows: claimed by exactly one worker, taken over only when stale, leases renewed while waiting."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection
from django.utils import timezone

from conversion import jobs
from conversion.models import AuditEvent, Job, JobKind, JobState

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def job(conversion):
    created, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    return created


def test_only_one_of_two_workers_claims_a_job(job):
    results = []
    barrier = threading.Barrier(2)

    def claim(name):
        try:
            barrier.wait()
            results.append(Job.objects.get(pk=job.pk).claim(name))
        finally:
            connection.close()  # this thread's own; left open, it is reported when collected (ResourceWarning)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]


def test_a_running_job_is_taken_over_only_once_its_heartbeat_is_stale(job, settings):
    assert job.claim("first")
    assert not Job.objects.get(pk=job.pk).claim("second")
    Job.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(seconds=settings.JOB_LEASE_SECONDS + 1)
    )
    taken = Job.objects.get(pk=job.pk)
    assert taken.claim("second")
    assert (taken.worker, taken.attempts) == ("second", 2)


def test_a_finished_job_is_never_claimed_again(job):
    jobs.run_job(job.pk, lambda j, p: None)
    assert Job.objects.get(pk=job.pk).state == JobState.SUCCEEDED
    assert jobs.run_job(job.pk, lambda j, p: pytest.fail("ran twice")) is None


def test_a_run_whose_job_was_taken_over_does_not_overwrite_the_outcome(job):
    def runner(j, progress):
        # While this run was stalled, another worker took the job over and finished it.
        Job.objects.filter(pk=j.pk).update(worker="other-worker", state=JobState.SUCCEEDED, message="other run")

    jobs.run_job(job.pk, runner)
    job.refresh_from_db()
    assert (job.state, job.message, job.worker) == (JobState.SUCCEEDED, "other run", "other-worker")
    assert not AuditEvent.objects.filter(action__startswith="job_succeeded", detail__job=job.pk).exists()


def test_the_heartbeat_renews_the_lease_while_the_runner_waits(job, monkeypatch):
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
    seen = []

    def waiting_runner(j, progress):
        first = Job.objects.get(pk=j.pk).heartbeat_at
        renewed = threading.Event()
        for _ in range(200):  # bounded: at most ~10 s
            if Job.objects.get(pk=j.pk).heartbeat_at > first:
                renewed.set()
                break
            renewed.wait(0.05)
        seen.append(renewed.is_set())

    jobs.run_job(job.pk, waiting_runner)
    assert seen == [True]


def test_failures_are_recorded_in_words(job):
    def runner(j, progress):
        raise jobs.JobFailed("The zone stopped answering.")

    jobs.run_job(job.pk, runner)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.message == "The zone stopped answering."
    assert AuditEvent.objects.filter(action="job_failed:pull").exists()
