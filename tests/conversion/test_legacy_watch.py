"""Step 3, verified: after the pause, Canvas SIS imports the product did not make are flagged (page,
diagnostics, alert), and the remap is refused until they stop arriving."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from canvas.simulator import CanvasSimulator
from conversion import workflow
from conversion.models import AuditEvent, ConversionState, Diagnostic, Job, JobKind, JobState
from conversion.services import legacy_watch, remap
from tests.conversion.jobhelpers import run

pytestmark = pytest.mark.django_db
TOKEN = "legacy-watch-token-123456"


def users_csv(prefix: str) -> bytes:
    return (f"user_id,login_id,first_name,last_name,status\n{prefix}1,{prefix.lower()}1,Ana,One,active\n").encode()


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def canvas(conversion, consultant, district_admin):
    consultant.email, district_admin.email = "ic@example.org", "admin@alpha.example.org"
    consultant.save()
    district_admin.save()
    with CanvasSimulator(token=TOKEN) as sim:
        district = conversion.district
        district.canvas_url, district.canvas_token = sim.url, TOKEN
        district.canvas_account_id = str(sim.root_account_id)
        district.save()
        now = timezone.now()
        before = sim.seed_sis_import(users_csv("PS"))  # the legacy sync's last import before the pause
        before.created_at = iso(now - dt.timedelta(days=10))
        conversion.state = ConversionState.REMAPPING
        conversion.legacy_sync_paused_at = now - dt.timedelta(days=5)
        conversion.save()
        ours = sim.seed_sis_import(users_csv("DC"))  # one of ours after the pause (a remap job's)
        Job.objects.create(
            conversion=conversion, kind=JobKind.REMAP_ROLLBACK, state=JobState.SUCCEEDED, detail={"import_id": ours.id}
        )
        mail.outbox = []
        yield sim


def test_only_our_imports_since_the_pause_pass_and_the_remap_may_run(conversion, canvas, consultant):
    seen = legacy_watch.check(conversion)
    assert seen["foreign"] == [] and not seen["still_arriving"]
    assert workflow.job_problems(conversion, JobKind.REMAP, consultant) == []
    assert "none but ours" in AuditEvent.objects.filter(action="legacy_check").first().summary


def test_a_legacy_import_after_the_pause_is_flagged_and_blocks_the_remap_until_it_stops(conversion, canvas, consultant):
    legacy = canvas.seed_sis_import(users_csv("PS"))  # the legacy sync ran again tonight
    seen = legacy_watch.check(conversion)
    assert [i["id"] for i in seen["foreign"]] == [legacy.id] and seen["still_arriving"]
    # One uploaded CSV is listed under the name Canvas gives the batch (SisBatch.create_with_attachment).
    assert seen["foreign"][0]["files"] == [f"sis_upload_{legacy.id}.zip"]
    assert seen["foreign"][0]["counts"].get("users") == 1
    # In the diagnostics (with the district's checklist), on the page, and as an alert to those who act.
    diag = Diagnostic.objects.get(conversion=conversion, code="legacy_imports", cleared_at__isnull=True)
    assert diag.evidence["imports"][0]["id"] == legacy.id and "turn off the legacy" in diag.advice
    assert sorted(m.to[0] for m in mail.outbox) == ["admin@alpha.example.org", "ic@example.org"]
    # The remap is refused, at the button and in the job itself (which looks again first).
    problems = workflow.job_problems(conversion, JobKind.REMAP, consultant)
    assert problems and f"import {legacy.id}" in problems[0]
    job = run(conversion, JobKind.REMAP, remap.run_remap)
    assert job.state == JobState.FAILED and "Legacy SIS imports still reach Canvas" in job.error

    # The district turns the legacy sync off: nothing more arrives for two days.
    legacy.created_at = iso(timezone.now() - dt.timedelta(days=2))
    seen = legacy_watch.check(conversion)
    assert [i["id"] for i in seen["foreign"]] == [legacy.id] and not seen["still_arriving"]  # still listed
    assert workflow.job_problems(conversion, JobKind.REMAP, consultant) == []
    assert Diagnostic.objects.get(conversion=conversion, code="legacy_imports").cleared_at is not None


def test_nothing_is_read_before_the_pause(conversion, canvas):
    conversion.legacy_sync_paused_at = None
    conversion.pause_date = timezone.localdate() + dt.timedelta(days=30)
    conversion.save()
    canvas.seed_sis_import(users_csv("PS"))
    assert legacy_watch.check(conversion)["foreign"] == []
    assert not AuditEvent.objects.filter(action="legacy_check").exists()


def test_the_hourly_check_looks_at_every_district_past_the_pause(conversion, canvas):
    canvas.seed_sis_import(users_csv("PS"))
    assert legacy_watch.check_all() == {conversion.pk: 1}


def test_the_page_lists_the_imports_and_the_checklist(conversion, canvas, consultant, district_admin, client):

    legacy = canvas.seed_sis_import(users_csv("PS"))
    client.force_login(consultant)
    url = f"/districts/{conversion.district.slug}/{conversion.school_year}/legacy-imports/"
    assert "not been checked since the pause" in client.get(url).content.decode()
    page = client.post(url + "check/", follow=True).content.decode()
    assert "1 import(s) since the pause not made by this product" in page
    assert "Still arriving" in page and f"<td>{legacy.id}</td>" in page and f"sis_upload_{legacy.id}.zip" in page
    assert "turn off the legacy Canvas plug-in" in page
    district_page = client.get(f"/districts/{conversion.district.slug}/{conversion.school_year}/").content.decode()
    assert url in district_page  # from the header and from the diagnostic
    client.logout()
    client.force_login(district_admin)
    assert f"<td>{legacy.id}</td>" in client.get(url).content.decode()
    assert client.post(url + "check/").status_code == 403
