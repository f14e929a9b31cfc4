"""The signed-in user and the session come from the database on every request (Redis sessions read through
the shared cache when CACHE_URL is set): a change made anywhere takes effect on the next request."""

from __future__ import annotations

from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.urls import reverse

from conversion.models import Job
from tests.conversion.conftest import PASSWORD


def test_users_are_looked_up_by_djangos_own_backend_after_axes():
    # django-axes's backend only refuses locked-out sign-ins; users are looked up by Django's ModelBackend.
    assert django_settings.AUTHENTICATION_BACKENDS == [
        "axes.backends.AxesStandaloneBackend",
        "django.contrib.auth.backends.ModelBackend",
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


def test_a_change_made_without_saving_the_user_counts_at_once(client, consultant, conversion):
    # As another process's bulk update does (no signal is sent): the next request reads the user again.
    client.force_login(consultant)
    c = conversion
    job = Job.objects.create(conversion=c, kind="pull")
    url = reverse("job", kwargs={"slug": c.district.slug, "year": c.school_year, "job_id": job.pk})
    assert client.get(url).status_code == 200
    type(consultant).objects.filter(pk=consultant.pk).update(is_staff=False)
    assert client.get(url).status_code == 404  # a district admin of nothing now


def test_signing_out_ends_the_session_at_once(client, consultant):
    client.post(reverse("login"), {"username": consultant.username, "password": PASSWORD})
    cookie = client.cookies["sessionid"].value
    assert client.get(reverse("portfolio")).status_code == 200
    client.post(reverse("logout"))
    client.cookies["sessionid"] = cookie  # someone kept a copy of the cookie
    assert client.get(reverse("portfolio")).status_code == 302


def test_a_session_deleted_elsewhere_ends_at_once(client, consultant):
    client.post(reverse("login"), {"username": consultant.username, "password": PASSWORD})
    assert client.get(reverse("portfolio")).status_code == 200
    Session.objects.all().delete()  # as another worker's sign-out does
    assert client.get(reverse("portfolio")).status_code == 302
