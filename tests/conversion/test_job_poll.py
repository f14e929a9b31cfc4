"""The job-progress poll: one query, the same item as the district page renders, and 304 Not Modified for a
browser that already has what the item would show."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from conversion.models import Job, JobKind, JobState


@pytest.fixture
def running(conversion, consultant):
    return Job.objects.create(
        conversion=conversion,
        kind=JobKind.PULL,
        state=JobState.RUNNING,
        current=1200,
        total=5000,
        message="Receiving",
        requested_by=consultant,
        detail={"objects": {"StudentPersonal": {"records": 1200, "packets": 2}}},
    )


def poll_url(job) -> str:
    c = job.conversion
    return reverse("job", kwargs={"slug": c.district.slug, "year": c.school_year, "job_id": job.pk}) + "?polling=1"


@pytest.fixture
def fast_auth(settings):
    # Session and user read through this process's memory, so the poll's own queries can be counted.
    settings.SESSION_LOCAL_SECONDS = 60
    settings.AUTH_USER_CACHE_SECONDS = 60


def test_the_poll_shows_the_job_in_one_query(client, consultant, running, fast_auth, django_assert_num_queries):
    client.force_login(consultant)
    client.get(poll_url(running), HTTP_HX_REQUEST="true")
    with django_assert_num_queries(1) as queries:  # the job with all it shows
        response = client.get(poll_url(running), HTTP_HX_REQUEST="true")
    (job_query,) = [q["sql"] for q in queries.captured_queries]
    assert "SELECT" not in job_query.split("FROM", 1)[1]  # a consultant sees every district: no subquery
    html = response.content.decode()
    assert response.status_code == 200
    assert "Pull from the zone" in html and "by ic" in html and "1,200 of 5,000 (24%)" in html
    assert f'hx-get="{poll_url(running)}" hx-trigger="every 2s"' in html
    assert "StudentPersonal" in html and response["Cache-Control"] == "private, no-cache"


def test_an_unchanged_job_is_answered_304_and_a_changed_one_200(client, consultant, conversion):
    queued = Job.objects.create(conversion=conversion, kind=JobKind.PULL)
    client.force_login(consultant)
    first = client.get(poll_url(queued), HTTP_HX_REQUEST="true")
    etag = first["ETag"]
    assert first.status_code == 200 and etag.startswith('"')
    again = client.get(poll_url(queued), HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    Job.objects.filter(pk=queued.pk).update(message="Waiting for a worker")
    changed = client.get(poll_url(queued), HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag and b"Waiting for a worker" in changed.content


def test_a_running_job_is_304_until_its_row_changes_and_its_clock_ticks_in_the_browser(client, consultant, running):
    started = timezone.now() - dt.timedelta(seconds=30)
    Job.objects.filter(pk=running.pk).update(started_at=started)
    client.force_login(consultant)
    now = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=now):
        first = client.get(poll_url(running), HTTP_HX_REQUEST="true")
    with mock.patch("django.utils.timezone.now", return_value=now + dt.timedelta(seconds=2)):
        later = client.get(poll_url(running), HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=first["ETag"])
    assert later.status_code == 304
    # The item carries the start time the browser counts from (static/js/app.js), not a server-side figure.
    html = first.content.decode()
    assert f'data-started="{timezone.localtime(started).isoformat()}"' in html
    Job.objects.filter(pk=running.pk).update(current=1300)
    moved = client.get(poll_url(running), HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=first["ETag"])
    assert moved.status_code == 200 and "1,300 of 5,000" in moved.content.decode()


def test_a_finished_job_tells_the_page_once_and_stops_polling(client, consultant, running):
    client.force_login(consultant)
    before = client.get(poll_url(running), HTTP_HX_REQUEST="true")
    Job.objects.filter(pk=running.pk).update(state=JobState.SUCCEEDED, current=5000, finished_at=timezone.now())
    done = client.get(poll_url(running), HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=before["ETag"])
    assert done.status_code == 200 and done["HX-Trigger"] == "job-finished"
    assert b"hx-trigger" not in done.content and b"Done" in done.content


def test_no_304_and_nothing_else_for_a_user_who_may_not_see_the_job(client, consultant, other_admin, running):
    client.force_login(consultant)
    etag = client.get(poll_url(running), HTTP_HX_REQUEST="true")["ETag"]
    client.force_login(other_admin)
    refused = client.get(poll_url(running), HTTP_HX_REQUEST="true", HTTP_IF_NONE_MATCH=etag)
    assert refused.status_code == 404 and b"Receiving" not in refused.content and not refused.has_header("ETag")


def test_the_job_must_be_that_districts_and_years(client, consultant, running, other_conversion):
    client.force_login(consultant)
    c = running.conversion
    for slug, year in ((other_conversion.district.slug, c.school_year), (c.district.slug, c.school_year - 1)):
        url = reverse("job", kwargs={"slug": slug, "year": year, "job_id": running.pk})
        assert client.get(url, HTTP_HX_REQUEST="true").status_code == 404


def test_the_poll_item_is_the_district_pages_item(client, consultant, running):
    client.force_login(consultant)
    c = running.conversion
    page = client.get(reverse("district_year", kwargs={"slug": c.district.slug, "year": c.school_year}))
    item = client.get(poll_url(running), HTTP_HX_REQUEST="true").content.decode().strip()
    assert item in page.content.decode()
