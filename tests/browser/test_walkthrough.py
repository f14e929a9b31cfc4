"""The whole conversion in a real browser: a consultant and the district's admin take a district from
ZIS set-up to a live nightly sync, each doing only what their role allows, with a real Celery worker."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conversion import workflow
from conversion.models import AuditEvent, ConversionState, GradePassbackItem, SyncRun
from sifclient.powerschool import DistrictSpec
from tests.browser.conftest import sign_in
from tests.browser.test_district_page import screenshot
from tests.conversion.conftest import PASSWORD
from tests.conversion.simulators import simulated_district

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SPEC = DistrictSpec(students=200, schools=2, school_year=2027, seed=9)


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")


def next_card(page):
    return page.locator("#next")


def expect_next(page, title: str, who: str) -> None:
    expect(next_card(page).get_by_role("heading", level=2)).to_have_text(f"Next: {title}")
    expect(next_card(page).locator(".next-who")).to_contain_text(who)


def open_part(page, summary: str):
    part = page.locator("details.editpart", has=page.locator("summary", has_text=summary))
    part.locator("summary").click()
    return part


def wait_for_jobs(page) -> None:
    """Jobs run at the top of the page, under the next action; the page refreshes itself when they end."""
    expect(page.locator("#active-jobs")).to_have_count(0, timeout=120_000)
    page.reload()


def run_next_job(page, label: str) -> None:
    next_card(page).get_by_role("button", name=label, exact=True).click()
    expect(page.locator("#active-jobs li.job").first).to_contain_text(
        label if label != "Pull from the zone" else "Pull"
    )
    wait_for_jobs(page)


def run_job(page, label: str) -> None:
    """A job that is not the next action: from the overview's Jobs card."""
    tab(page, "Overview")
    page.locator("#job-list").locator("xpath=..").get_by_role("button", name=label, exact=True).click()
    first = page.locator("#job-list li.job").first
    expect(first).to_contain_text(label if label != "Pull from the zone" else "Pull")
    expect(first.locator(".job-head .badge")).to_have_text(re.compile("^Done"), timeout=120_000)
    page.wait_for_timeout(500)  # the page refreshes itself once the job is done
    page.reload()


def act(page, button: str, note: str = "", where=None) -> None:
    where = where or next_card(page)
    form = where.locator("form.action", has=page.get_by_role("button", name=button))
    if note:
        form.locator("textarea").fill(note)
    form.get_by_role("button", name=button).click()
    expect(page.locator(".messages")).to_contain_text(f"Done: {button}")


def tab(page, name: str) -> None:
    current = page.locator("nav.tabs [aria-current=page]")
    if current.inner_text() != name:
        page.locator("nav.tabs").get_by_role("link", name=name, exact=True).click()
        expect(current).to_have_text(name)
        page.wait_for_load_state("networkidle")


def test_walkthrough(page, celery_worker, conversion, consultant, district_admin):
    with simulated_district(conversion, SPEC) as (zis, canvas_sim):
        url = f"/districts/{conversion.district.slug}/{conversion.school_year}/"
        zis_url, zone = conversion.zis_url, conversion.zone_id
        conversion.zis_url = conversion.zone_id = ""
        conversion.save()
        add_graded_assignments(canvas_sim)

        # Step 1, consultant: the ZIS details, asked for at the top of the page.
        sign_in(page, consultant.username, PASSWORD)
        page.goto(url)
        expect_next(page, "Enter the ZIS URL and Zone ID", "Your turn")
        card = next_card(page)
        card.get_by_label("ZIS URL").fill(zis_url)
        card.get_by_label("Zone ID").fill(zone)
        card.get_by_label("ZIS password").fill("zis-secret-password")
        card.get_by_role("button", name="Save").click()
        expect(page.locator(".messages")).to_contain_text("Saved.")
        assert "zis-secret-password" not in page.content()
        expect_next(page, "Confirm the SIF agent is set up", "Waiting for the district")
        run_job(page, "Connection test")
        tab(page, "Connection")
        expect(page.get_by_role("heading", name="What the ZIS answered")).to_be_visible()
        expect(page.locator(".verdict-passed")).to_be_visible()
        sign_out(page)

        # Step 1, district admin: the agent checklist inline at the top, then the confirmation.
        sign_in(page, district_admin.username, PASSWORD)
        page.goto(url)
        expect_next(page, "Confirm the SIF agent is set up", "Your turn")
        expect(next_card(page).get_by_role("button", name="Confirm the SIF agent is set up")).to_be_disabled()
        for checkbox in next_card(page).get_by_role("checkbox").all():
            checkbox.check()
        next_card(page).get_by_role("button", name="Save").click()
        act(page, "Confirm the SIF agent is set up", "Agent restarted; mappings still in agent.cfg")
        expect(page.get_by_role("button", name="Pull from the zone")).to_have_count(0)  # admins start no jobs
        sign_out(page)

        # Step 2, consultant: pull from the top; then the admin verifies from the top.
        sign_in(page, consultant.username, PASSWORD)
        page.goto(url)
        expect_next(page, "Pull from the zone", "Your turn")
        run_next_job(page, "Pull from the zone")
        expect_next(page, "Verify the pulled data", "Waiting for the district")
        tab(page, "Pull")
        expect(page.locator("table", has_text="Records per object")).to_contain_text("StudentPersonal")
        screenshot(page, "walk-1-pulled")
        sign_out(page)
        sign_in(page, district_admin.username, PASSWORD)
        page.goto(url)
        act(page, "Verify the pulled data", "Schools and counts match PowerSchool")
        sign_out(page)

        # Step 3, consultant: the scheduler would pause on May 31; a custom pause date of today, then pause.
        sign_in(page, consultant.username, PASSWORD)
        page.goto(url)
        expect_next(page, "Pause the current Canvas sync", "The scheduler")
        next_card(page).get_by_label("Pause date").fill(workflow.local_today(conversion).isoformat())
        next_card(page).get_by_role("button", name="Save").click()
        expect_next(page, "Pause the current Canvas sync", "Your turn")
        act(page, "Pause the current Canvas sync")

        # Step 4: the mapping check from the top; the admin approves it.
        run_next_job(page, "Mapping check against Canvas")
        expect_next(page, "Approve the mapping", "Waiting for the district")
        tab(page, "Mapping")
        expect(page.locator("#mapping")).to_contain_text("Nothing blocking")
        screenshot(page, "walk-2-mapping")
        sign_out(page)
        sign_in(page, district_admin.username, PASSWORD)
        page.goto(url)
        act(page, "Approve the mapping", "Checked the only-in-Canvas users: they left")
        sign_out(page)

        # Step 5, consultant: the preview, the remap, done.
        sign_in(page, consultant.username, PASSWORD)
        page.goto(url + "remap/")
        expect(page.get_by_role("heading", name="Remap preview (dry run)")).to_be_visible()
        run_next_job(page, "Remap Canvas users to DCID")
        act(page, "Finish the remap")

        # Step 6: the go-live date asked for at the top; go live; a sync now.
        expect_next(page, "Set the go-live date", "Your turn")
        next_card(page).get_by_label("Go-live date").fill(workflow.local_today(conversion).isoformat())
        next_card(page).get_by_role("button", name="Save").click()
        act(page, "Go live")
        expect_next(page, "Nightly sync to Canvas", "The scheduler")
        run_job(page, "Sync to Canvas")
        tab(page, "Syncs")
        expect(page.get_by_role("heading", name="Syncs to Canvas")).to_be_visible()
        expect(page.locator("table", has_text="Business date")).to_contain_text("Imported")
        screenshot(page, "walk-3-live")

        # Step 7 (optional): grade passback, in its own section.
        tab(page, "Grade passback")
        section = page.locator("#grade-passback")
        section.get_by_label("Gradebook").select_option("ptp")
        section.get_by_role("button", name="Save the gradebook").click()
        act(page, "Request grade passback", where=page.locator("#grade-passback"))
        expect(page.locator("#grade-passback")).to_contain_text("Waiting for the district")
        sign_out(page)
        sign_in(page, district_admin.username, PASSWORD)
        page.goto(url + "grade-passback/")
        act(
            page,
            "Confirm the plug-in is installed",
            "Installed on the PowerSchool server",
            where=page.locator("#grade-passback"),
        )
        sign_out(page)
        sign_in(page, consultant.username, PASSWORD)
        page.goto(url + "grade-passback/")
        act(page, "Enable grade passback", where=page.locator("#grade-passback"))
        page.goto(url)
        run_job(page, "Grade passback")
        tab(page, "Grade passback")
        expect(page.locator("#grade-passback table").first).to_contain_text("sec_")
        screenshot(page, "walk-4-grade-passback")

    conversion.refresh_from_db()
    assert conversion.state == ConversionState.LIVE and conversion.gpb_state == "enabled"
    assert SyncRun.objects.get(conversion=conversion).state == "imported"
    assert GradePassbackItem.objects.filter(conversion=conversion, status="accepted").count() >= 2
    actors = set(
        AuditEvent.objects.filter(conversion=conversion, to_state__in=ConversionState.values).values_list(
            "action", "actor__username"
        )
    )
    assert ("confirm_agent_setup", district_admin.username) in actors
    assert ("approve_mapping", district_admin.username) in actors
    assert ("go_live", consultant.username) in actors


def add_graded_assignments(canvas_sim) -> None:
    """A graded assignment flagged "post to SIS" in the first section course, so step 7 has a score to send."""
    from canvas.client import CanvasClient
    from tests.conversion.simulators import TOKEN

    with CanvasClient(canvas_sim.url, TOKEN) as client:
        for course in client.iter_courses("self"):
            students = [
                e.sis_user_id for e in client.iter_enrollments(course_id=course.id) if e.type == "StudentEnrollment"
            ]
            if (course.sis_course_id or "").startswith("sec_") and students:
                assignment = canvas_sim.add_assignment(
                    f"sis_course_id:{course.sis_course_id}",
                    name="Essay",
                    points_possible=10,
                    post_to_sis=True,
                    group="Homework",
                    due_at="2026-10-01T18:00:00Z",
                )
                canvas_sim.grade(assignment.id, f"sis_user_id:{students[0]}", score=8)
                return
    raise AssertionError("no section course with a student")
