"""The portfolio: filters, next dates, last jobs, and its short render cache."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.urls import reverse

from conversion.models import ConversionState, District, Job, JobKind, JobState


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


def test_the_table_is_rendered_once_per_cache_window(client, consultant, portfolio_data, settings,
                                                     django_assert_max_num_queries):
    settings.PORTFOLIO_CACHE_SECONDS = 60
    cache.clear()
    client.force_login(consultant)
    first = client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content
    District.objects.filter(pk=portfolio_data.district_id).update(name="Renamed Unified")
    # Within the window: no conversion or job query at all, and the same table.
    with django_assert_max_num_queries(2):  # the session's user only
        again = client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content
    assert again == first
    cache.clear()
    assert b"Renamed Unified" in client.get(reverse("portfolio"), HTTP_HX_REQUEST="true").content
