"""The portfolio: filters, pages, next dates, last jobs, and its short render cache."""

from __future__ import annotations

import datetime as dt
import time
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import reverse

from conversion.models import ConversionState, District, Job, JobKind, JobState
from conversion.services import portfolio
from conversion.views import portfolio as portfolio_views


@pytest.fixture
def portfolio_data(conversion, other_conversion):
    conversion.pause_date = dt.date(2027, 6, 12)
    conversion.save()
    Job.objects.create(conversion=conversion, kind=JobKind.PULL, state=JobState.FAILED)
    other_conversion.state = ConversionState.MAPPING
    other_conversion.save()
    return conversion


def test_portfolio_lists_step_pause_date_and_last_job(client, consultant, portfolio_data):
    client.force_login(consultant)
    html = client.get(reverse("portfolio")).content.decode()
    assert "Alpha Unified" in html and "Beta Schools" in html
    assert "Pause: Jun 12, 2027" in html  # a custom date
    assert "Pull from the zone" in html and "Failed" in html
    assert "Go-live: not set" in html


def test_filters_by_step_and_search(client, consultant, portfolio_data):
    client.force_login(consultant)
    by_state = client.get(reverse("portfolio"), {"state": ConversionState.MAPPING}, HTTP_HX_REQUEST="true")
    assert "Beta Schools" in by_state.content.decode() and "Alpha Unified" not in by_state.content.decode()
    by_name = client.get(reverse("portfolio"), {"q": "alpha"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Alpha Unified" in by_name and "Beta Schools" not in by_name
    assert "<html" not in by_name  # an htmx request gets the table only


def test_the_table_is_rendered_once_per_cache_window(
    client, consultant, portfolio_data, settings, django_assert_max_num_queries
):
    settings.PORTFOLIO_CACHE_SECONDS = 60
    cache.clear()
    client.force_login(consultant)
    first = client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content
    District.objects.filter(pk=portfolio_data.district_id).update(name="Renamed Unified")
    # Within the window: no conversion or job query at all, and the same table.
    with django_assert_max_num_queries(2):  # the session and its user only
        again = client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content
    assert again == first
    cache.clear()
    assert b"Renamed Unified" in client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content


# Pagination, the render cache's keys and lifetime, and the cached notes.


def _districts(n: int, prefix: str = "Gamma") -> list[District]:
    made = District.objects.bulk_create(
        District(name=f"{prefix} {i:03d}", slug=f"{prefix.lower()}-{i:03d}") for i in range(n)
    )
    from conversion.models import Conversion

    Conversion.objects.bulk_create(
        Conversion(district=d, school_year=2027, zone_id=f"Z{i}") for i, d in enumerate(made)
    )
    return made


def test_the_table_is_paginated_and_the_pager_keeps_search_and_step(client, consultant, conversion):
    _districts(60)
    client.force_login(consultant)
    first = client.get(reverse("portfolio")).content.decode()
    assert first.count('<th scope="row">') == 50 and "Page 1 of 2" in first
    assert "Conversions, 61 in all" in first  # counted without a COUNT query: from the step counts
    assert 'hx-get="?q=&amp;state=&amp;page=2" hx-target="#portfolio-table" hx-push-url="true"' in first
    second = client.get(reverse("portfolio"), {"page": 2}, HTTP_HX_REQUEST="true").content.decode()
    assert second.count('<th scope="row">') == 11 and "Page 2 of 2" in second and "<html" not in second
    assert "Gamma 059" in second and "Gamma 000" not in second
    # A search runs over every page and the pager carries it (and the step) along.
    found = client.get(reverse("portfolio"), {"q": "gamma 0", "state": "agent_setup"}, HTTP_HX_REQUEST="true")
    html = found.content.decode()
    assert "Conversions, 60 in all" in html and "Page 1 of 2" in html and "Alpha Unified" not in html
    assert "?q=gamma%200&amp;state=agent_setup&amp;page=2" in html
    # Nonsense page numbers give the first or the last page, not an error.
    assert "Page 1 of 2" in client.get(reverse("portfolio"), {"page": "x"}).content.decode()
    assert "Page 2 of 2" in client.get(reverse("portfolio"), {"page": "999"}).content.decode()


def test_rendering_the_table_costs_the_same_few_queries_for_any_number_of_rows(
    client, consultant, conversion, django_assert_max_num_queries
):
    Job.objects.create(conversion=conversion, kind=JobKind.PULL, state=JobState.RUNNING)
    _districts(60)
    client.force_login(consultant)
    client.get(reverse("portfolio"))
    # Session, user, step counts, one page of rows, the timeline's rows and their step facts, unread notes.
    with django_assert_max_num_queries(7):
        html = client.get(reverse("portfolio")).content.decode()
    assert html.count('<th scope="row">') == 50 and "Pull from the zone" in html


def test_consultants_share_one_render_and_district_admins_never_get_anothers(
    client, consultant, district_admin, other_admin, portfolio_data, other_conversion, settings
):
    settings.PORTFOLIO_CACHE_SECONDS = 60
    cache.clear()
    second_consultant = get_user_model().objects.create_user("ic-two", password="x", is_staff=True)
    client.force_login(consultant)
    assert b"Alpha Unified" in client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content
    District.objects.filter(pk=portfolio_data.district_id).update(name="Renamed Unified")
    # Another consultant sees the same rows, so gets the same render within the window.
    client.force_login(second_consultant)
    shared = client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content
    assert b"Alpha Unified" in shared and b"Beta Schools" in shared
    # A district admin is never answered with the consultants' render, nor with another admin's.
    client.force_login(district_admin)
    own = client.get(reverse("portfolio")).content
    assert b"Renamed Unified" in own and b"Beta Schools" not in own
    client.force_login(other_admin)
    theirs = client.get(reverse("portfolio")).content
    assert b"Beta Schools" in theirs and b"Unified" not in theirs
    assert portfolio.audience(consultant) == portfolio.audience(second_consultant) != portfolio.audience(district_admin)
    assert portfolio.audience(district_admin) != portfolio.audience(other_admin)


def test_a_render_is_never_served_past_the_window(client, consultant, portfolio_data, settings):
    settings.PORTFOLIO_CACHE_SECONDS = 2
    cache.clear()
    client.force_login(consultant)
    start = time.time()

    def table_at(seconds_later: float) -> bytes:
        # Every clock, the cache's expiry included, `seconds_later` ahead.
        with mock.patch("time.time", return_value=start + seconds_later):
            return client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content

    assert b"Alpha Unified" in table_at(0)
    District.objects.filter(pk=portfolio_data.district_id).update(name="Renamed Unified")
    assert b"Alpha Unified" in table_at(1.5)  # within the window
    assert b"Renamed Unified" in table_at(2.5)  # past it: rendered again


def test_unread_notes_are_cached_briefly_and_dropped_when_marked_read(client, consultant, conversion, settings):
    from conversion.models import Notification

    settings.PORTFOLIO_CACHE_SECONDS = 60
    cache.clear()
    note = Notification.objects.create(recipient=consultant, conversion=conversion, text="Alpha approved <it>")
    client.force_login(consultant)
    html = client.get(reverse("portfolio")).content.decode()
    assert "1 unread" in html and "Alpha approved &lt;it&gt;" in html and "/districts/alpha/2027/" in html
    partial = client.post(reverse("notifications_read"), {"notification": note.pk}, HTTP_HX_REQUEST="true")
    assert "No unread notifications" in partial.content.decode()
    assert "No unread notifications" in client.get(reverse("portfolio")).content.decode()


def test_a_stale_render_is_served_while_another_request_renders_anew(client, consultant, portfolio_data, settings):
    """Past the window only the request that takes the render lock renders; the others get the copy they had
    (the dashboard bench: without it every concurrent request rendered the whole portfolio at once)."""
    settings.PORTFOLIO_CACHE_SECONDS = 2
    cache.clear()
    client.force_login(consultant)
    start = time.time()

    def table_at(seconds_later: float) -> bytes:
        with mock.patch("time.time", return_value=start + seconds_later):
            return client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content

    assert b"Alpha Unified" in table_at(0)
    District.objects.filter(pk=portfolio_data.district_id).update(name="Renamed Unified")
    lock = portfolio_views.render_key(consultant, "", "", 1) + ":rendering"
    assert cache.add(lock, 1, timeout=30)  # another request is rendering now
    assert b"Alpha Unified" in table_at(2.5)  # so this one answers with the stale copy
    cache.delete(lock)
    assert b"Renamed Unified" in table_at(2.6)  # the lock is free: this one renders anew
