"""Done-when of onboarding: a consultant onboards a district from nothing in chromium (district, Canvas
token checked against the Canvas simulator, an invited admin who sets a password and signs in) and runs
it to a connection test against the ZIS simulator, with a real Celery worker."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from canvas.simulator import CanvasSimulator
from conversion.models import AuditEvent, District, Hosting
from sifclient.powerschool import DistrictSpec
from sifclient.zis import ZisSimulator
from tests.browser.conftest import sign_in
from tests.browser.test_district_page import screenshot
from tests.browser.test_walkthrough import run_job, sign_out, tab
from tests.conversion.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SPEC = DistrictSpec(students=60, schools=1, school_year=2027, seed=5)
TOKEN = "cedar-canvas-token-0a1b2c3d"
ADMIN_EMAIL = "it-director@cedar.k12.example.org"
ADMIN_PASSWORD = "Cedar-valley-Pass-2027"


def test_onboard_a_district_from_nothing(page, celery_worker, consultant):
    mail.outbox = []
    with (
        ZisSimulator(SPEC, zone_id="CEDAR") as zis,
        CanvasSimulator(token=TOKEN, root_account_name="Cedar Valley Schools (Canvas)") as canvas,
    ):
        sign_in(page, consultant.username, PASSWORD)
        page.get_by_role("link", name="Add a district").click()
        page.get_by_label("Name", exact=True).fill("Cedar Valley Schools")
        page.get_by_label("PowerSchool URL").fill("https://cedarvalley.powerschool.com")
        page.get_by_label("Time zone").select_option("America/Chicago")
        page.get_by_label("School year (the year it ends)").fill("2027")
        page.get_by_label("Canvas URL").fill(canvas.url)
        page.get_by_label("Canvas root account id").fill(str(canvas.root_account_id))
        page.get_by_label("Canvas API token").fill(TOKEN)
        page.get_by_label("ZIS URL").fill(zis.base_url + "/zones")
        page.get_by_label("Zone ID").fill("CEDAR")
        page.get_by_label("Zone's SIF version").select_option("2.3")
        page.get_by_label("ZIS user name").fill("cedar-agent")
        page.get_by_label("ZIS password").fill("zis-pass-cedar-1")
        page.get_by_role("button", name="Add the district").click()

        # The token was checked live: the account's name and every permission held; the token not shown.
        expect(page.locator(".account-name")).to_have_text("Cedar Valley Schools (Canvas)")
        expect(page.locator("#canvas-check .badge.ok")).to_have_count(4)
        expect(page.locator(".token-masked")).to_have_text("set")
        assert TOKEN not in page.content()
        screenshot(page, "onboard-1-canvas-checked")
        district = District.objects.get(name="Cedar Valley Schools")
        assert district.conversions.get().hosting == Hosting.POWERSCHOOL
        assert district.conversions.get().sif_version == "2.3"

        # The district's admin, invited by e-mail.
        page.get_by_role("link", name="District admins").click()
        page.get_by_label("E-mail address").fill(ADMIN_EMAIL)
        page.get_by_role("button", name="Send the invitation").click()
        expect(page.locator(".messages")).to_contain_text(f"Invitation sent to {ADMIN_EMAIL}")
        expect(page.locator("#admins")).to_contain_text("invited")
        invitation, waiting = mail.outbox  # the invitation, and the alert that step 1 now waits on them
        assert invitation.to == waiting.to == [ADMIN_EMAIL]
        assert "waits for you: Confirm the SIF agent is set up" in waiting.body
        link = re.search(r"https?://\S+/invitations/\S+/", invitation.body).group(0)
        sign_out(page)

        page.goto(link)
        page.get_by_label("New password", exact=True).fill(ADMIN_PASSWORD)
        page.get_by_label("New password confirmation").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Set my password").click()
        expect(page.locator(".messages")).to_contain_text("Your password is set")
        expect(page.locator("#portfolio-table")).to_contain_text("Cedar Valley Schools")
        sign_out(page)
        page.goto(link)
        expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
        sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        expect(page.locator("#portfolio-table")).to_contain_text("Cedar Valley Schools")
        sign_out(page)

        # Back as the consultant: the new district runs its connection test against the ZIS.
        sign_in(page, consultant.username, PASSWORD)
        page.get_by_role("link", name="Cedar Valley Schools").first.click()
        run_job(page, "Connection test")
        tab(page, "Connection")  # the district page's Connection section shows the answer (issue 17)
        expect(page.get_by_role("heading", name="What the ZIS answered")).to_be_visible()
        screenshot(page, "onboard-2-connection-test")
        actions = set(AuditEvent.objects.filter(district=district).values_list("action", flat=True))
        assert {"district_created", "edit:canvas", "canvas_check", "admin_invited", "invitation_accepted"} <= actions
