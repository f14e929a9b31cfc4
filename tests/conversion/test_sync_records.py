"""What the nightly sync writes on its record when a rerun finds its package gone, and when it skips.

(Issue 19: the sync once read `.content` of an Artifact lookup that can find nothing, under a name that also held
the built Package; and its "no new data" message printed the previous sync's day in UTC.)"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from conversion import jobs
from conversion.models import ConversionState, JobKind, JobState, SyncRun, SyncState
from conversion.services import sync, sync_undo
from sifclient.powerschool import DistrictSpec
from tests.conversion.jobhelpers import run as run_job
from tests.conversion.simulators import simulated_district

SPEC = DistrictSpec(students=12, schools=1, school_year=2027, seed=3)


@pytest.mark.django_db(transaction=True)
def test_a_rerun_of_a_submitted_sync_whose_package_is_gone_fails_in_words_and_ends_its_record(conversion):
    conversion.state = ConversionState.LIVE
    conversion.save()
    job, _ = jobs.start_job(conversion, JobKind.SYNC, enqueue=False)
    # A worker began the upload, then died; the package it kept was removed since (by hand, or a cleanup).
    run = SyncRun.objects.create(
        job=job, conversion=conversion, trigger="nightly", submitting_at=timezone.now(), upload_name="x.zip"
    )

    jobs.run_job(job.pk, sync.run_sync)

    job.refresh_from_db()
    run.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "The sync's package is gone; run a new sync instead." in job.error
    assert run.state == SyncState.FAILED and run.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_skipped_night_names_the_last_syncs_day_in_the_districts_time_zone(conversion):
    assert conversion.district.time_zone == "America/Denver"
    with simulated_district(conversion, SPEC, seed_canvas=False):
        conversion.state = ConversionState.LIVE
        conversion.save()
        first = SyncRun.objects.get(job=run_job(conversion, JobKind.SYNC, sync.run_sync, expect_success=True))
        assert first.state == SyncState.IMPORTED
        # A "sync now" at 7:30 pm in Denver on March 1 finished at 02:30 on March 2 in UTC.
        SyncRun.objects.filter(pk=first.pk).update(finished_at=dt.datetime(2027, 3, 2, 2, 30, tzinfo=dt.UTC))

        job = run_job(conversion, JobKind.SYNC, sync.run_sync, expect_success=True)

    assert SyncRun.objects.get(job=job).state == SyncState.SKIPPED
    assert job.message == "No new data since the sync of Mar 1: nothing sent"


@pytest.mark.django_db(transaction=True)
def test_an_undo_job_for_a_sync_that_sent_nothing_fails_before_asking_canvas(conversion):
    # start_undo refuses such a run; a job made another way (a script, an old queue entry) stops in words too,
    # rather than asking Canvas for import "None".
    run = SyncRun.objects.create(conversion=conversion, trigger="nightly", state=SyncState.SKIPPED)
    job, _ = jobs.start_job(conversion, JobKind.SYNC_UNDO, params={"sync_run": run.pk}, enqueue=False)

    jobs.run_job(job.pk, sync_undo.run_undo)

    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert "This sync sent nothing to Canvas: there is nothing to undo." in job.error
