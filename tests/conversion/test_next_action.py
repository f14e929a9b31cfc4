"""The district page's one next action (workflow.next_step): who takes it, what it needs, shown at the top;
going back behind a confirmation; each step's material in its own section."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from conversion import workflow
from conversion.models import ConversionState, Job, JobKind, JobState, Snapshot, SnapshotState
from tests.conversion.conftest import DAY, fill_step_one

S = ConversionState
PAGE = "/districts/alpha/2027/"


def next_card(html: str) -> str:
    return html[html.index('id="next"') : html.index('id="tabbed"')]


def test_step_one_without_zis_details_is_the_consultants_turn_with_the_form_inline(
    client, consultant, district_admin, conversion
):
    step = workflow.next_step(conversion)
    assert (step.actor, step.part) == ("consultant", "zis")
    assert workflow.waiting_on_district(conversion) == []
    client.force_login(consultant)
    card = next_card(client.get(PAGE).content.decode())
    assert "Your turn" in card and "Enter the ZIS URL and Zone ID" in card
    assert 'name="zis-zis_url"' in card  # the form it needs, at the top
    client.force_login(district_admin)
    card = next_card(client.get(PAGE).content.decode())
    assert "Waiting for the district" not in card and "The implementation consultant" in card


def test_step_one_with_zis_details_waits_for_the_district_whose_checklist_is_at_the_top(
    client, district_admin, consultant, conversion
):
    conversion.zis_url, conversion.zone_id = "http://zis.example/zones", "ALPHA"
    conversion.save()
    assert workflow.next_step(conversion).actor == "district"
    assert [t.name for t in workflow.waiting_on_district(conversion)] == ["confirm_agent_setup"]
    client.force_login(district_admin)
    card = next_card(client.get(PAGE).content.decode())
    assert "Your turn" in card and 'name="checklist-agent_mode_pull"' in card
    assert re.search(r'<button type="submit" class="primary" disabled[^>]*>Confirm the SIF agent is set up', card)
    client.force_login(consultant)
    assert "Waiting for the district" in next_card(client.get(PAGE).content.decode())


def connection_step(conversion, **detail):
    fill_step_one(conversion)
    conversion.state = S.CONNECTION
    conversion.save()
    zone = {"zone_id": "ALPHA", "ready": True, "nodes": [], "missing_providers": [], **detail}
    return Job.objects.create(
        conversion=conversion,
        kind=JobKind.TEST_CONNECTION,
        state=JobState.SUCCEEDED,
        finished_at=timezone.now(),
        detail={"registered": True, "ping": True, "zone": zone},
    )


def test_before_a_pull_step_two_is_not_the_districts_turn(conversion):
    connection_step(conversion)
    step = workflow.next_step(conversion)
    assert (step.actor, step.job) == ("consultant", JobKind.PULL)
    assert workflow.waiting_on_district(conversion) == []
    assert [s.status for s in workflow.step_overview(conversion)][1] == "current"
    Snapshot.objects.create(conversion=conversion, state=SnapshotState.COMPLETE, completed_at=timezone.now())
    assert workflow.next_step(conversion).actor == "district"
    assert [s.status for s in workflow.step_overview(conversion)][1] == "waiting"


@pytest.mark.parametrize(
    "zone, verdict, finding",
    [
        ({"missing_providers": ["StudentSectionEnrollment"]}, "warned", "No agent provides StudentSectionEnrollment."),
        (
            {"nodes": [{"source_id": "PS", "name": "PowerSchool", "type": "Agent", "mode": "Push"}]},
            "warned",
            "PowerSchool is in Push mode",
        ),
        ({"ready": False}, "failed", "Zone ALPHA is not ready."),
    ],
)
def test_a_connection_test_that_found_a_blocker_is_never_green(client, consultant, conversion, zone, verdict, finding):
    job = connection_step(conversion, **zone)
    found, findings = workflow.connection_findings(job.detail)
    assert found == verdict and any(finding in f for f in findings)
    assert workflow.next_step(conversion).job == JobKind.TEST_CONNECTION  # test again, not pull on
    client.force_login(consultant)
    html = client.get(PAGE + "connection/").content.decode()
    assert f"verdict-{verdict}" in html and "verdict-passed" not in html and finding in html
    overview = client.get(PAGE).content.decode()
    item = overview[overview.index(f'id="job-{job.pk}"') :]
    assert "badge job-succeeded" not in item[: item.index("</li>")]


def test_a_clean_connection_test_passes(client, consultant, conversion):
    connection_step(conversion)
    client.force_login(consultant)
    assert "verdict-passed" in client.get(PAGE + "connection/").content.decode()


def test_a_future_pause_date_is_the_schedulers_and_says_when(client, consultant, conversion):
    fill_step_one(conversion)
    conversion.state = S.PAUSE
    conversion.pause_date = workflow.local_today(conversion) + 3 * DAY
    conversion.save()
    step = workflow.next_step(conversion)
    assert step.actor == "scheduler" and step.part == "pause_date"
    when = step.when.astimezone(ZoneInfo("America/Denver"))
    assert (when.hour, when.minute) == (0, 5) and when.date() >= conversion.pause_date - DAY
    client.force_login(consultant)
    card = next_card(client.get(PAGE).content.decode())
    assert "The scheduler" in card and 'name="pause_date-pause_date"' in card
    assert "Waiting for the district" not in card


def test_go_live_without_a_date_asks_for_the_date_at_the_top(client, consultant, conversion):
    conversion.state = S.GO_LIVE
    conversion.save()
    step = workflow.next_step(conversion)
    assert (step.actor, step.part) == ("consultant", "go_live_date")
    client.force_login(consultant)
    card = next_card(client.get(PAGE).content.decode())
    assert 'name="go_live_date-go_live_date"' in card


def test_once_live_nothing_asks_for_what_the_step_no_longer_offers(client, consultant, conversion):
    conversion.state = S.LIVE
    conversion.save()
    assert workflow.next_step(conversion).actor == "scheduler"
    client.force_login(consultant)
    for section in ("", "connection/", "pull/", "mapping/", "remap/", "syncs/", "grade-passback/"):
        html = client.get(PAGE + section).content.decode()
        for stale in (
            "Go-live date</summary>",
            "Pause date</summary>",
            "Return to",
            "Save the checklist",
            "Confirm the SIF agent",
            "Verify the pulled data",
        ):
            assert stale not in html, (section, stale)
    conversion.nightly_sync_paused = True
    conversion.save()
    step = workflow.next_step(conversion)
    assert step.actor == "consultant" and "Resume" in step.title
    assert "Resume the nightly sync</button>" in next_card(client.get(PAGE).content.decode())


def test_going_back_sits_in_a_menu_and_needs_a_reason_and_a_confirmation(client, consultant, conversion):
    conversion.state = S.MAPPING
    conversion.save()
    client.force_login(consultant)
    html = client.get(PAGE).content.decode()
    menu = html[html.index('class="backmenu"') :]
    assert "Return to" not in html[: html.index('class="backmenu"')]
    assert 'name="confirm"' in menu and "required" in menu
    url = reverse("perform_action", args=("alpha", 2027, "back_to_pause"))
    client.post(url, {"reason": "wrong pause date"})
    conversion.refresh_from_db()
    assert conversion.state == S.MAPPING
    client.post(url, {"reason": "wrong pause date", "confirm": "yes"})
    conversion.refresh_from_db()
    assert conversion.state == S.PAUSE


SECTIONS = ["connection", "pull", "mapping", "remap", "syncs", "grade-passback", "diagnostics", "audit"]


def test_every_section_has_its_own_url_and_tab(client, consultant, conversion):
    client.force_login(consultant)
    for section in SECTIONS:
        response = client.get(PAGE + section + "/")
        html = response.content.decode()
        assert response.status_code == 200
        assert f'href="{PAGE}{section}/" hx-get="{PAGE}{section}/"' in html
        assert re.search(rf'href="{PAGE}{section}/"[^>]*hx-push-url="true" aria-current="page"', html)
        assert 'id="next"' in html  # the next action stays at the top of every section
    assert client.get(PAGE + "nothing/").status_code == 404


def test_a_form_posted_from_a_section_returns_to_it(client, consultant, conversion):
    client.force_login(consultant)
    response = client.post(
        reverse("edit_part", args=("alpha", 2027, "gradebook")),
        {"gradebook-gradebook": "ptp", "section": "grade-passback"},
    )
    assert response.status_code == 302 and response["Location"] == PAGE + "grade-passback/"


def test_the_diagnostics_tab_counts_what_the_data_shows(client, consultant, conversion):
    from conversion.models import Diagnostic

    now = timezone.now()
    for code in ("push_mode", "zone_not_ready"):
        Diagnostic.objects.create(
            conversion=conversion,
            code=code,
            severity="error",
            title=code,
            advice="Fix it.",
            first_seen=now,
            last_seen=now,
        )
    Diagnostic.objects.create(
        conversion=conversion,
        code="smp_on",
        severity="warning",
        title="old",
        advice="-",
        first_seen=now,
        last_seen=now,
        cleared_at=now,
    )
    client.force_login(consultant)
    html = client.get(PAGE).content.decode()
    assert re.search(r'>Diagnostics <span class="badge warn">2</span></a>', html)
