"""The portfolio's timeline (server-rendered SVG), its late and at-risk marks, its CSV, and the counts of
what needs a person today."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from conversion import workflow
from conversion.models import (
    Conversion,
    ConversionState,
    District,
    Job,
    JobKind,
    JobState,
    MappingDiff,
    Snapshot,
    SnapshotState,
    SyncRun,
)
from conversion.services import portfolio
from tests.conversion.conftest import DAY, fill_step_one

S = ConversionState


def make(name: str, state: str, **fields) -> Conversion:
    district = District.objects.create(name=name, slug=name.lower().replace(" ", "-"))
    return Conversion.objects.create(district=district, school_year=2027, state=state, **fields)


@pytest.fixture
def fleet(db):
    today = timezone.localdate()
    late_go_live = make("Late Golive", S.MAPPING, go_live_date=today - 2 * DAY)
    late_pause = make("Late Pause", S.PAUSE, pause_date=today - 3 * DAY)
    failed_sync = make("Failed Sync", S.LIVE, live_since=timezone.now() - 10 * DAY)
    SyncRun.objects.create(conversion=failed_sync, trigger="nightly", business_date=today, state="failed")
    missed = make("Missed Sync", S.LIVE, live_since=timezone.now() - 10 * DAY)
    run = SyncRun.objects.create(conversion=missed, trigger="nightly", business_date=today - 5 * DAY, state="imported")
    SyncRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - 5 * DAY)
    fine = make("Fine Live", S.LIVE, live_since=timezone.now() - 10 * DAY)
    SyncRun.objects.create(conversion=fine, trigger="nightly", business_date=today, state="imported")
    soon = make("Soon Golive", S.REMAPPING, go_live_date=today + 3 * DAY)
    waiting = fill_step_one(make("Waiting District", S.AGENT_SETUP))
    for field in ("agent_mode_pull", "agent_zone_ready"):
        setattr(waiting, field, False)
    waiting.save()
    return locals()


def levels(user) -> dict[str, tuple[str, list[str]]]:
    rows = portfolio.timeline_rows(portfolio.portfolio(user))
    return {r.district: (r.level, [f.text for f in r.flags]) for r in rows}


def test_late_and_at_risk_districts_are_marked(consultant, fleet):
    found = levels(consultant)
    assert found["Late Golive"][0] == "late" and "remap not done" in found["Late Golive"][1][0]
    assert found["Late Pause"][0] == "late" and "not paused" in found["Late Pause"][1][0]
    assert found["Failed Sync"] == ("late", ["Last nightly sync failed"])
    assert found["Missed Sync"] == ("late", ["Nightly sync missed"])
    assert found["Fine Live"] == ("", [])
    assert found["Soon Golive"][0] == "at-risk"


def test_the_timeline_is_an_svg_of_every_district_with_its_dates(client, consultant, fleet):
    client.force_login(consultant)
    html = client.get(reverse("portfolio")).content.decode()
    svg = html[html.index('<svg class="timeline-svg"') : html.index("</svg>", html.index('<svg class="timeline-svg"'))]
    for name in ("Late Golive", "Late Pause", "Failed Sync", "Missed Sync", "Fine Live", "Soon Golive"):
        assert name in svg
    assert svg.count('class="m-pause"') == 7 and svg.count('class="m-golive"') == 2
    assert 'class="m-sync sync-failed"' in svg and svg.count('class="trow late"') == 4
    assert "{{" not in svg and "{%" not in svg


def test_the_timeline_is_filtered_like_the_table(client, consultant, fleet):
    client.force_login(consultant)
    html = client.get(reverse("portfolio"), {"state": S.LIVE}, HTTP_HX_REQUEST="true").content.decode()
    svg = html[html.index('<svg class="timeline-svg"') :]
    assert "Fine Live" in svg and "Late Pause" not in svg
    assert f'href="/districts.csv?q=&amp;state={S.LIVE}"' in html


def test_the_csv_has_the_timelines_data(client, consultant, fleet):
    client.force_login(consultant)
    response = client.get(reverse("portfolio_csv"), {"q": "sync"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["district"] for r in rows} == {"Failed Sync", "Missed Sync"}
    failed = next(r for r in rows if r["district"] == "Failed Sync")
    assert failed["late_or_at_risk"] == "late" and failed["last_nightly_sync_state"] == "failed"
    assert failed["step"] == "6" and failed["last_nightly_sync"]


def test_counts_of_what_needs_a_person_today_are_the_users_own(client, consultant, fleet):
    client.force_login(consultant)
    html = client.get(reverse("portfolio")).content.decode()
    rows = portfolio.timeline_rows(portfolio.portfolio(consultant))
    mine = sum(1 for r in rows if r.next_actor == "consultant")
    assert mine == sum(1 for c in Conversion.objects.all() if workflow.next_step(c).actor == "consultant")
    assert f'<strong class="n">{mine}</strong> whose next action is yours' in html
    assert '<strong class="n late">4</strong> late' in html and '<strong class="n at-risk">1</strong> at risk' in html
    admin = fleet["waiting"].district.admins.create(username="waiting-admin", is_staff=False)
    client.force_login(admin)
    html = client.get(reverse("portfolio")).content.decode()
    assert '<strong class="n">1</strong> whose next action is yours' in html  # the checklist is theirs


def test_step_facts_for_many_agree_with_one_at_a_time(consultant, db):
    now = timezone.now()
    tested = fill_step_one(make("Tested", S.CONNECTION))
    Job.objects.create(conversion=tested, kind=JobKind.TEST_CONNECTION, state=JobState.FAILED, finished_at=now - DAY)
    Job.objects.create(
        conversion=tested,
        kind=JobKind.TEST_CONNECTION,
        state=JobState.SUCCEEDED,
        finished_at=now,
        detail={"registered": True, "ping": True, "zone": {"zone_id": "A", "ready": True}},
    )
    Snapshot.objects.create(conversion=tested, state=SnapshotState.COMPLETE, completed_at=now)
    fill_step_one(make("Untested", S.CONNECTION))
    for blocking in (0, 3):
        mapped = make(f"Mapped {blocking}", S.MAPPING)
        old = Snapshot.objects.create(conversion=mapped, state=SnapshotState.COMPLETE, completed_at=now - DAY)
        MappingDiff.objects.create(conversion=mapped, snapshot=old, blocking_count=0)
        new = Snapshot.objects.create(conversion=mapped, state=SnapshotState.COMPLETE, completed_at=now)
        MappingDiff.objects.create(conversion=mapped, snapshot=new, blocking_count=blocking)
    stale = make("Stale mapping", S.MAPPING)
    old = Snapshot.objects.create(conversion=stale, state=SnapshotState.COMPLETE, completed_at=now - DAY)
    MappingDiff.objects.create(conversion=stale, snapshot=old, blocking_count=0)
    Snapshot.objects.create(conversion=stale, state=SnapshotState.COMPLETE, completed_at=now)
    remapped = make("Remapped", S.REMAPPING)
    Job.objects.create(
        conversion=remapped, kind=JobKind.REMAP, state=JobState.SUCCEEDED, finished_at=now, detail={"unverified": 2}
    )
    make("Not remapped", S.REMAPPING)
    conversions = list(portfolio.portfolio(consultant))
    bulk = workflow.step_facts_for(conversions)

    def shown(step):
        return (step.actor, step.title, step.job, step.part, step.problems)

    seen = {c.district.name: shown(workflow.next_step(c, bulk[c.pk])) for c in conversions}
    assert seen == {c.district.name: shown(workflow.next_step(c)) for c in conversions}
    assert seen["Tested"][0] == "district" and seen["Untested"][2] == JobKind.TEST_CONNECTION
    assert seen["Mapped 0"][0] == "district" and seen["Mapped 3"][1] == "Resolve the conflicting records"
    assert seen["Stale mapping"][1] == "Run the mapping check"
    assert seen["Remapped"][4] == ["2 Canvas user(s) still lack their DCID."]


def test_a_district_admins_csv_holds_only_their_districts(client, fleet, district_admin, conversion):
    client.force_login(district_admin)
    body = b"".join(client.get(reverse("portfolio_csv")).streaming_content).decode()
    assert "Alpha Unified" in body and "Late Golive" not in body and "Fine Live" not in body


def test_the_csv_cannot_start_a_formula_in_a_spreadsheet(client, consultant, db):
    """The portfolio CSV goes through conversion.spreadsheet.SafeWriter, like every CSV people download."""
    district = District.objects.create(name="=HYPERLINK(1)", slug="formula")
    Conversion.objects.create(district=district, school_year=2027, state=S.CONNECTION)
    client.force_login(consultant)
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get(reverse("portfolio_csv")).streaming_content).decode())))
    assert [r["district"] for r in rows] == ["'=HYPERLINK(1)"]
