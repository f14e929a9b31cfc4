"""Parallel presses of one job button, as truly concurrent requests against a live server: one job, one upload.

The probe pressed "Remap" six times at once and got three jobs, two of which each uploaded a change_sis_id
import to Canvas; simultaneous sync presses made four jobs. Here several threads post the same press to
pytest-django's live server (a threaded WSGI server on the real PostgreSQL) at the same instant.
"""

from __future__ import annotations

import threading

import httpx
import pytest
from django.conf import settings
from django.test import Client

from canvas.client import CanvasClient
from conversion import jobs, workflow
from conversion.models import AuditEvent, ConversionState, Job, JobKind, JobState
from conversion.services import mapping, pull, remap
from sifclient.powerschool import DistrictSpec
from tests.conversion.jobhelpers import run as run_job
from tests.conversion.simulators import TOKEN, simulated_district

pytestmark = pytest.mark.django_db(transaction=True)
SPEC = DistrictSpec(students=40, schools=1, school_year=2027, seed=5)
PRESSES = 6


def signed_in(live_server, user) -> httpx.Client:
    """An HTTP client of the live server carrying `user`'s session and a CSRF token, as a browser would."""
    django_client = Client()
    django_client.force_login(user)
    http = httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=60)
    http.cookies.set(settings.SESSION_COOKIE_NAME, django_client.cookies[settings.SESSION_COOKIE_NAME].value)
    http.get("/")  # sets the csrftoken cookie
    return http


def press_at_once(live_server, user, path: str, n: int = PRESSES) -> list[int]:
    clients = [signed_in(live_server, user) for _ in range(n)]
    barrier = threading.Barrier(n)
    statuses: list[int] = []

    def press(http: httpx.Client) -> None:
        token = http.cookies["csrftoken"]
        barrier.wait()
        response = http.post(path, headers={"X-CSRFToken": token, "Referer": live_server.url + "/"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=press, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    return statuses


def test_parallel_remap_presses_make_one_job_and_one_canvas_upload(live_server, conversion, consultant, district_admin):
    with simulated_district(conversion, SPEC) as (zis, canvas_sim):
        conversion.state = ConversionState.MAPPING
        conversion.save()
        run_job(conversion, JobKind.PULL, pull.run_pull, expect_success=True)
        run_job(conversion, JobKind.MAPPING, mapping.run_mapping, expect_success=True)
        workflow.perform(conversion, "approve_mapping", user=district_admin)
        conversion.refresh_from_db()
        assert conversion.state == ConversionState.REMAPPING

        statuses = press_at_once(live_server, consultant, f"/districts/alpha/2027/jobs/start/{JobKind.REMAP}/")

        assert len(statuses) == PRESSES and set(statuses) == {302}, statuses  # no 500, every press answered
        remaps = Job.objects.filter(conversion=conversion, kind=JobKind.REMAP)
        assert remaps.count() == 1
        assert AuditEvent.objects.filter(conversion=conversion, action=f"job_started:{JobKind.REMAP}").count() == 1

        (job,) = remaps
        jobs.run_job(job.pk, remap.run_remap)
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, job.error
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            uploads = [
                i
                for i in client.iter_sis_imports("self")
                if any("remap-job" in (a.get("display_name") or "") for a in i.raw.get("csv_attachments") or [])
            ]
        assert len(uploads) == 1


def test_parallel_presses_of_a_quick_job_are_refused_with_the_usual_message(live_server, conversion, consultant):
    conversion.zis_url, conversion.zone_id = "http://127.0.0.1:9/zones", "ALPHA"
    conversion.save()
    statuses = press_at_once(live_server, consultant, f"/districts/alpha/2027/jobs/start/{JobKind.TEST_CONNECTION}/")
    assert set(statuses) == {302}, statuses
    assert Job.objects.filter(conversion=conversion, kind=JobKind.TEST_CONNECTION).count() == 1
    # A later press, one at a time, sees the same clear refusal as the racing presses did.
    http = signed_in(live_server, consultant)
    try:
        http.post(
            f"/districts/alpha/2027/jobs/start/{JobKind.TEST_CONNECTION}/",
            headers={"X-CSRFToken": http.cookies["csrftoken"], "Referer": live_server.url + "/"},
        )
        page = http.get("/districts/alpha/2027/").text
    finally:
        http.close()
    assert "Connection test cannot start: One is already queued or running." in page
    assert "IntegrityError" not in page
