"""Remaster: a full import without diffing, on demand (audited) and by itself after a restore, a rollback or a
header change; through the Canvas simulator over HTTP, and the sync history's button without a browser."""

from __future__ import annotations

import time

import pytest
from django.urls import reverse
from django.utils import timezone

from canvas.client import CanvasClient
from conversion import jobs
from conversion.models import AuditEvent, ConversionState, Job, JobKind, JobState, SyncRun, SyncState
from conversion.rules import AccessRefused
from conversion.services import sync
from sifclient.powerschool import DistrictSpec
from tests.conversion.jobhelpers import run as run_job
from tests.conversion.simulators import TOKEN, simulated_district

pytestmark = pytest.mark.django_db(transaction=True)
SPEC = DistrictSpec(students=30, schools=1, school_year=2027, seed=3)


def live(conversion):
    conversion.state = ConversionState.LIVE
    conversion.save()


def canvas_import(canvas_sim, run: SyncRun):
    with CanvasClient(canvas_sim.url, TOKEN) as client:
        return client.get_sis_import("self", run.canvas_import_id)


def nightly(conversion) -> SyncRun:
    job = run_job(conversion, JobKind.SYNC, sync.run_sync, expect_success=True)
    return SyncRun.objects.get(job=job)


def remaster(conversion, consultant, reason="Teachers edited rosters by hand") -> SyncRun:
    job = sync.start_remaster(conversion, user=consultant, reason=reason)
    jobs.run_job(job.pk, sync.run_remaster)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    # Delivered again: nothing more is sent.
    assert jobs.run_job(job.pk, sync.run_remaster) is None
    return SyncRun.objects.get(job=job)


def test_a_consultant_s_remaster_goes_whole_without_the_diffing_data_set_and_is_audited(conversion, consultant):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        first = nightly(conversion)
        assert canvas_import(canvas_sim, first).diffing_data_set_identifier == sync.diffing_data_set(conversion)

        run = remaster(conversion, consultant)
        assert run.state == SyncState.IMPORTED and run.trigger == "remaster"
        assert run.full_import_reason == "Teachers edited rosters by hand"
        sent = canvas_import(canvas_sim, run)
        # Outside the data set: Canvas neither diffs it nor takes it as the next baseline (sis_batch.rb
        # generate_diff returns at once without an identifier).
        assert sent.diffing_data_set_identifier is None and sent.diffed_against_import_id is None
        assert sent.counts.get("users") == first.counts["users"]  # every row, not a diff
        event = AuditEvent.objects.get(action="remaster_requested")
        assert (event.actor, event.reason) == (consultant, "Teachers edited rosters by hand") and event.created_at
        assert len(canvas_sim.runner.imports) == 2

        # The next night with no new data is skipped again: the remaster sent nothing new.
        assert nightly(conversion).state == SyncState.SKIPPED


def test_a_remaster_needs_a_consultant_a_reason_and_no_sync_under_way(conversion, consultant, district_admin):
    conversion.district.canvas_url = "http://127.0.0.1:9"
    conversion.district.save()
    live(conversion)
    with pytest.raises(ValueError, match="reason"):
        sync.start_remaster(conversion, user=consultant, reason="  ")
    with pytest.raises(AccessRefused, match="consultant"):
        sync.start_remaster(conversion, user=district_admin, reason="please")
    jobs.start_job(conversion, JobKind.SYNC, enqueue=False)
    with pytest.raises(ValueError, match="already queued"):
        sync.start_remaster(conversion, user=consultant, reason="please")
    assert not Job.objects.filter(kind=JobKind.REMASTER).exists()


def test_after_canvas_restored_one_of_our_imports_the_next_night_goes_whole(conversion):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        first = nightly(conversion)
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            client.restore_states("self", first.canvas_import_id)
            for _ in range(400):
                if client.get_sis_import("self", first.canvas_import_id).workflow_state in sync.RESTORED_STATES:
                    break
                time.sleep(0.05)
        # No new data in the SIS, yet Canvas lost what the first sync made: diffing would send nothing.
        second = nightly(conversion)
        assert second.state == SyncState.IMPORTED
        assert f"Canvas import {first.canvas_import_id} was restored" in second.full_import_reason
        assert canvas_import(canvas_sim, second).diffing_data_set_identifier is None
        # Repaired once: the night after is an ordinary one again.
        third = nightly(conversion)
        assert third.state == SyncState.SKIPPED and third.full_import_reason == ""


def test_after_a_remap_rollback_the_next_sync_goes_whole(conversion):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        nightly(conversion)
        Job.objects.create(
            conversion=conversion, kind=JobKind.REMAP_ROLLBACK, state=JobState.SUCCEEDED, finished_at=timezone.now()
        )
        second = nightly(conversion)
        assert second.state == SyncState.IMPORTED
        assert second.full_import_reason == "the remap was rolled back since the last full import"
        assert canvas_import(canvas_sim, second).diffing_data_set_identifier is None


def test_when_the_csv_headers_change_the_sync_goes_whole(conversion):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        nightly(conversion)
        # The district's SSO provider, as it exists in its Canvas: users.csv gains a column.
        conversion.district.canvas_authentication_provider_id = str(canvas_sim.add_authentication_provider())
        conversion.district.save()
        second = nightly(conversion)
        assert second.full_import_reason == "CSV headers changed since the last sync: users"
        assert canvas_import(canvas_sim, second).diffing_data_set_identifier is None
        # The new headers went once; the next nights are diffed again, not whole for ever. Canvas's diff base is
        # still the last diffed import (the remaster went without the data set), whose users.csv had the old
        # header: that one file is imported whole with Canvas's warning (sis_batch.rb#generate_diff), once.
        zis.bump_day()
        third = nightly(conversion)
        assert third.full_import_reason == ""
        third_import = canvas_import(canvas_sim, third)
        assert third_import.diffing_data_set_identifier == sync.diffing_data_set(conversion)
        assert [text for _, text in third_import.processing_warnings] == [
            "Couldn't generate diff: CSV headers do not match, cannot diff"
        ]
        zis.bump_day()
        fourth = nightly(conversion)
        assert fourth.state == SyncState.IMPORTED and fourth.full_import_reason == ""
        fourth_import = canvas_import(canvas_sim, fourth)
        assert fourth_import.diffing_data_set_identifier == sync.diffing_data_set(conversion)
        assert fourth_import.processing_warnings == []


def test_the_sync_history_button_starts_an_audited_remaster_and_shows_it(
    conversion, consultant, district_admin, client
):
    conversion.district.canvas_url = "http://127.0.0.1:9"
    conversion.district.save()
    live(conversion)
    page = reverse("district_section", kwargs={"slug": "alpha", "year": 2027, "section": "syncs"})
    url = reverse("remaster_sync", kwargs={"slug": "alpha", "year": 2027})

    client.force_login(district_admin)
    assert url not in client.get(page).content.decode()  # the button is the consultants'
    response = client.post(url, {"reason": "I want it"}, follow=True)
    assert "The full sync cannot start" in response.content.decode()
    assert not Job.objects.filter(kind=JobKind.REMASTER).exists()

    client.force_login(consultant)
    html = client.get(page).content.decode()
    assert url in html and "Send everything to Canvas (remaster)" in html
    response = client.post(url, {"reason": "Restore of import 12 in Canvas"}, follow=True)
    assert "Full sync (remaster) queued" in response.content.decode()
    job = Job.objects.get(kind=JobKind.REMASTER)
    assert (job.requested_by, job.params["reason"]) == (consultant, "Restore of import 12 in Canvas")
    # Shown in the sync history with why and by whom (its run finished here without Canvas).
    SyncRun.objects.create(
        conversion=conversion,
        job=job,
        trigger="remaster",
        state=SyncState.IMPORTED,
        full_import_reason=job.params["reason"],
        finished_at=timezone.now(),
    )
    html = client.get(page).content.decode()
    assert "full import" in html and "Restore of import 12 in Canvas — ic" in html
    # The generic job button cannot start one without a reason.
    client.post(reverse("start_job", kwargs={"slug": "alpha", "year": 2027, "kind": JobKind.REMASTER}))
    assert Job.objects.filter(kind=JobKind.REMASTER).count() == 1


def test_a_night_with_nothing_to_send_is_skipped_even_when_canvas_cannot_be_asked_about_restores(conversion):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        nightly(conversion)
        conversion.district.canvas_url = "http://127.0.0.1:9"  # nothing listens there
        conversion.district.save()
        assert nightly(conversion).state == SyncState.SKIPPED
