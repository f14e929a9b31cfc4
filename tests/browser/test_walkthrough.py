"""The whole conversion in a real browser: a consultant and the district's admin take a district from
ZIS set-up to a live nightly sync, each doing only what their role allows, with a real Celery worker."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sifclient.powerschool import DistrictSpec

from conversion import workflow
from conversion.models import AuditEvent, ConversionState, SyncRun
from tests.browser.conftest import sign_in
from tests.browser.test_district_page import screenshot
from tests.conversion.conftest import PASSWORD
from tests.conversion.simulators import simulated_district

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SPEC = DistrictSpec(students=200, schools=2, school_year=2027, seed=9)


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/accounts/login/")


def open_part(page, summary: str):
    part = page.locator("details.editpart", has=page.locator("summary", has_text=summary))
    part.locator("summary").click()
    return part


def run_job(page, label: str) -> None:
    page.get_by_role("button", name=label, exact=True).click()
    first = page.locator("#job-list li.job").first
    expect(first).to_contain_text(label if label != "Pull from the zone" else "Pull")
    expect(first.locator(".job-head .badge")).to_have_text("Done", timeout=120_000)
    page.wait_for_timeout(500)  # the page refreshes itself once the job is done
    page.reload()


def act(page, button: str, note: str = "") -> None:
    form = page.locator("form.action", has=page.get_by_role("button", name=button))
    if note:
        form.locator("textarea").fill(note)
    form.get_by_role("button", name=button).click()
    expect(page.locator(".messages")).to_contain_text(f"Done: {button}")


def test_walkthrough(page, celery_worker, conversion, consultant, district_admin):
    with simulated_district(conversion, SPEC) as (zis, canvas_sim):
        url = f"/districts/{conversion.district.slug}/{conversion.school_year}/"
        zis_url, zone = conversion.zis_url, conversion.zone_id
        conversion.zis_url = conversion.zone_id = ""
        conversion.save()

        # Step 1, consultant: the ZIS details.
        sign_in(page, consultant.username, PASSWORD)
        page.goto(url)
        part = open_part(page, "ZIS information")
        part.get_by_label("ZIS URL").fill(zis_url)
        part.get_by_label("Zone ID").fill(zone)
        part.get_by_label("ZIS password").fill("zis-secret-password")
        part.get_by_role("button", name="Save").click()
        expect(page.locator(".messages")).to_contain_text("Saved.")
        assert "zis-secret-password" not in page.content()
        run_job(page, "Connection test")
        expect(page.get_by_role("heading", name="What the ZIS answered")).to_be_visible()
        sign_out(page)

        # Step 1, district admin: the agent checklist, then the confirmation.
        sign_in(page, district_admin.username, PASSWORD)
        page.goto(url)
        expect(page.get_by_role("button", name="Confirm the SIF agent is set up")).to_be_disabled()
        part = open_part(page, "SIF agent settings checklist")
        for checkbox in part.get_by_role("checkbox").all():
            checkbox.check()
        part.get_by_role("button", name="Save").click()
        act(page, "Confirm the SIF agent is set up", "Agent restarted; mappings still in agent.cfg")
        expect(page.get_by_role("button", name="Pull from the zone")).to_have_count(0)  # admins start no jobs
        sign_out(page)

        # Step 2, consultant: pull; then the admin verifies.
        sign_in(page, consultant.username, PASSWORD)
        page.goto(url)
        run_job(page, "Pull from the zone")
        expect(page.locator("table", has_text="Records per object")).to_contain_text("StudentPersonal")
        screenshot(page, "walk-1-pulled")
        sign_out(page)
        sign_in(page, district_admin.username, PASSWORD)
        page.goto(url)
        act(page, "Verify the pulled data", "Schools and counts match PowerSchool")
        sign_out(page)

        # Step 3, consultant: a custom pause date of today, then the pause.
        sign_in(page, consultant.username, PASSWORD)
        page.goto(url)
        part = open_part(page, "Pause date")
        part.get_by_label("Pause date").fill(workflow.local_today(conversion).isoformat())
        part.get_by_role("button", name="Save").click()
        act(page, "Pause the current Canvas sync")

        # Step 4: the mapping check; the admin approves it.
        run_job(page, "Mapping check against Canvas")
        expect(page.locator("#mapping")).to_contain_text("Nothing blocking")
        screenshot(page, "walk-2-mapping")
        sign_out(page)
        sign_in(page, district_admin.username, PASSWORD)
        page.goto(url)
        act(page, "Approve the mapping", "Checked the only-in-Canvas users: they left")
        sign_out(page)

        # Step 5, consultant: the preview, the remap, done.
        sign_in(page, consultant.username, PASSWORD)
        page.goto(url)
        expect(page.get_by_role("heading", name="Remap preview (dry run)")).to_be_visible()
        run_job(page, "Remap Canvas users to DCID")
        act(page, "Finish the remap")

        # Step 6: go-live today, then a sync now.
        part = open_part(page, "Go-live date")
        part.get_by_label("Go-live date").fill(workflow.local_today(conversion).isoformat())
        part.get_by_role("button", name="Save").click()
        act(page, "Go live")
        run_job(page, "Sync to Canvas")
        expect(page.get_by_role("heading", name="Syncs to Canvas")).to_be_visible()
        expect(page.locator("table", has_text="Business date")).to_contain_text("Imported")
        screenshot(page, "walk-3-live")

    conversion.refresh_from_db()
    assert conversion.state == ConversionState.LIVE
    assert SyncRun.objects.get(conversion=conversion).state == "imported"
    actors = set(AuditEvent.objects.filter(conversion=conversion, to_state__in=ConversionState.values)
                 .values_list("action", "actor__username"))
    assert ("confirm_agent_setup", district_admin.username) in actors
    assert ("approve_mapping", district_admin.username) in actors
    assert ("go_live", consultant.username) in actors
