"""The signed-in user and the session, read through this process's memory for a couple of seconds: a change
made here takes effect on the next request, one made elsewhere within the configured seconds."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.urls import reverse

from conversion.models import Job
from tests.conversion.conftest import PASSWORD


@pytest.fixture(autouse=True)
def _cached(settings):
    settings.SESSION_LOCAL_SECONDS = 2
    settings.AUTH_USER_CACHE_SECONDS = 2
    caches["local"].clear()


def later(seconds: float):
    """Every clock (the caches' expiry included) `seconds` ahead."""
    now = time.time() + seconds
    return mock.patch("time.time", return_value=now)


def test_users_and_sessions_never_go_to_a_shared_cache():
    # A User carries its password hash: it stays in this process's memory, whatever CACHE_URL says.
    assert django_settings.CACHES["local"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    # django-axes's backend only refuses locked-out sign-ins; users are looked up by ours alone.
    assert django_settings.AUTHENTICATION_BACKENDS == [
        "axes.backends.AxesStandaloneBackend",
        "conversion.authcache.CachedModelBackend",
    ]


def test_deactivating_a_user_signs_them_out_at_once(client, consultant):
    client.force_login(consultant)
    assert client.get(reverse("portfolio")).status_code == 200
    consultant.is_active = False
    consultant.save()
    assert client.get(reverse("portfolio")).status_code == 302


def test_a_password_change_ends_other_sessions_at_once(client, consultant):
    client.force_login(consultant)
    assert client.get(reverse("portfolio")).status_code == 200
    consultant.set_password("another-password-2")
    consultant.save()
    assert client.get(reverse("portfolio")).status_code == 302


def test_a_change_made_without_saving_the_user_counts_within_the_seconds(client, consultant, conversion):
    # As seen by another process (a bulk update sends no signal): the cached user serves at most 2 s.
    client.force_login(consultant)
    c = conversion
    job = Job.objects.create(conversion=c, kind="pull")
    url = reverse("job", kwargs={"slug": c.district.slug, "year": c.school_year, "job_id": job.pk})
    assert client.get(url).status_code == 200
    type(consultant).objects.filter(pk=consultant.pk).update(is_staff=False)
    assert client.get(url).status_code == 200  # still the cached consultant
    with later(3):
        assert client.get(url).status_code == 404  # a district admin of nothing now


def test_signing_out_ends_the_session_at_once(client, consultant):
    client.post(reverse("login"), {"username": consultant.username, "password": PASSWORD})
    cookie = client.cookies["sessionid"].value
    assert client.get(reverse("portfolio")).status_code == 200
    client.post(reverse("logout"))
    client.cookies["sessionid"] = cookie  # someone kept a copy of the cookie
    assert client.get(reverse("portfolio")).status_code == 302


def test_a_session_deleted_elsewhere_ends_within_the_seconds(client, consultant):
    client.post(reverse("login"), {"username": consultant.username, "password": PASSWORD})
    assert client.get(reverse("portfolio")).status_code == 200
    Session.objects.all().delete()  # as another worker's sign-out does
    with later(3):
        assert client.get(reverse("portfolio")).status_code == 302
