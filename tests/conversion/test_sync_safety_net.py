"""Issue 15's safety net against the Canvas simulator over HTTP: a held sync's removal list per school (with its CSV),
thresholds per district and per school, Canvas's own change_threshold, and "Undo this sync" (restore_states behind a
Progress, then a remaster).

canvas-lms sources the simulator follows here: app/models/sis_batch.rb `generate_diff` (change_threshold),
`restore_states_later` / `restore_states_for_batch`; app/controllers/sis_imports_api_controller.rb#restore_states;
app/models/progress.rb and GET /api/v1/progress/:id."""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
import time

import pytest
from django.db import connection
from django.urls import reverse

from canvas.client import CanvasClient
from conversion import jobs
from conversion.models import (
    Artifact,
    AuditEvent,
    ConversionState,
    Job,
    JobKind,
    JobState,
    SyncRun,
    SyncState,
)
from conversion.rules import AccessRefused
from conversion.services import removals, sync, sync_undo
from sifclient.powerschool import DistrictSpec
from tests.conversion.jobhelpers import run as run_job
from tests.conversion.simulators import TOKEN, simulated_district

pytestmark = pytest.mark.django_db(transaction=True)
SPEC = DistrictSpec(students=30, schools=2, school_year=2027, seed=5)


@pytest.fixture(autouse=True)
def quick_polls(settings):
    settings.CANVAS_PROGRESS_POLL_SECONDS = 0.02


def live(conversion):
    conversion.state = ConversionState.LIVE
    conversion.save()


def nightly(conversion) -> SyncRun:
    return SyncRun.objects.get(job=run_job(conversion, JobKind.SYNC, sync.run_sync))


def canvas_import(canvas_sim, import_id: int):
    with CanvasClient(canvas_sim.url, TOKEN) as client:
        return client.get_sis_import("self", import_id)


def active_enrollments(canvas_sim) -> set[tuple[str, str]]:
    return {(e.section_id, e.user_id) for e in canvas_sim.state.enrollments.values() if e.workflow_state == "active"}


def schools_of(run: SyncRun) -> dict[str, str]:
    package = Artifact.objects.get(job=run.job, kind="sync_package")
    return {r["account_id"]: r["name"] for r in removals._read(bytes(package.content))["accounts"]}


def test_a_held_sync_shows_what_it_would_remove_per_school_with_a_csv_then_its_release_goes(
    conversion, consultant, district_admin, client
):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        first = nightly(conversion)
        assert first.state == SyncState.IMPORTED
        # A diffed import carries Canvas's own change_threshold: the district's threshold
        # (sis_batch.rb change_threshold).
        assert canvas_import(canvas_sim, first.canvas_import_id).raw["change_threshold"] == 10
        # The submission's state is on the run alone, no longer also in the job's detail.
        assert first.submitting_at is not None and first.upload_name == f"sifconvert-sync-job{first.job_id}.zip"
        assert not {"import_id", "submitting_at", "file_name"} & set(Job.objects.get(pk=first.job_id).detail)
        before = active_enrollments(canvas_sim)
        zis.update_spec(sections_per_student=2)  # half of every student's classes vanish
        held = nightly(conversion)
        assert held.state == SyncState.HELD and held.canvas_import_id is None
        assert active_enrollments(canvas_sim) == before  # nothing was sent
        totals = held.removals["totals"]
        assert totals["enrollments"] == held.removed_enrollments > 0 and totals["users"] == 0
        names = schools_of(first)
        assert {s["name"] for s in held.removals["schools"]} == set(names.values())  # both schools lose classes
        assert sum(s["enrollments"] for s in held.removals["schools"]) == totals["enrollments"]

        listing = Artifact.objects.get(job=held.job, kind="removal_list")
        client.force_login(district_admin)
        page = client.get(
            reverse("district_section", args=[conversion.district.slug, conversion.school_year, "syncs"])
        ).content.decode()
        assert f"{totals['enrollments']} of {held.removals['enrollments_before']} enrollments" in page
        assert all(name in page for name in names.values())
        assert reverse("artifact", args=[conversion.district.slug, conversion.school_year, listing.pk]) in page
        response = client.get(reverse("artifact", args=[conversion.district.slug, conversion.school_year, listing.pk]))
        rows = list(
            csv.reader(
                io.StringIO(b"".join(response.streaming_content if response.streaming else [response.content]).decode())
            )
        )
        assert rows[0] == removals.CSV_HEADER and len(rows) - 1 == listing.rows
        assert {r[2] for r in rows[1:]} == {"enrollments"} and {r[1] for r in rows[1:]} == set(names.values())

        release = sync.release_held_sync(held, user=district_admin, note="Schedules were rebuilt on purpose")
        jobs.run_job(release.pk, sync.run_sync)
        release.refresh_from_db()
        assert release.state == JobState.SUCCEEDED, release.error
        sent = canvas_import(canvas_sim, release.sync_run.canvas_import_id)
        # A person approved these removals: no change_threshold that could make Canvas import it whole instead.
        assert sent.raw["change_threshold"] is None and sent.diffing_threshold_exceeded is False
        assert len(before - active_enrollments(canvas_sim)) == totals["enrollments"]
        assert release.sync_run.removals == held.removals


def test_a_school_s_own_threshold_holds_a_night_the_district_threshold_lets_through(conversion, consultant):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        first = nightly(conversion)
        school = sorted(schools_of(first))[0]
        sync.set_thresholds(conversion, user=consultant, district="90", schools=f"{school} = 5\n")
        conversion.district.refresh_from_db()
        assert (conversion.district.sync_deletion_threshold, conversion.district.sync_school_thresholds) == (
            90,
            {school: 5},
        )
        event = AuditEvent.objects.get(action="sync_thresholds")
        assert event.actor == consultant and event.detail["from"] == {"district": 10, "schools": {}}
        zis.update_spec(sections_per_student=2)
        held = nightly(conversion)
        assert held.state == SyncState.HELD
        assert "more than the school's 5%" in held.held_reason and "allowed without a look" not in held.held_reason


def test_thresholds_are_a_consultants_to_change_and_checked(conversion, consultant, district_admin):
    with pytest.raises(AccessRefused, match="consultant"):
        sync.set_thresholds(conversion, user=district_admin, district="20", schools="")
    for district, schools in (("0", ""), ("101", ""), ("x", ""), ("20", "SCH = 0"), ("20", "no percent")):
        with pytest.raises(ValueError):
            sync.set_thresholds(conversion, user=consultant, district=district, schools=schools)
    assert not AuditEvent.objects.filter(action="sync_thresholds").exists()
    assert sync.set_thresholds(conversion, user=consultant, district="10", schools="") == []  # unchanged: no event


def test_when_canvas_s_change_threshold_trips_the_run_says_so(conversion):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        nightly(conversion)
        zis.update_spec(students=90)  # the upload triples: no removal, but far past a 10% size change
        run = nightly(conversion)
        sent = canvas_import(canvas_sim, run.canvas_import_id)
        assert sent.diffing_threshold_exceeded is True  # Canvas imported it whole (sis_batch.rb generate_diff)
        assert run.state == SyncState.IMPORTED_WITH_MESSAGES and run.canvas_threshold_exceeded
        assert AuditEvent.objects.filter(action="sync_canvas_threshold", detail__sync_run=run.pk).exists()


def two_nights(conversion, zis):
    first = nightly(conversion)
    zis.bump_day()  # a day of churn: the simulator drops two enrollments
    second = nightly(conversion)
    assert second.state == SyncState.IMPORTED and second.removed_enrollments
    return first, second


def test_undo_restores_the_import_in_canvas_with_a_progress_then_a_remaster_follows(conversion, consultant, client):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        first, second = two_nights(conversion, zis)
        # Dropped as the district's roster policy says (diffing_drop_status, "inactive" by default).
        dropped = {
            (e.section_id, e.user_id)
            for e in canvas_sim.state.enrollments.values()
            if e.workflow_state in ("inactive", "deleted")
        }
        assert dropped

        job = sync_undo.start_undo(second, user=consultant, reason="The SIS lost two schedules by mistake")
        canvas_sim.pause_imports()  # the restore job waits: its Progress is seen queued, the bar at 0

        def work():
            try:
                jobs.run_job(job.pk, sync_undo.run_undo)
            finally:
                connection.close()

        worker = threading.Thread(target=work)
        worker.start()
        for _ in range(400):
            job.refresh_from_db()
            if job.detail.get("restore_progress_id") and "queued" in job.message:
                break
            time.sleep(0.02)
        assert (job.current, job.total, job.state) == (0, 100, JobState.RUNNING)
        client.force_login(consultant)
        part = client.get(
            reverse("job", args=[conversion.district.slug, conversion.school_year, job.pk])
        ).content.decode()
        assert '<progress max="100" value="0"' in part and "Canvas is restoring import" in part
        canvas_sim.resume_imports()
        worker.join(timeout=30)
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, job.error
        assert (job.current, job.total) == (100, 100)

        second.refresh_from_db()
        assert second.restored_state == "restored" and second.restored_at is not None
        assert canvas_import(canvas_sim, second.canvas_import_id).workflow_state == "restored"
        assert dropped <= active_enrollments(canvas_sim)  # back in Canvas
        undone = AuditEvent.objects.get(action="sync_undone")
        assert undone.actor == consultant and undone.reason == "The SIS lost two schedules by mistake"
        assert undone.detail["canvas_state"] == "restored" and undone.detail["restored"]
        assert AuditEvent.objects.filter(action="sync_undo_requested", actor=consultant).exists()

        remaster = Job.objects.get(kind=JobKind.REMASTER)
        assert job.detail["remaster_job"] == remaster.pk and remaster.requested_by == consultant
        assert jobs.run_job(job.pk, sync_undo.run_undo) is None  # delivered again: nothing more happens
        assert Job.objects.filter(kind=JobKind.REMASTER).count() == 1
        jobs.run_job(remaster.pk, sync.run_remaster)
        remaster.refresh_from_db()
        assert remaster.state == JobState.SUCCEEDED, remaster.error
        whole = SyncRun.objects.get(job=remaster)
        assert whole.full_import_reason.startswith(f"undo of sync {second.pk}")
        assert canvas_import(canvas_sim, whole.canvas_import_id).diffing_data_set_identifier is None

        page = client.get(
            reverse("district_section", args=[conversion.district.slug, conversion.school_year, "syncs"])
        ).content.decode()
        assert "Restored" in page


def test_undo_of_deletions_only_is_reported_partially_restored(conversion, consultant, client):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        _, second = two_nights(conversion, zis)
        job = sync_undo.start_undo(second, user=consultant, reason="Bring back the dropped classes", undelete_only=True)
        jobs.run_job(job.pk, sync_undo.run_undo)
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, job.error
        second.refresh_from_db()
        assert second.restored_state == "partially_restored"
        assert "partially restored" in job.message
        assert AuditEvent.objects.get(action="sync_undone").summary.startswith("Canvas partially restored import")
        client.force_login(consultant)
        page = client.get(
            reverse("district_section", args=[conversion.district.slug, conversion.school_year, "syncs"])
        ).content.decode()
        assert "Partially restored" in page


def test_undo_is_refused_for_imports_canvas_cannot_restore(conversion, consultant, district_admin, client):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        first, second = two_nights(conversion, zis)
        with pytest.raises(sync_undo.UndoRefused, match="Only the last import sent"):
            sync_undo.start_undo(first, user=consultant, reason="x")
        with pytest.raises(AccessRefused, match="consultant"):
            sync_undo.start_undo(second, user=district_admin, reason="x")
        with pytest.raises(sync_undo.UndoRefused, match="reason"):
            sync_undo.start_undo(second, user=consultant, reason=" ")
        skipped = nightly(conversion)
        assert skipped.state == SyncState.SKIPPED
        with pytest.raises(sync_undo.UndoRefused, match="sent nothing to Canvas"):
            sync_undo.start_undo(skipped, user=consultant, reason="x")
        # Canvas keeps what an import changed for 30 days (SisBatchRollBackData.expired_data).
        SyncRun.objects.filter(pk=second.pk).update(submitted_at=second.submitted_at - dt.timedelta(days=31))
        with pytest.raises(sync_undo.UndoRefused, match="more than 30 days old"):
            sync_undo.start_undo(SyncRun.objects.get(pk=second.pk), user=consultant, reason="x")
        SyncRun.objects.filter(pk=second.pk).update(submitted_at=second.submitted_at)

        # Restored in Canvas behind the product's back: the job asks Canvas first and does not restore again.
        job = sync_undo.start_undo(second, user=consultant, reason="x")
        with CanvasClient(canvas_sim.url, TOKEN) as api:
            api.restore_states("self", second.canvas_import_id)
        for _ in range(400):
            if canvas_import(canvas_sim, second.canvas_import_id).workflow_state == "restored":
                break
            time.sleep(0.02)
        jobs.run_job(job.pk, sync_undo.run_undo)
        job.refresh_from_db()
        assert job.state == JobState.FAILED and "restored already" in job.error
        assert not Job.objects.filter(kind=JobKind.REMASTER).exists()

        # The page's button, pressed by a district admin: refused with the reason, no job.
        client.force_login(district_admin)
        response = client.post(
            reverse("undo_sync", args=[conversion.district.slug, conversion.school_year, second.pk]),
            {"reason": "please"},
            follow=True,
        )
        assert "This sync cannot be undone" in response.content.decode()
        assert Job.objects.filter(kind=JobKind.SYNC_UNDO).count() == 1


def test_the_sync_history_offers_undo_and_thresholds_to_consultants_only(
    conversion, consultant, district_admin, client
):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        run = nightly(conversion)
        url = reverse("district_section", args=[conversion.district.slug, conversion.school_year, "syncs"])
        client.force_login(consultant)
        page = client.get(url).content.decode()
        assert reverse("undo_sync", args=[conversion.district.slug, conversion.school_year, run.pk]) in page
        assert 'id="district-threshold">10%' in page and "Save the thresholds" in page
        response = client.post(
            reverse("sync_thresholds", args=[conversion.district.slug, conversion.school_year]),
            {"district": "15", "schools": ""},
            follow=True,
        )
        assert 'id="district-threshold">15%' in response.content.decode()
        client.post(
            reverse("undo_sync", args=[conversion.district.slug, conversion.school_year, run.pk]),
            {"reason": "Wrong roster"},
        )
        assert Job.objects.get(kind=JobKind.SYNC_UNDO).params["sync_run"] == run.pk
        client.force_login(district_admin)
        page = client.get(url).content.decode()
        assert "Undo this sync" not in page and "Save the thresholds" not in page and "15%" in page
