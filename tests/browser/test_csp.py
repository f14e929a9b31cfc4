"""In a real browser, with the Content-Security-Policy on: no page reports a violation, htmx and the page
script run, and the support-ticket copy button (once an inline script) still works."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.conversion.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_pages_run_under_the_policy_without_violations(page, conversion, consultant):
    conversion.district.powerschool_url = "https://alpha.powerschool.com"  # hosted: the ticket and its copy button
    conversion.district.save()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, consultant.username, PASSWORD)
    d = f"/districts/{conversion.district.slug}/{conversion.school_year}"
    sections = [
        f"{d}/{s}/"
        for s in ("connection", "pull", "mapping", "remap", "syncs", "grade-passback", "diagnostics", "audit")
    ]  # the district page's sections (issue 17)
    for url in (
        "/",
        f"{d}/",
        *sections,
        f"{d}/setup/",
        "/notifications/",
        "/accounts/password/",
        "/admin/",
        f"/admin/conversion/district/{conversion.district.pk}/change/",
    ):
        response = page.goto(url)
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"]
        if not url.startswith("/admin/"):
            assert page.evaluate("typeof window.htmx") == "object", url
    page.goto(f"{d}/setup/")
    page.get_by_role("button", name="Copy the ticket text").click()
    expect(page.locator("[data-copy-result]")).to_have_text("Copied.")
    assert violations == []
