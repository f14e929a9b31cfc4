"""Every page in a real browser, at a desktop and a phone width: nothing wider than the window, no raw
template syntax in the text, no serious or critical axe-core violations, and the keyboard reaches every
action (links, buttons, fields, disclosure summaries)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.utils import timezone

from conversion import jobs
from conversion.models import (
    Approval,
    ApprovalKind,
    ConversionState,
    GradePassbackItem,
    JobKind,
    MappingDiff,
    SyncRun,
)
from conversion.services import connection, mapping, pull
from sifclient.powerschool import DistrictSpec
from tests.browser.conftest import sign_in
from tests.conversion.conftest import PASSWORD, fill_step_one
from tests.conversion.simulators import simulated_district

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SPEC = DistrictSpec(students=60, schools=2, school_year=2027, seed=4)
WIDTHS = (1280, 390)
RAW = re.compile(r"\{\{|\}\}|\{%|%\}|\{#|#\}")
AXE = Axe()

# Every interactive element a keyboard user must be able to reach (visible ones only: a closed <details>
# hides its content until its summary is opened, itself by keyboard).
FOCUSABLE = (
    "a[href], button:not([disabled]), input:not([type=hidden]):not([disabled]), select:not([disabled]), "
    "textarea:not([disabled]), summary, [tabindex='0']"
)


def check_page(page, url: str, width: int) -> list[str]:
    """What is wrong with `url` at `width` px (empty: nothing)."""
    problems = []
    page.set_viewport_size({"width": width, "height": 900})
    response = page.goto(url)
    if response.status != 200:
        return [f"{url}: HTTP {response.status}"]
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 0:
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
                    && !(e.parentElement && e.parentElement.closest('.scroll')))
            .slice(0, 3).map(e => e.tagName + '.' + e.className + ' ' + (e.id || ''))""")
        problems.append(f"{url} at {width}px: {overflow}px wider than the window ({wide})")
    text = page.inner_text("body")
    if RAW.search(text):
        problems.append(f"{url}: raw template syntax {RAW.search(text).group(0)!r} in the text")
    results = AXE.run(page)
    for v in results.response["violations"]:
        if v["impact"] in ("serious", "critical"):
            problems.append(
                f"{url} at {width}px: axe {v['id']} ({v['impact']}): {[n['target'] for n in v['nodes'][:3]]}"
            )
    if width == WIDTHS[0]:
        problems += keyboard_problems(page, url)
    return problems


def keyboard_problems(page, url: str) -> list[str]:
    wanted = page.evaluate(
        """(selector) => {
        // A radio group is one tab stop (its checked radio, else its first); the arrow keys move inside it.
        const stop = (e) => {
            if (e.type !== 'radio' || !e.name) return true;
            const group = [...document.querySelectorAll(`input[type=radio][name="${e.name}"]`)];
            return e === (group.find(r => r.checked) || group[0]);
        };
        const all = [...document.querySelectorAll(selector)].filter(e => e.getClientRects().length > 0
            && getComputedStyle(e).visibility !== 'hidden' && stop(e));
        all.forEach((e, i) => e.dataset.kb = i);
        return all.length;
    }""",
        FOCUSABLE,
    )
    page.evaluate("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0)")
    page.locator("body").focus()
    reached = set()
    for _ in range(wanted + 15):
        page.keyboard.press("Tab")
        kb = page.evaluate("document.activeElement && document.activeElement.dataset.kb")
        if kb is not None:
            reached.add(int(kb))
        if len(reached) == wanted:
            break
    missed = sorted(set(range(wanted)) - reached)
    if missed:
        names = page.evaluate(
            """(ids) => ids.slice(0, 5).map(i => {
            const e = document.querySelector(`[data-kb="${i}"]`);
            return e.tagName + ' ' + (e.innerText || e.name || '').slice(0, 40);
        })""",
            missed,
        )
        return [f"{url}: the keyboard does not reach {len(missed)} of {wanted} actions: {names}"]
    return []


@pytest.fixture
def rich(conversion, consultant):
    """A live district with a bit of everything each section shows: a connection test, a pull, a mapping
    check the district approved, syncs (imported, skipped, held, failed), grade passback, an audit trail."""
    with simulated_district(conversion, SPEC):
        fill_step_one(conversion)
        for kind, runner in (
            (JobKind.TEST_CONNECTION, connection.run_test_connection),
            (JobKind.PULL, pull.run_pull),
            (JobKind.MAPPING, mapping.run_mapping),
        ):
            conversion.state = ConversionState.CONNECTION if kind != JobKind.MAPPING else ConversionState.MAPPING
            conversion.save()
            job, _ = jobs.start_job(conversion, kind, enqueue=False, user=consultant)
            jobs.run_job(job.pk, runner)
    diff = MappingDiff.objects.get(conversion=conversion)
    Approval.objects.create(
        conversion=conversion,
        kind=ApprovalKind.MAPPING,
        subject=f"mapping_diff:{diff.pk}",
        fingerprint=diff.fingerprint,
        approved_by=consultant,
    )
    conversion.state = ConversionState.LIVE
    conversion.live_since = timezone.now()
    conversion.go_live_date = dt.date(2027, 6, 1)
    conversion.gpb_state = "enabled"
    conversion.gradebook = "ptp"
    conversion.save()
    day = dt.date(2027, 6, 1)
    SyncRun.objects.create(
        conversion=conversion,
        trigger="nightly",
        business_date=day,
        state="imported",
        counts={"users": 12345, "enrollments": 67890},
        canvas_import_id=123456,
    )
    SyncRun.objects.create(
        conversion=conversion,
        trigger="nightly",
        business_date=day + dt.timedelta(days=1),
        state="skipped",
        counts={"users": 12345, "enrollments": 67890},
    )
    SyncRun.objects.create(
        conversion=conversion,
        trigger="nightly",
        business_date=day + dt.timedelta(days=2),
        state="held",
        held_reason="More than 10% of enrollments would disappear.",
        counts={"users": 12000, "enrollments": 50000},
        removed_enrollments=17890,
    )
    SyncRun.objects.create(conversion=conversion, trigger="manual", state="failed")
    for user_id, status in ((None, "accepted"), (501, "accepted"), (502, "refused")):
        GradePassbackItem.objects.create(
            conversion=conversion,
            canvas_course_id=77,
            sis_course_id="sec_1001",
            course_name="Algebra I",
            canvas_assignment_id=9,
            assignment_name="Essay",
            canvas_user_id=user_id,
            student_sis_id=str(user_id or ""),
            object_name="GradingAssignmentScore" if user_id else "GradingAssignment",
            status=status,
            reason="Score above the points possible" if status == "refused" else "",
        )
    return conversion


def test_every_page_fits_reads_and_is_reachable(page, rich, consultant, district_admin):
    base = f"/districts/{rich.district.slug}/{rich.school_year}/"
    sections = ["", "connection/", "pull/", "mapping/", "remap/", "syncs/", "grade-passback/", "diagnostics/", "audit/"]
    problems = []
    for width in WIDTHS:
        problems += check_page(page, "/accounts/login/", width)
    sign_in(page, consultant.username, PASSWORD)
    slug = rich.district.slug
    urls = [
        "/",
        "/notifications/",
        *(base + s for s in sections),
        base + "setup/",
        base + "mapping/rows/",
        base + "grade-passback/courses/77/",
        # main's pages: onboarding, a district's settings and admins, the legacy-import watch, the
        # password change and the alert settings
        "/districts/new/",
        f"/districts/{slug}/settings/",
        f"/districts/{slug}/admins/",
        base + "legacy-imports/",
        "/accounts/password/",
        "/notifications/settings/",
    ]
    for url in urls:
        for width in WIDTHS:
            problems += check_page(page, url, width)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, district_admin.username, PASSWORD)
    for url in ("/", base, base + "grade-passback/", "/accounts/password/", "/notifications/settings/"):
        for width in WIDTHS:
            problems += check_page(page, url, width)
    assert problems == [], "\n".join(problems)


def test_tabs_work_from_the_keyboard_and_keep_their_own_urls(page, conversion, consultant):
    sign_in(page, consultant.username, PASSWORD)
    base = f"/districts/{conversion.district.slug}/{conversion.school_year}/"
    page.goto(base)
    page.locator("#tab-audit").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{base}audit/")  # hx-push-url: the address is the section's own
    expect_focus = page.evaluate("document.activeElement && document.activeElement.id")
    assert expect_focus == "tab-audit"  # focus stays on the tab the user pressed
    assert page.locator("#tab-audit").get_attribute("aria-current") == "page"
    assert page.get_by_role("heading", name="Audit trail").is_visible()
    page.go_back()
    page.wait_for_url(f"**{base}")
    page.reload()
    assert page.locator("#tab-overview").get_attribute("aria-current") == "page"
