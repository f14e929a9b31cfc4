"""In a real browser: sign in, open a district, start jobs, watch their progress bars reach done, read
the mapping diff."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import expect

from conversion.models import ConversionState, Job, JobState
from sifclient.powerschool import DistrictSpec
from tests.browser.conftest import sign_in
from tests.conversion.conftest import PASSWORD, fill_step_one
from tests.conversion.simulators import simulated_district

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SPEC = DistrictSpec(students=400, schools=2, school_year=2027, seed=5)


def screenshot(page, name: str) -> None:
    folder = os.environ.get("SIFCONVERT_VAR_DIR")
    if folder:
        os.makedirs(os.path.join(folder, "screenshots"), exist_ok=True)
        page.screenshot(path=os.path.join(folder, "screenshots", f"{name}.png"), full_page=True)


def test_consultant_runs_a_pull_and_sees_it_finish(page, celery_worker, conversion, consultant):
    with simulated_district(conversion, SPEC):
        fill_step_one(conversion)
        conversion.state = ConversionState.CONNECTION
        conversion.save()
        sign_in(page, consultant.username, PASSWORD)
        expect(page.get_by_role("link", name="Alpha Unified")).to_be_visible()
        page.get_by_role("link", name="Alpha Unified").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Alpha Unified")
        # No pull yet: it is not the district's turn.
        expect(page.locator(".steps")).not_to_contain_text("Waiting for the district")

        page.get_by_role("button", name="Pull from the zone").click()
        job_item = page.locator("#job-list li.job").first
        expect(job_item).to_contain_text("Pull from the zone")
        expect(job_item.locator("progress")).to_be_visible()
        # The bar polls every 2 s and stops when the job is done.
        expect(page.locator("#job-list li.job").first.locator(".job-head .badge")).to_have_text("Done", timeout=120_000)
        job = Job.objects.get(kind="pull")
        assert job.state == JobState.SUCCEEDED
        expect(page.locator("#job-list li.job").first.locator("progress")).to_have_attribute("value", "100")
        # The page refreshed itself after the job; the pulled data is in its own section.
        expect(page.locator("#job-list li.job").first).to_contain_text("Done", timeout=15_000)
        page.get_by_role("link", name="Pull", exact=True).click()
        expect(page).to_have_url(re.compile(r"/pull/$"))
        expect(page.get_by_role("heading", name="Pulled data")).to_be_visible(timeout=15_000)
        expect(page.locator("table", has_text="Records per object")).to_contain_text("StudentPersonal")
        screenshot(page, "district-after-pull")
        page.go_back()  # the overview, from the browser's history (hx-push-url)
        expect(page.locator("#job-list li.job").first).to_contain_text("Pull from the zone")
        # Polling stopped: the finished item no longer carries hx-trigger.
        assert page.locator("#job-list li.job").first.get_attribute("hx-trigger") is None


def test_district_admin_sees_the_mapping_diff(page, celery_worker, conversion, consultant, district_admin):
    from conversion import jobs
    from conversion.models import JobKind
    from conversion.services import mapping, pull

    with simulated_district(conversion, SPEC):
        fill_step_one(conversion)
        conversion.state = ConversionState.MAPPING
        conversion.save()
        for kind, runner in ((JobKind.PULL, pull.run_pull), (JobKind.MAPPING, mapping.run_mapping)):
            job, _ = jobs.start_job(conversion, kind, enqueue=False)
            jobs.run_job(job.pk, runner)
        sign_in(page, district_admin.username, PASSWORD)
        page.goto(f"/districts/{conversion.district.slug}/{conversion.school_year}/mapping/")
        section = page.locator("#mapping")
        expect(section).to_contain_text("Mapping: SIF data against Canvas")
        counts = section.locator("table.mapping-counts")
        expect(counts.locator("tr", has_text="Users")).to_contain_text("418")  # 400 students + 18 staff matched
        # Pick the users only in Canvas: the filtered rows load in place.
        counts.locator("tr", has_text="Users").get_by_role("link").nth(3).click()
        rows = page.locator("#mapping-rows table")
        expect(rows).to_contain_text("not in the SIF data")
        expect(rows.locator("tbody tr")).to_have_count(3)
        screenshot(page, "mapping-diff")
        expect(page.get_by_role("button", name="Approve the mapping")).to_be_enabled()


def test_a_running_jobs_clock_ticks_in_the_browser_while_its_poll_is_answered_304(
    page, conversion, consultant, monkeypatch
):
    import datetime as dt

    from django.utils import timezone

    from conversion.models import JobKind
    from conversion.views import district as district_views

    answered = []  # the live server's conditional answers (it runs in this process)
    real = district_views.get_conditional_response

    def spy(request, **kwargs):
        response = real(request, **kwargs)
        answered.append(response.status_code if response is not None else 200)
        return response

    monkeypatch.setattr(district_views, "get_conditional_response", spy)

    Job.objects.create(
        conversion=conversion,
        kind=JobKind.PULL,
        state=JobState.RUNNING,
        current=10,
        total=100,
        message="Receiving",
        requested_by=consultant,
        started_at=timezone.now() - dt.timedelta(seconds=75),
        heartbeat_at=timezone.now(),
    )
    polls = []
    page.on("requestfinished", lambda r: polls.append(r) if "/jobs/" in r.url else None)
    sign_in(page, consultant.username, PASSWORD)
    page.goto(f"/districts/{conversion.district.slug}/{conversion.school_year}/")
    elapsed = page.locator("#active-jobs li.job .job-elapsed")
    expect(elapsed).to_have_text(re.compile(r"^1 min \d+ s$"))
    first = elapsed.inner_text()
    expect(elapsed).not_to_have_text(first, timeout=5_000)  # ticks every second
    expect(elapsed).to_have_text(re.compile(r"^1 min \d+ s$"))
    # The item polls every 2 s; with the job's row unchanged the server answers 304 and the item stays.
    page.wait_for_timeout(4_500)
    # Chromium shows a revalidated answer as 200 from its cache: the If-None-Match it sent, and the 304 the
    # server answered, tell what happened.
    assert any(r.all_headers().get("if-none-match") for r in polls)
    assert 304 in answered, answered
    assert elapsed.get_attribute("data-started")
