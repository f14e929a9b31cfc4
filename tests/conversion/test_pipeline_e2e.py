"""Steps 2–6 end to end against the ZIS and Canvas simulators over HTTP."""

from __future__ import annotations

import datetime as dt

import pytest

from canvas.client import CanvasClient
from conversion import jobs, workflow
from conversion.celery import app as celery_app
from conversion.models import (
    ConversionState,
    Job,
    JobKind,
    JobState,
    MappingDiff,
    SyncRun,
    SyncState,
)
from conversion.services import connection, mapping, pull, remap, schedule, sync
from sifclient.powerschool import District as SimDistrict
from sifclient.powerschool import DistrictSpec
from tests.conversion.conftest import fill_step_one
from tests.conversion.jobhelpers import expire_lease, worker_dies_in
from tests.conversion.jobhelpers import run as run_job
from tests.conversion.simulators import TOKEN, simulated_district

pytestmark = pytest.mark.django_db(transaction=True)
S = ConversionState
SPEC = DistrictSpec(students=150, schools=2, school_year=2027, seed=11)


@pytest.fixture
def eager_celery():
    # Jobs the scheduler queues run inline, through the real task code, so the test can follow them.
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def run(conversion, kind, runner):
    job = run_job(conversion, kind, runner, expect_success=True)
    # The same task delivered twice (acks_late redelivery) finds the job finished and changes nothing.
    before = (job.finished_at, job.detail, job.attempts)
    assert jobs.run_job(job.pk, runner) is None
    job.refresh_from_db()
    assert (job.finished_at, job.detail, job.attempts) == before
    return job


def canvas_users(canvas_sim) -> dict[str, str]:
    with CanvasClient(canvas_sim.url, TOKEN) as client:
        return {u.sis_user_id: u.name for u in client.iter_users("self") if u.sis_user_id}


def canvas_enrollments(canvas_sim) -> set[tuple[str, str, str]]:
    result = set()
    with CanvasClient(canvas_sim.url, TOKEN) as client:
        for course in client.iter_courses("self"):
            for e in client.iter_enrollments(course_id=course.id):
                if e.enrollment_state == "active":
                    result.add((course.sis_course_id, e.sis_user_id, e.type))
    return result


def test_district_goes_from_connection_to_nightly_sync(
    conversion, consultant, district_admin, eager_celery, zis_profile
):
    with simulated_district(conversion, SPEC, profile=zis_profile) as (zis, canvas_sim):
        generated = SimDistrict(SPEC)
        fill_step_one(conversion)
        conversion.zis_url = zis.base_url + "/zones"
        conversion.save()
        workflow.perform(conversion, "confirm_agent_setup", user=district_admin)

        # Step 2: connection test, pull, the district verifies.
        run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
        pull_job = run(conversion, JobKind.PULL, pull.run_pull)
        assert pull_job.snapshots.get().counts == generated.counts()
        workflow.perform(conversion, "verify_pull", user=district_admin)

        # Step 3: the pause date comes; the scheduler pauses the legacy sync.
        conversion.pause_date = workflow.local_today(conversion)
        conversion.save()
        assert schedule.advance_due_dates()["paused"] == [conversion.pk]
        conversion.refresh_from_db()
        assert conversion.state == S.MAPPING

        # Step 4: mapping against the legacy Canvas.
        run(conversion, JobKind.MAPPING, mapping.run_mapping)
        diff = MappingDiff.objects.current(conversion)
        people = SPEC.students + SPEC.schools * 9  # students + teachers and a principal per school
        assert diff.counts["user"]["matched"] == people
        assert diff.counts["user"]["only_canvas"] == 3  # the departed users the legacy Canvas still has
        assert diff.blocking_count == 0
        assert diff.counts["enrollment"]["matched"] > 0 and "only_sif" not in diff.counts["enrollment"]
        workflow.perform(conversion, "approve_mapping", user=district_admin)

        # Step 5: remap; every user moves to the DCID, the departed keep their ids.
        preview = remap.plan(conversion)
        assert len(preview.changes) == people
        remap_job = run(conversion, JobKind.REMAP, remap.run_remap)
        assert remap_job.detail["renamed"] == people and remap_job.detail["unverified"] == 0
        users = canvas_users(canvas_sim)
        dcids = {c.new_id for c in preview.changes}
        assert dcids <= set(users)
        assert not {c.old_id for c in preview.changes} & set(users)
        assert remap_job.artifacts.filter(kind="remap_reverse_file").exists()
        # Running it again renames nobody and still verifies.
        again = run(conversion, JobKind.REMAP, remap.run_remap)
        assert again.detail["renamed"] == 0 and again.detail["already"] == people
        workflow.perform(conversion, "complete_remap", user=consultant)

        # Step 6: go-live, then the midnight run.
        conversion.go_live_date = workflow.local_today(conversion)
        conversion.save()
        schedule.advance_due_dates()
        conversion.refresh_from_db()
        assert conversion.state == S.LIVE
        night = dt.datetime(2026, 11, 23, 0, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
        first = schedule.start_nightly_syncs(now=night)
        assert len(first["started"]) == 1
        run1 = SyncRun.objects.get(job_id=first["started"][0])
        assert run1.state == SyncState.IMPORTED, Job.objects.get(pk=first["started"][0]).error
        assert run1.business_date == dt.date(2026, 11, 23)

        # Canvas now holds every user under the DCID and exactly the SIF enrollments.
        users = canvas_users(canvas_sim)
        assert dcids <= set(users)
        expected = set()
        from conversion.services.roster import Roster

        for e in Roster.for_snapshot(run1.snapshot).iter_enrollments():
            expected.add(
                (
                    e.section.course_id,
                    e.person.dcid,
                    "TeacherEnrollment" if e.role == "teacher" else "StudentEnrollment",
                )
            )
        assert canvas_enrollments(canvas_sim) == expected

        # A duplicate trigger for the same business date does nothing.
        assert schedule.start_nightly_syncs(now=night + dt.timedelta(minutes=3))["started"] == []
        # The next night, with no new data, is skipped.
        second = schedule.start_nightly_syncs(now=night + dt.timedelta(days=1))
        run2 = SyncRun.objects.get(job_id=second["started"][0])
        assert run2.state == SyncState.SKIPPED
        # New data (a day of churn in PowerSchool) syncs again.
        zis.bump_day()
        third = schedule.start_nightly_syncs(now=night + dt.timedelta(days=2))
        run3 = SyncRun.objects.get(job_id=third["started"][0])
        assert run3.state == SyncState.IMPORTED
        assert run3.removed_enrollments == 2 * 1  # the simulator drops two enrollments a day


def test_a_sync_that_would_drop_many_enrollments_is_held(conversion, consultant, district_admin, settings):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        conversion.state = S.LIVE
        conversion.save()
        first = run(conversion, JobKind.SYNC, sync.run_sync)
        assert first.sync_run.state == SyncState.IMPORTED
        before = canvas_enrollments(canvas_sim)
        zis.update_spec(sections_per_student=2)  # half of every student's classes vanish
        held_job = run(conversion, JobKind.SYNC, sync.run_sync)
        held = held_job.sync_run
        assert held.state == SyncState.HELD
        assert "would be dropped" in held.held_reason
        assert canvas_enrollments(canvas_sim) == before  # nothing was sent
        release = sync.release_held_sync(held, user=district_admin, note="Schedules were rebuilt on purpose")
        jobs.run_job(release.pk, sync.run_sync)
        release.refresh_from_db()
        assert release.state == JobState.SUCCEEDED, release.error
        assert release.sync_run.state == SyncState.IMPORTED
        assert len(canvas_enrollments(canvas_sim)) < len(before)


def test_a_sync_killed_after_upload_is_not_submitted_twice(conversion):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        conversion.state = S.LIVE
        conversion.save()
        job, _ = jobs.start_job(conversion, JobKind.SYNC, enqueue=False)
        with worker_dies_in(sync.canvas_import, "wait"), pytest.raises(SystemExit):
            jobs.run_job(job.pk, sync.run_sync)
        assert job.sync_run.state == SyncState.SUBMITTED
        expire_lease(job)
        jobs.run_job(job.pk, sync.run_sync)
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, job.error
        # The rerun polled the submitted import to its end: the record is finished, not left "Submitted".
        run = SyncRun.objects.get(job=job)
        assert run.state == SyncState.IMPORTED and run.finished_at is not None
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            mine = [
                i
                for i in client.iter_sis_imports("self")
                if any("sync-job" in (a.get("display_name") or "") for a in i.raw.get("csv_attachments") or [])
            ]
        assert len(mine) == 1
