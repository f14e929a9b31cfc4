"""Consultants hear of every district approval, on their portfolio, and mark the notes read."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversion import workflow
from conversion.models import GpbState, Notification
from tests.conversion.conftest import fill_step_one, make_user


@pytest.fixture
def consultants(consultant):
    second = make_user("ic2", staff=True)
    gone = make_user("ic-gone", staff=True)
    gone.is_active = False
    gone.save()
    return [consultant, second]


def test_an_approval_notifies_every_active_consultant(conversion, district_admin, consultants, other_admin):
    fill_step_one(conversion)
    workflow.perform(conversion, "confirm_agent_setup", user=district_admin, reason="Agent restarted, all green")
    notes = Notification.objects.order_by("recipient__username")
    assert [n.recipient.username for n in notes] == ["ic", "ic2"]
    assert all(n.conversion == conversion and n.read_at is None for n in notes)
    assert "Alpha Unified" in notes[0].text and "SIF agent set up" in notes[0].text and "alpha-admin" in notes[0].text
    assert "Agent restarted" in notes[0].text


def test_the_plugin_approval_notifies_too_and_other_moves_do_not(conversion, district_admin, consultant):
    fill_step_one(conversion)
    conversion.gpb_state = GpbState.PLUGIN_PENDING
    conversion.gradebook = "ptp"
    conversion.save()
    workflow.perform(conversion, "confirm_plugin_installed", user=district_admin)
    approvals = Notification.objects.filter(kind="approval")  # the admin's own "waits for you" notes aside
    assert [n.text.split(": ", 1)[1] for n in approvals] == ["Grade passback plug-in installed, by alpha-admin."]
    workflow.perform(conversion, "disable_gpb", user=consultant, reason="Not this year")
    assert approvals.count() == 1


def test_the_portfolio_shows_unread_notes_and_marks_them_read(conversion, district_admin, consultants, client):
    fill_step_one(conversion)
    workflow.perform(conversion, "confirm_agent_setup", user=district_admin)
    consultant, second = consultants
    client.force_login(consultant)
    html = client.get(reverse("portfolio")).content.decode()
    assert "1 unread" in html and "SIF agent set up" in html
    mine = Notification.objects.get(recipient=consultant)
    theirs = Notification.objects.get(recipient=second)
    # Posting someone else's note id changes nothing.
    client.post(reverse("notifications_read"), {"notification": theirs.pk})
    theirs.refresh_from_db()
    assert theirs.read_at is None
    response = client.post(reverse("notifications_read"), {"notification": mine.pk, "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    mine.refresh_from_db()
    assert mine.read_at is not None
    assert "No unread notifications" in client.get(reverse("portfolio")).content.decode()
    assert "Read" in client.get(reverse("notifications")).content.decode()


def test_mark_all_read_with_htmx_returns_the_partial(conversion, district_admin, consultant, client):
    fill_step_one(conversion)
    workflow.perform(conversion, "confirm_agent_setup", user=district_admin)
    client.force_login(consultant)
    response = client.post(reverse("notifications_read"), {"next": "https://evil.example/"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="notifications"' in response.content.decode()
    assert not Notification.objects.filter(read_at__isnull=True).exists()
    redirect = client.post(reverse("notifications_read"), {"next": "https://evil.example/"})
    assert redirect["Location"] == reverse("portfolio")
