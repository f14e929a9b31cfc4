"""CSRF on every POST URL, credentials encrypted at rest and never shown back, and no secret in logs."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from canvas.simulator import CanvasSimulator
from conversion import jobs
from conversion.models import Conversion, District, JobKind, JobState, Snapshot, SnapshotState
from conversion.services import connection as connection_service
from conversion.services import mapping, sync
from tests.conversion.test_permissions import data, job, matrix  # noqa: F401 (fixtures and the URL matrix)

ZIS_SECRET = "zis-password-Very-Secret-4711"
CANVAS_SECRET = "canvas-token-Very-Secret-0815"


@pytest.fixture
def secrets(conversion):
    conversion.zis_username = "kimono"
    conversion.zis_password = ZIS_SECRET
    conversion.zis_url = "http://127.0.0.1:9/zones"
    conversion.zone_id = "ALPHA"
    conversion.save()
    district = conversion.district
    district.canvas_token = CANVAS_SECRET
    district.canvas_url = "http://127.0.0.1:9"
    district.save()
    return conversion


@pytest.mark.django_db
def test_every_post_url_refuses_a_request_without_csrf_token(conversion, job, data, consultant):  # noqa: F811
    client = Client(enforce_csrf_checks=True)
    client.force_login(consultant)
    posts = {name: kwargs for name, (method, kwargs, _) in matrix(conversion, job, data).items() if method == "post"}
    assert posts  # the matrix enumerates the URLconf (test_permissions checks it is complete)
    for name, kwargs in posts.items():
        assert client.post(reverse(name, kwargs=kwargs)).status_code == 403, name
    assert client.post(reverse("logout")).status_code == 403
    assert client.post(reverse("admin:conversion_district_add"), {"name": "x"}).status_code == 403


@pytest.mark.django_db
def test_credentials_are_encrypted_in_the_database(secrets):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT zis_password FROM {Conversion._meta.db_table} WHERE id = %s", [secrets.pk])
        (raw_zis,) = cursor.fetchone()
        cursor.execute(f"SELECT canvas_token FROM {District._meta.db_table} WHERE id = %s", [secrets.district_id])
        (raw_canvas,) = cursor.fetchone()
    for raw, plain in ((raw_zis, ZIS_SECRET), (raw_canvas, CANVAS_SECRET)):
        assert raw and plain not in raw and plain[-12:] not in raw
    secrets.refresh_from_db()
    assert secrets.zis_password == ZIS_SECRET and secrets.district.canvas_token == CANVAS_SECRET


@pytest.mark.django_db
def test_secrets_are_never_shown_back(secrets, consultant, district_admin):
    superuser = type(consultant).objects.create_superuser("root", password="x-password-1")
    d = {"slug": secrets.district.slug, "year": secrets.school_year}
    pages = [
        (consultant, reverse("district_year", kwargs=d)),
        (district_admin, reverse("district_year", kwargs=d)),
        (consultant, reverse("setup_aids", kwargs=d)),
        (consultant, reverse("setup_ticket", kwargs=d)),
        (superuser, reverse("admin:conversion_district_change", args=[secrets.district_id])),
        (superuser, reverse("admin:conversion_conversion_change", args=[secrets.pk])),
    ]
    for user, url in pages:
        client = Client()
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        for secret in (ZIS_SECRET, CANVAS_SECRET):
            assert secret not in body and secret[:-4] not in body, url


@pytest.mark.django_db(transaction=True)
def test_no_secret_in_logs_or_job_errors_when_peers_fail(secrets, caplog):
    """The ZIS refuses the connection; Canvas (its simulator, over HTTP) refuses the token with a 401."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "sifclient", "canvas", "conversion"):  # the settings quiet httpx
        caplog.set_level(logging.DEBUG, logger=name)
    outcomes = []
    with CanvasSimulator(token="the-right-token-not-ours") as canvas:
        district = secrets.district
        district.canvas_url = canvas.url
        district.save()
        for kind, runner in (
            (JobKind.TEST_CONNECTION, connection_service.run_test_connection),
            (JobKind.MAPPING, mapping.run_mapping),
            (JobKind.SYNC, sync.run_sync),
        ):
            if kind == JobKind.MAPPING:
                Snapshot.objects.create(conversion=secrets, state=SnapshotState.COMPLETE, completed_at=timezone.now())
            started, _ = jobs.start_job(secrets, kind, enqueue=False)
            jobs.run_job(started.pk, runner)
            started.refresh_from_db()
            outcomes.append(started)
    assert [j.state for j in outcomes] == [JobState.FAILED] * 3, [j.error for j in outcomes]
    assert any("401" in r.getMessage() for r in caplog.records)  # the refused Canvas request was logged
    texts = [caplog.text, *(r.getMessage() for r in caplog.records)]
    texts += [f"{j.error} {j.message} {j.detail}" for j in outcomes]
    for text in texts:
        for secret in (ZIS_SECRET, CANVAS_SECRET):
            assert secret not in text
