"""The permission matrix over every URL: consultant, own-district admin, other-district admin, anonymous.

The matrix is checked against the URLconf, so a new URL without a row here fails the suite.
"""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import get_resolver, reverse
from django.utils import timezone

from conversion.models import (
    Approval,
    ApprovalKind,
    Artifact,
    GradePassbackItem,
    Job,
    JobKind,
    MappingDiff,
    MappingRow,
    Snapshot,
    SnapshotState,
    SyncRun,
    SyncState,
)
from tests.conversion.conftest import PASSWORD

# name -> (method, kwargs builder, expected status for: consultant, own admin, other admin)
# None in kwargs means "this URL takes the district's slug and year".
OK, REDIRECT, NOT_FOUND, FORBIDDEN, REFUSED_BY_WORKFLOW = 200, 302, 404, 403, "refused"
INVALID = 422


def matrix(conversion, job, data):
    d = {"slug": conversion.district.slug, "year": conversion.school_year}
    return {
        "mapping_rows": ("get", d, (OK, OK, NOT_FOUND)),
        "mapping_csv": ("get", d, (OK, OK, NOT_FOUND)),
        "remap_preview_csv": ("get", d, (OK, OK, NOT_FOUND)),
        "artifact": ("get", {**d, "artifact_id": data["artifact"].pk}, (OK, OK, NOT_FOUND)),
        "release_sync": ("post", {**d, "run_id": data["held_run"].pk}, (REDIRECT, REDIRECT, NOT_FOUND)),
        "remaster_sync": ("post", d, (REDIRECT, REDIRECT, NOT_FOUND)),  # refused in the service for the admin
        "undo_sync": ("post", {**d, "run_id": data["held_run"].pk}, (REDIRECT, REDIRECT, NOT_FOUND)),  # likewise
        "sync_thresholds": ("post", d, (REDIRECT, REDIRECT, NOT_FOUND)),  # likewise: consultants only, audited
        "setup_aids": ("get", d, (OK, OK, NOT_FOUND)),
        "setup_mappings": ("get", d, (OK, OK, NOT_FOUND)),
        "setup_ticket": ("get", d, (OK, OK, NOT_FOUND)),
        "setup_schools": ("post", d, (REDIRECT, REDIRECT, NOT_FOUND)),  # the district's own choice, audited
        "gpb_course": ("get", {**d, "course_id": 1}, (OK, OK, NOT_FOUND)),
        "gpb_course_report": ("get", {**d, "course_id": 1}, (OK, OK, NOT_FOUND)),
        "gpb_course_csv": ("get", {**d, "course_id": 1}, (OK, OK, NOT_FOUND)),
        # Consultant and the district's admin may map categories (audited); an empty post is refused with a note.
        "gpb_category_override": ("post", {**d, "course_id": 1}, (REDIRECT, REDIRECT, NOT_FOUND)),
        "notifications": ("get", {}, (OK, OK, OK)),  # each user's own notes
        "notifications_read": ("post", {}, (REDIRECT, REDIRECT, REDIRECT)),  # marks the poster's own notes only
        "password_change": ("get", {}, (OK, OK, OK)),  # every signed-in user's own password
        "password_change_done": ("get", {}, (OK, OK, OK)),
        "portfolio": ("get", {}, (OK, OK, OK)),  # everyone signed in has a portfolio (their own districts)
        "portfolio_csv": ("get", {}, (OK, OK, OK)),  # the same rows as the portfolio, as CSV
        "district": ("get", {"slug": d["slug"]}, (OK, OK, NOT_FOUND)),
        "district_year": ("get", d, (OK, OK, NOT_FOUND)),
        "district_section": ("get", {**d, "section": "syncs"}, (OK, OK, NOT_FOUND)),
        "perform_action": ("post", {**d, "name": "go_live"}, (REDIRECT, REDIRECT, NOT_FOUND)),
        "edit_part": ("post", {**d, "part": "zis"}, (REDIRECT, FORBIDDEN, NOT_FOUND)),
        "hold_sync": ("post", d, (REDIRECT, REDIRECT, NOT_FOUND)),
        "start_job": ("post", {**d, "kind": JobKind.TEST_CONNECTION}, (REDIRECT, REDIRECT, NOT_FOUND)),
        "job": ("get", {**d, "job_id": job.pk}, (OK, OK, NOT_FOUND)),
        # Onboarding and district admins: consultants only (an empty post is a form error, 422).
        "district_new": ("get", {}, (OK, FORBIDDEN, FORBIDDEN)),
        "district_settings": ("get", {"slug": d["slug"]}, (OK, FORBIDDEN, NOT_FOUND)),
        "district_settings_save": ("post", {"slug": d["slug"]}, (INVALID, FORBIDDEN, NOT_FOUND)),
        "district_canvas_save": ("post", {"slug": d["slug"]}, (INVALID, FORBIDDEN, NOT_FOUND)),
        "district_canvas_check": ("post", {"slug": d["slug"]}, (REDIRECT, FORBIDDEN, NOT_FOUND)),
        "district_admins": ("get", {"slug": d["slug"]}, (OK, FORBIDDEN, NOT_FOUND)),
        "district_admins_invite": ("post", {"slug": d["slug"]}, (INVALID, FORBIDDEN, NOT_FOUND)),
        "district_admins_remove": ("post", {"slug": d["slug"], "user_id": 999_999}, (NOT_FOUND, FORBIDDEN, NOT_FOUND)),
        "alert_settings": ("get", {}, (OK, OK, OK)),  # each user's own choice
        "legacy_imports": ("get", d, (OK, OK, NOT_FOUND)),
        "legacy_imports_check": ("post", d, (REDIRECT, FORBIDDEN, NOT_FOUND)),
        "roster_policy": ("post", d, (REDIRECT, FORBIDDEN, NOT_FOUND)),
        "rollover": ("post", d, (REDIRECT, FORBIDDEN, NOT_FOUND)),  # refused in the service unless live
        "cancel_job": ("post", {**d, "job_id": job.pk}, (REDIRECT, FORBIDDEN, NOT_FOUND)),  # consultants only
    }


PUBLIC = {"login", "accept_invitation"}  # reachable without signing in (an invitation link: its token decides)
NOT_OURS = {"logout"}  # Django's own views, checked separately


def our_url_names() -> set[str]:
    return {p.name for p in get_resolver().url_patterns if getattr(p, "name", None)}


@pytest.fixture
def job(conversion):
    return Job.objects.create(conversion=conversion, kind=JobKind.PULL)


@pytest.fixture
def data(conversion, job, consultant):
    """One of everything the step-data URLs show: a mapping diff (approved), a file, a held sync."""
    snapshot = Snapshot.objects.create(conversion=conversion, state=SnapshotState.COMPLETE, completed_at=timezone.now())
    diff = MappingDiff.objects.create(conversion=conversion, snapshot=snapshot)
    MappingRow.objects.create(diff=diff, kind="user", status="matched", key="100001", dcid="5", canvas_value="100001")
    Approval.objects.create(
        conversion=conversion, kind=ApprovalKind.MAPPING, subject=f"mapping_diff:{diff.pk}", approved_by=consultant
    )
    artifact = Artifact.objects.create(conversion=conversion, job=job, kind="remap_file", name="x.csv", content=b"a,b")
    held_run = SyncRun.objects.create(conversion=conversion, job=job, trigger="manual", state=SyncState.HELD)
    GradePassbackItem.objects.create(
        conversion=conversion,
        canvas_course_id=1,
        canvas_assignment_id=7,
        object_name="GradingAssignment",
        status="accepted",
    )
    return {"artifact": artifact, "held_run": held_run}


def test_every_url_is_in_the_matrix(conversion, job, data):
    assert our_url_names() - PUBLIC - NOT_OURS == set(matrix(conversion, job, data))


@pytest.mark.parametrize("persona", ["consultant", "own_admin", "other_admin"])
def test_permission_matrix(persona, conversion, job, data, consultant, district_admin, other_admin, other_conversion):
    user = {"consultant": consultant, "own_admin": district_admin, "other_admin": other_admin}[persona]
    column = ["consultant", "own_admin", "other_admin"].index(persona)
    client = Client()
    client.force_login(user)
    for name, (method, kwargs, expected) in matrix(conversion, job, data).items():
        response = getattr(client, method)(reverse(name, kwargs=kwargs))
        assert response.status_code == expected[column], f"{persona} {method.upper()} {name}"


def test_anonymous_is_sent_to_sign_in_everywhere(conversion, job, data, client):
    for name, (method, kwargs, _) in matrix(conversion, job, data).items():
        url = reverse(name, kwargs=kwargs)
        response = getattr(client, method)(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name
    assert client.get(reverse("admin:index")).status_code == 302


def test_district_admin_actions_do_not_change_state(conversion, district_admin, client):
    """A district admin posting a consultant's action gets the workflow's refusal, and nothing moves."""
    client.force_login(district_admin)
    d = {"slug": conversion.district.slug, "year": conversion.school_year}
    response = client.post(reverse("start_job", kwargs={**d, "kind": JobKind.PULL}), follow=True)
    assert "Only an implementation consultant can start jobs" in response.content.decode()
    assert not Job.objects.filter(kind=JobKind.PULL).exists()


def test_other_admins_portfolio_does_not_list_this_district(conversion, other_admin, other_conversion, client):
    client.force_login(other_admin)
    html = client.get(reverse("portfolio")).content.decode()
    assert "Beta Schools" in html and "Alpha Unified" not in html


def test_real_sign_in_with_password(conversion, district_admin, client):
    response = client.post(reverse("login"), {"username": "alpha-admin", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("district", kwargs={"slug": "alpha"})).status_code == 200
    wrong = Client().post(reverse("login"), {"username": "alpha-admin", "password": "nope"})
    assert "didn't match" in wrong.content.decode()


def test_posts_need_a_csrf_token(conversion, consultant):
    client = Client(enforce_csrf_checks=True)
    client.force_login(consultant)
    d = {"slug": conversion.district.slug, "year": conversion.school_year}
    assert client.post(reverse("perform_action", kwargs={**d, "name": "go_live"})).status_code == 403
