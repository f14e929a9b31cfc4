"""Web security: sign-in throttling, CSV formula injection, server-side request forgery, Django admin, malformed
ids, password changes, length and date limits, Content-Security-Policy and idle sessions (issue 13)."""

from __future__ import annotations

import copy
import csv
import datetime as dt
import io
import logging
import time

import pytest
from django.core.cache import caches
from django.test import Client
from django.urls import reverse

from canvas.csvfiles import csv_bytes
from conversion import authcache, peers, workflow
from conversion.forms import GoLiveDateForm, PauseDateForm, ZisSettingsForm
from conversion.jobs import JobFailed
from conversion.middleware import LAST_SEEN
from conversion.models import (
    Approval,
    ApprovalKind,
    Artifact,
    AuditEvent,
    Conversion,
    Job,
    JobKind,
    MappingDiff,
    MappingRow,
    Snapshot,
    SnapshotState,
    SyncRun,
    SyncState,
)
from conversion.services import canvas_api, demo, step_data, sync, zis
from conversion.spreadsheet import safe_cell
from tests.conversion.conftest import PASSWORD

pytestmark = pytest.mark.django_db

FORMULAS = ['=HYPERLINK("http://evil.example/","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1"]


def sign_in(client: Client, username: str, password: str, address: str = "203.0.113.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


# ---- 4. sign-in throttling -------------------------------------------------------------------------------------


def test_an_account_is_locked_after_repeated_failures_from_any_address(consultant, settings, caplog):
    client = Client()
    with caplog.at_level(logging.WARNING):
        for i in range(settings.AXES_FAILURE_LIMIT - 1):
            response = sign_in(client, consultant.username, "wrong-password", address=f"203.0.113.{i + 1}")
            assert response.status_code == 200  # the form again, with its error
        assert sign_in(client, consultant.username, "wrong-password").status_code == 429  # the last one allowed
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("AXES: New login failure")]
    assert len(failures) == settings.AXES_FAILURE_LIMIT
    assert consultant.username in failures[0] and "203.0.113.1" in failures[0] and "wrong-password" not in failures[0]
    locked = sign_in(client, consultant.username, PASSWORD, address="198.51.100.9")  # right password, new address
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_an_address_is_locked_after_failures_on_several_accounts(consultant, district_admin, settings):
    client = Client()
    for i in range(settings.AXES_FAILURE_LIMIT):
        sign_in(client, f"guess-{i}", "wrong-password", address="203.0.113.50")
    assert sign_in(client, district_admin.username, PASSWORD, address="203.0.113.50").status_code == 429
    # Another address signs in as usual.
    assert sign_in(Client(), district_admin.username, PASSWORD, address="203.0.113.51").status_code == 302


# ---- 5. CSV formula injection --------------------------------------------------------------------------------


def test_spreadsheet_cells_never_start_a_formula():
    for value in FORMULAS:
        assert safe_cell(value) == "'" + value
    for value in ("-12", "+3.5", "Alice", "", 42, None, "1e5"):
        assert safe_cell(value) == value


def read_csv(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8"))))


def streamed(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_mapping_csv_and_sync_messages_are_safe_to_open(conversion, consultant):
    snapshot = Snapshot.objects.create(conversion=conversion, state=SnapshotState.COMPLETE)
    diff = MappingDiff.objects.create(conversion=conversion, snapshot=snapshot)
    for i, name in enumerate(FORMULAS):
        MappingRow.objects.create(
            diff=diff, kind="user", status="matched", key=f"10000{i}", name=name, canvas_value=name, dcid=str(i)
        )
    job = Job.objects.create(conversion=conversion, kind=JobKind.SYNC)
    out = io.StringIO(newline="")
    sync.SafeWriter(out).writerows([["users.csv", "3", msg, ""] for msg in FORMULAS])
    errors = Artifact.objects.create(
        conversion=conversion,
        job=job,
        kind="sync_errors",
        name="sync-1-messages.csv",
        content=out.getvalue().encode(),
        rows=len(FORMULAS),
    )
    # A file stored before its writer was safe is made safe on the way out too.
    old = Artifact.objects.create(
        conversion=conversion,
        job=job,
        kind="sync_errors",
        name="old.csv",
        content=b"file,row,message\nusers.csv,2,=1+1\n",
        rows=1,
    )
    client = Client()
    client.force_login(consultant)
    d = {"slug": conversion.district.slug, "year": conversion.school_year}
    bodies = [
        streamed(client.get(reverse("mapping_csv", kwargs=d))),
        client.get(reverse("artifact", kwargs={**d, "artifact_id": errors.pk})).content,
        client.get(reverse("artifact", kwargs={**d, "artifact_id": old.pk})).content,
    ]
    for body in bodies:
        cells = [cell for row in read_csv(body) for cell in row]
        assert cells and not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert '\'=HYPERLINK("http://evil.example/","x")' in [c for row in read_csv(bodies[0]) for c in row]


def test_sis_import_csvs_for_canvas_keep_the_data_as_it_is():
    from canvas.csv_rows import ChangeSisIdRow

    body = csv_bytes("change_sis_id", [ChangeSisIdRow(old_id="=1+1", new_id="-5", type="user")])
    header, row = read_csv(body)
    assert (
        dict(zip(header, row, strict=False))["old_id"] == "=1+1"
        and dict(zip(header, row, strict=False))["new_id"] == "-5"
    )


# ---- 6. server-side request forgery ---------------------------------------------------------------------------


def zis_form(conversion, **data):
    fields = {
        "zis_url": "http://127.0.0.1:7080/zones",
        "zone_id": "ALPHA",
        "zis_username": "",
        "zis_password": "",
        "agent_source_id": "KIMONO_ALPHA",
        "hosting": "self",
        "zis_ca_bundle": "",
        **data,
    }
    return ZisSettingsForm(data={f"zis-{k}": v for k, v in fields.items()}, instance=conversion, prefix="zis")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/zones",
        "file:///etc/passwd",
        "gopher://127.0.0.1:7080/",
        "http://kimono:secret@127.0.0.1:7080/zones",  # credentials in the URL
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://0.0.0.0:7080/zones",
        "http://10.1.2.3/zones",
        "http://192.168.0.10/zones",
        "http://172.16.0.1/zones",
        "http://100.64.0.1/",
        "http://127.0.0.1:5432/",
        "http://127.0.0.1:6379/",  # the database and broker ports
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_a_zis_url_a_district_cannot_have_is_refused(conversion, url):
    form = zis_form(conversion, zis_url=url)
    assert not form.is_valid()
    assert "zis_url" in form.errors


def test_loopback_only_when_the_operator_allows_it(conversion, settings):
    assert zis_form(conversion).is_valid()  # the test settings allow loopback, as the embedded default does
    settings.PEER_ALLOWED_NETWORKS = []
    form = zis_form(conversion)
    assert not form.is_valid() and "PEER_ALLOWED_NETWORKS" in str(form.errors["zis_url"])
    settings.PEER_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert zis_form(conversion, zis_url="http://10.1.2.3/zones").is_valid()


@pytest.mark.parametrize("zone", ["..", ".", "a/b", "../admin", "a..b", "ZONE?x=1", "%2e%2e"])
def test_a_zone_id_that_walks_the_path_is_refused(conversion, zone):
    form = zis_form(conversion, zone_id=zone)
    assert not form.is_valid() and "zone_id" in form.errors


def test_the_zis_password_never_follows_the_url_to_another_host(conversion, consultant):
    conversion.zis_url, conversion.zone_id = "http://127.0.0.1:7080/zones", "ALPHA"
    conversion.zis_username, conversion.zis_password = "kimono", "the-old-password"
    conversion.save()
    client = Client()
    client.force_login(consultant)
    url = reverse("edit_part", kwargs={"slug": conversion.district.slug, "year": conversion.school_year, "part": "zis"})
    post = {
        "zis-zis_url": "http://127.0.0.2:7080/zones",
        "zis-zone_id": "ALPHA",
        "zis-zis_username": "kimono",
        "zis-zis_password": "",
        "zis-agent_source_id": "KIMONO_ALPHA",
        "zis-hosting": "self",
        "zis-zis_ca_bundle": "",
    }
    response = client.post(url, post)
    assert response.status_code == 422
    assert "enter the password for the new ZIS" in response.content.decode()
    conversion.refresh_from_db()
    assert conversion.zis_url == "http://127.0.0.1:7080/zones" and conversion.zis_password == "the-old-password"
    # Same host, another path: the password stays.
    assert client.post(url, {**post, "zis-zis_url": "http://127.0.0.1:7080/other"}).status_code == 302
    conversion.refresh_from_db()
    assert conversion.zis_password == "the-old-password"
    # A new host with its password: saved, and the address change is audited.
    assert (
        client.post(
            url, {**post, "zis-zis_url": "http://127.0.0.2:7080/zones", "zis-zis_password": "new-one"}
        ).status_code
        == 302
    )
    conversion.refresh_from_db()
    assert conversion.zis_password == "new-one"
    event = AuditEvent.objects.filter(conversion=conversion, action="edit:zis").first()
    assert event.detail["zis_url"]["to"] == "http://127.0.0.2:7080/zones"
    assert event.detail["zis_password"] == {"changed": True}


def test_workers_check_the_address_again_before_connecting(conversion, district, settings):
    # A URL stored before these checks (or a name re-pointed since) is refused at connection time.
    Conversion.objects.filter(pk=conversion.pk).update(zis_url="http://169.254.169.254/zones", zone_id="ALPHA")
    conversion.refresh_from_db()
    with pytest.raises(JobFailed, match="local or private address"):
        with zis.agent_for(conversion):
            pass
    Conversion.objects.filter(pk=conversion.pk).update(zis_url="http://127.0.0.1:7080/zones", zone_id="..")
    conversion.refresh_from_db()
    with pytest.raises(JobFailed, match="Zone ID"):
        with zis.agent_for(conversion):
            pass
    assert zis.zone_url(conversion) == "http://127.0.0.1:7080/zones/"  # never '/zones/..'
    settings.PEER_ALLOWED_NETWORKS = []
    with pytest.raises(JobFailed, match="Canvas URL"):
        with canvas_api.canvas_for(district):
            pass


def test_peer_checks_resolve_names(settings):
    settings.PEER_ALLOWED_NETWORKS = []
    with pytest.raises(peers.PeerRefused, match="local or private"):
        peers.check_url("http://localhost:7080/zones", what="ZIS URL")


# ---- 7. Django admin -------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(consultant):
    assert consultant.is_staff and not consultant.is_superuser
    client = Client()
    client.force_login(consultant)
    return client


def test_a_staff_consultant_uses_the_admin_without_being_a_superuser(admin_client, conversion):
    assert admin_client.get(reverse("admin:index")).status_code == 200
    for name in ("district", "conversion", "job", "snapshot", "auditevent", "approval", "mappingdiff"):
        assert admin_client.get(reverse(f"admin:conversion_{name}_changelist")).status_code == 200, name
    assert admin_client.get(reverse("admin:conversion_conversion_change", args=[conversion.pk])).status_code == 200


def test_the_demo_consultant_is_staff_not_superuser(db):
    from django.contrib.auth import get_user_model

    demo.seed_demo()
    consultant = get_user_model().objects.get(username="consultant")
    assert consultant.is_staff and not consultant.is_superuser
    get_user_model().objects.filter(pk=consultant.pk).update(is_superuser=True)  # an older demo database
    demo.seed_demo()
    consultant.refresh_from_db()
    assert consultant.is_staff and not consultant.is_superuser


def test_audit_events_approvals_jobs_and_snapshots_are_not_written_in_the_admin(admin_client, conversion, consultant):
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", password="root-password-1")
    event = AuditEvent.objects.create(
        district=conversion.district, conversion=conversion, action="x", summary="s", actor_label="ic"
    )
    approval = Approval.objects.create(conversion=conversion, kind=ApprovalKind.MAPPING, approved_by=consultant)
    job = Job.objects.create(conversion=conversion, kind=JobKind.PULL)
    snapshot = Snapshot.objects.create(conversion=conversion)
    superuser = Client()
    superuser.force_login(root)
    for client in (admin_client, superuser):  # read-only for everyone
        for name in ("auditevent", "approval", "job", "snapshot"):
            assert client.get(reverse(f"admin:conversion_{name}_add")).status_code == 403, name
        for name, obj in (("auditevent", event), ("approval", approval), ("job", job), ("snapshot", snapshot)):
            assert client.get(reverse(f"admin:conversion_{name}_delete", args=[obj.pk])).status_code == 403, name
            assert client.post(reverse(f"admin:conversion_{name}_change", args=[obj.pk]), {}).status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists() and Approval.objects.count() == 1


def test_every_object_has_a_readable_name(conversion, consultant):
    snapshot = Snapshot.objects.create(conversion=conversion)
    objects = [
        conversion,
        conversion.district,
        Job.objects.create(conversion=conversion, kind=JobKind.PULL),
        snapshot,
        Approval.objects.create(conversion=conversion, kind=ApprovalKind.MAPPING, approved_by=consultant),
        MappingDiff.objects.create(conversion=conversion, snapshot=snapshot),
        AuditEvent.objects.create(district=conversion.district, action="x", summary="s", actor_label="ic"),
        SyncRun.objects.create(conversion=conversion, trigger="manual", state=SyncState.HELD),
    ]
    for obj in objects:
        assert " object (" not in str(obj), type(obj).__name__


def test_an_admin_edit_is_audited_and_a_new_canvas_host_drops_the_token(admin_client, district):
    page = admin_client.get(reverse("admin:conversion_district_change", args=[district.pk])).content.decode()
    assert district.canvas_token[-4:] not in page and "abcd" not in page  # not even its tail
    form = {
        "name": district.name,
        "slug": district.slug,
        "powerschool_url": district.powerschool_url,
        "time_zone": district.time_zone,
        "canvas_url": "http://127.0.0.2:7090",
        "canvas_account_id": "1",
    }
    response = admin_client.post(reverse("admin:conversion_district_change", args=[district.pk]), form)
    assert response.status_code == 302
    district.refresh_from_db()
    assert district.canvas_url == "http://127.0.0.2:7090" and district.canvas_token == ""
    event = AuditEvent.objects.get(district=district, action="admin:edit")
    assert event.detail["canvas_url"] == {"from": "http://127.0.0.1:1", "to": "http://127.0.0.2:7090"}
    assert event.detail["canvas_token"] == {"changed": True} and "dropped" in event.summary
    refused = admin_client.post(
        reverse("admin:conversion_district_change", args=[district.pk]),
        {**form, "canvas_url": "http://169.254.169.254/"},
    )
    assert refused.status_code == 200 and "local or private address" in refused.content.decode()


def test_a_zis_url_change_in_the_admin_is_audited(admin_client, conversion):
    conversion.zis_url, conversion.zis_username, conversion.zis_password = "http://127.0.0.1:7080/z", "k", "pw-1"
    conversion.save()
    change = reverse("admin:conversion_conversion_change", args=[conversion.pk])
    form = {
        "zis_url": "http://127.0.0.3:7080/z",
        "zone_id": "ALPHA",
        "zis_username": "k",
        "agent_source_id": "A",
        "hosting": "self",
        "gradebook": conversion.gradebook,
        "zis_ca_bundle": "",
        "expected_school_ids": "[]",
        "sif_version": conversion.sif_version,
    }
    response = admin_client.post(change, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    conversion.refresh_from_db()
    assert conversion.zis_url == "http://127.0.0.3:7080/z" and conversion.zis_password == ""
    assert AuditEvent.objects.filter(
        conversion=conversion, action="admin:edit", detail__zis_url__to="http://127.0.0.3:7080/z"
    ).exists()


# ---- 8. malformed ids ------------------------------------------------------------------------------------------


def test_malformed_ids_answer_404_or_400(conversion, consultant):
    client = Client(raise_request_exception=False)
    client.force_login(consultant)
    base = f"/districts/{conversion.district.slug}/{conversion.school_year}"
    for url in (
        f"{base}/jobs/{'9' * 20}/",
        f"{base}/files/{'1' * 25}/",
        f"{base}/grade-passback/courses/{'7' * 30}/",
        f"/districts/{conversion.district.slug}/{'2' * 40}/",
        f"/districts/{conversion.district.slug}/{'2' * 40}/syncs/",
    ):  # the dashboard's section routes too
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("notifications_read"), {"notification": "²"}).status_code == 400
    assert client.post(reverse("notifications_read"), {"notification": "9" * 30}).status_code == 400
    assert client.get(reverse("portfolio"), {"page": "²"}).status_code == 200


# ---- 9. password changes ---------------------------------------------------------------------------------------


def test_changing_ones_password_keeps_ones_session_in_every_process(district_admin, settings):
    settings.AUTH_USER_CACHE_SECONDS = 60
    client = Client()
    client.force_login(district_admin)
    assert client.get(reverse("password_change")).status_code == 200  # district admins have the page
    assert client.get(reverse("portfolio")).status_code == 200
    # What another gunicorn process holds: the user as it was before the change.
    stale = caches[authcache.CACHE_ALIAS].get(authcache._key(district_admin.pk))
    assert stale is not None
    stale = copy.deepcopy(stale)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": "N3w-pass-phrase!", "new_password2": "N3w-pass-phrase!"},
    )
    assert response.status_code == 302
    caches[authcache.CACHE_ALIAS].set(authcache._key(district_admin.pk), stale, 60)  # the other process's copy
    assert client.get(reverse("portfolio")).status_code == 200
    assert client.get(reverse("portfolio")).status_code == 200


# ---- 10. lengths and dates -------------------------------------------------------------------------------------


def test_reasons_and_notes_have_a_length_limit(conversion, consultant, district_admin):
    conversion.state = "connection"
    conversion.save()
    with pytest.raises(workflow.TransitionRefused, match="2,000 characters"):
        workflow.perform(conversion, "back_to_agent_setup", user=consultant, reason="x" * 2001)
    workflow.perform(conversion, "back_to_agent_setup", user=consultant, reason="x" * 2000)
    conversion.refresh_from_db()
    conversion.state = "live"
    conversion.save()
    with pytest.raises(workflow.TransitionRefused, match="2,000 characters"):
        workflow.set_nightly_sync_held(conversion, True, user=consultant, reason="y" * 2_400_000)
    run = SyncRun.objects.create(conversion=conversion, trigger="manual", state=SyncState.HELD)
    with pytest.raises(ValueError, match="2,000 characters"):
        sync.release_held_sync(run, user=district_admin, note="z" * 2001)
    assert not Approval.objects.filter(kind=ApprovalKind.SYNC_RELEASE).exists()
    assert AuditEvent._meta.get_field("reason").max_length == 2000
    assert Approval._meta.get_field("note").max_length == 2000


@pytest.mark.parametrize("form_class,field", [(PauseDateForm, "pause_date"), (GoLiveDateForm, "go_live_date")])
def test_pause_and_go_live_dates_lie_near_their_school_year(conversion, form_class, field):
    for value, ok in (
        ("0001-01-01", False),
        ("9999-12-31", False),
        (f"{conversion.school_year - 5}-06-01", False),
        (f"{conversion.school_year}-05-31", True),
        (f"{conversion.school_year + 1}-01-15", True),
    ):
        form = form_class(data={f"{field}": value}, instance=conversion)
        assert form.is_valid() is ok, (value, form.errors)


# ---- 11. headers and sessions ----------------------------------------------------------------------------------


def test_pages_carry_a_content_security_policy_without_inline_script(consultant, conversion):
    client = Client()
    client.force_login(consultant)
    for url in (
        reverse("portfolio"),
        reverse("district_year", kwargs={"slug": conversion.district.slug, "year": conversion.school_year}),
        reverse("setup_aids", kwargs={"slug": conversion.district.slug, "year": conversion.school_year}),
        reverse("login"),
    ):
        response = client.get(url)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
        body = response.content.decode()
        assert "<script>" not in body and " onclick=" not in body


def test_a_session_ends_after_being_idle(consultant, settings):
    client = Client()
    client.force_login(consultant)
    assert client.get(reverse("portfolio")).status_code == 200
    session = client.session
    assert session[LAST_SEEN]
    session[LAST_SEEN] = int(time.time()) - settings.SESSION_IDLE_SECONDS - 5
    session.save()
    response = client.get(reverse("portfolio"))
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert client.get(reverse("portfolio")).status_code == 302  # signed out, not just redirected once


def test_an_idle_htmx_poll_sends_the_page_to_the_sign_in(consultant, settings):
    client = Client()
    client.force_login(consultant)
    client.get(reverse("portfolio"))
    session = client.session
    session[LAST_SEEN] = int(time.time()) - settings.SESSION_IDLE_SECONDS - 5
    session.save()
    response = client.get(reverse("portfolio"), HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Redirect"].startswith(reverse("login"))


def test_an_active_session_goes_on(consultant, settings):
    client = Client()
    client.force_login(consultant)
    client.get(reverse("portfolio"))
    session = client.session
    session[LAST_SEEN] = int(time.time()) - settings.SESSION_IDLE_SECONDS + 120
    session.save()
    assert client.get(reverse("portfolio")).status_code == 200
    assert client.session[LAST_SEEN] > int(time.time()) - 60  # refreshed


def test_secure_cookie_deployments_redirect_to_https_and_send_hsts(consultant):
    import os
    import subprocess
    import sys

    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0, s.SECURE_PROXY_SSL_HEADER, s.SESSION_COOKIE_AGE)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "conversion.settings_test", "DJANGO_SECURE_COOKIES": "1"}
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip().splitlines()[-1] == "True True ('HTTP_X_FORWARDED_PROTO', 'https') 43200", out.stderr


def _unused():  # keep imports referenced for linters
    return dt, step_data


def test_error_texts_do_not_tell_open_ports_from_closed_ones(conversion, settings, live_server):
    """An internal address is refused before any connection: its text is the same whatever listens there."""
    settings.PEER_ALLOWED_NETWORKS = []
    port = live_server.url.rsplit(":", 1)[1]  # a port with a web server on it
    texts = set()
    for url in (f"http://127.0.0.1:{port}/zones", "http://127.0.0.1:9/zones", "http://127.0.0.1:7/zones"):
        Conversion.objects.filter(pk=conversion.pk).update(zis_url=url, zone_id="ALPHA")
        conversion.refresh_from_db()
        with pytest.raises(JobFailed) as failed:
            with zis.agent_for(conversion):
                pass
        texts.add(str(failed.value))
    assert len(texts) == 1, texts
