"""Onboarding from the dashboard: a consultant adds a district, its Canvas token is checked live against
the Canvas simulator, the token is never shown back, can be replaced, and every change is audited."""

from __future__ import annotations

import pytest

from canvas.simulator import CanvasSimulator
from conversion.models import AuditEvent, Conversion, District, Hosting
from conversion.services import onboarding

pytestmark = pytest.mark.django_db
TOKEN = "canvas-onboarding-token-7f3a9c"


@pytest.fixture
def canvas():
    with CanvasSimulator(
        token=TOKEN,
        root_account_name="Cedar Valley Schools",
        tokens={"no-sis-token-123456": {"read_roster", "read_course_list"}},
    ) as sim:
        yield sim


def new_district_post(canvas, **over):
    data = {
        "district-name": "Cedar Valley Schools",
        "district-powerschool_url": "https://cedarvalley.powerschool.com",
        "district-time_zone": "America/Chicago",
        "district-school_year": "2027",
        "canvas-canvas_url": canvas.url,
        "canvas-canvas_account_id": str(canvas.root_account_id),
        "canvas-canvas_token": TOKEN,
        "zis-zis_url": "https://127.0.0.1:8443/zis",
        "zis-zone_id": "CEDAR",
        "zis-zis_username": "agent",
        "zis-zis_password": "zis-secret-pass-1",
        "zis-zis_ca_bundle": "",
        "zis-sif_version": "2.3",
    }
    data.update(over)
    return data


def test_consultant_adds_a_district_and_sees_the_canvas_check(client, consultant, canvas):
    client.force_login(consultant)
    response = client.post("/districts/new/", new_district_post(canvas), follow=True)
    assert response.status_code == 200
    district = District.objects.get(name="Cedar Valley Schools")
    conversion = Conversion.objects.get(district=district)
    assert (district.slug, district.time_zone, district.canvas_token) == (
        "cedar-valley-schools",
        "America/Chicago",
        TOKEN,
    )
    assert conversion.school_year == 2027 and conversion.hosting == Hosting.POWERSCHOOL
    assert (conversion.zis_url, conversion.zone_id, conversion.zis_username, conversion.zis_password) == (
        "https://127.0.0.1:8443/zis",
        "CEDAR",
        "agent",
        "zis-secret-pass-1",
    )
    assert conversion.sif_version == "2.3"  # the zone's version, asked on the page (not the 2.4 default)
    page = response.content.decode()
    assert "Cedar Valley Schools" in page and "every permission" in page
    assert page.count('class="badge ok">held') == 4
    assert TOKEN not in page and TOKEN[-4:] not in page  # never shown, not even in part
    actions = list(AuditEvent.objects.filter(district=district).values_list("action", flat=True))
    assert {"district_created", "edit:canvas", "edit:zis", "canvas_check"} <= set(actions)
    assert not any(TOKEN in str(e.detail) or TOKEN in e.summary for e in AuditEvent.objects.all())


def test_the_new_district_page_asks_the_zones_sif_version(client, consultant, canvas):
    client.force_login(consultant)
    page = client.get("/districts/new/").content.decode()
    assert 'name="zis-sif_version"' in page and "SIF 2.0r1" in page
    data = new_district_post(canvas)
    del data["zis-sif_version"]
    response = client.post("/districts/new/", data)
    assert response.status_code == 422 and not District.objects.exists()  # refused: the version is required
    client.post("/districts/new/", new_district_post(canvas, **{"zis-sif_version": "2.0r1"}))
    assert Conversion.objects.get().sif_version == "2.0r1"


def test_self_hosted_is_told_from_the_url(client, consultant, canvas):
    client.force_login(consultant)
    client.post(
        "/districts/new/", new_district_post(canvas, **{"district-powerschool_url": "https://ps.cedar.k12.mn.us"})
    )
    assert Conversion.objects.get().hosting == Hosting.SELF


def test_a_token_without_sis_permissions_is_flagged(client, consultant, canvas):
    client.force_login(consultant)
    response = client.post(
        "/districts/new/", new_district_post(canvas, **{"canvas-canvas_token": "no-sis-token-123456"}), follow=True
    )
    page = response.content.decode()
    assert "The token lacks: import_sis, manage_sis" in page
    assert page.count('class="badge bad">missing') == 2
    check, _ = onboarding.latest_canvas_check(District.objects.get())
    assert not check.ok and check.missing == ["import_sis", "manage_sis"]


def test_a_rejected_token_says_so(client, consultant, canvas):
    client.force_login(consultant)
    response = client.post(
        "/districts/new/", new_district_post(canvas, **{"canvas-canvas_token": "wrong-token-0000"}), follow=True
    )
    assert "Canvas refused the token (401)" in response.content.decode()


def test_token_is_kept_when_blank_and_replaced_when_given(client, consultant, canvas):
    client.force_login(consultant)
    client.post("/districts/new/", new_district_post(canvas))
    district = District.objects.get()
    base = {"canvas-canvas_url": canvas.url, "canvas-canvas_account_id": str(canvas.root_account_id)}
    client.post(f"/districts/{district.slug}/settings/canvas/", {**base, "canvas-canvas_token": ""})
    district.refresh_from_db()
    assert district.canvas_token == TOKEN
    client.post(f"/districts/{district.slug}/settings/canvas/", {**base, "canvas-canvas_token": "no-sis-token-123456"})
    district.refresh_from_db()
    assert district.canvas_token == "no-sis-token-123456"
    replaced = AuditEvent.objects.filter(district=district, action="edit:canvas").first()
    assert "replaced" in replaced.summary and replaced.detail == {"canvas_token": {"changed": True}}
    settings_page = client.get(f"/districts/{district.slug}/settings/").content.decode()
    assert "no-sis-token-123456" not in settings_page and 'value="no-sis' not in settings_page


def test_district_details_change_is_audited_and_rehosts(client, consultant, canvas):
    client.force_login(consultant)
    client.post("/districts/new/", new_district_post(canvas))
    district = District.objects.get()
    client.post(
        f"/districts/{district.slug}/settings/district/",
        {
            "district-name": "Cedar Valley Schools",
            "district-powerschool_url": "https://sis.cedar.example.org",
            "district-time_zone": "America/Denver",
        },
    )
    district.refresh_from_db()
    assert district.time_zone == "America/Denver" and Conversion.objects.get().hosting == Hosting.SELF
    event = AuditEvent.objects.filter(district=district, action="edit:district").first()
    assert event.detail["time_zone"] == {"from": "America/Chicago", "to": "America/Denver"}


def test_only_consultants_onboard(client, district_admin, district, canvas):
    client.force_login(district_admin)
    assert client.get("/districts/new/").status_code == 403
    assert client.post("/districts/new/", new_district_post(canvas)).status_code == 403
    assert client.get(f"/districts/{district.slug}/settings/").status_code == 403
    assert client.post(f"/districts/{district.slug}/settings/canvas/check/").status_code == 403
    assert District.objects.count() == 1


def test_invalid_form_creates_nothing(client, consultant, canvas):
    client.force_login(consultant)
    response = client.post(
        "/districts/new/", new_district_post(canvas, **{"canvas-canvas_token": "", "zis-zone_id": "bad zone!"})
    )
    assert response.status_code == 422
    assert District.objects.count() == 0


def test_consultants_find_the_pages_from_the_dashboard(client, consultant, district_admin, conversion):
    client.force_login(consultant)
    assert 'href="/districts/new/"' in client.get("/").content.decode()
    page = client.get(f"/districts/{conversion.district.slug}/{conversion.school_year}/").content.decode()
    assert 'href="/districts/alpha/settings/"' in page and 'href="/districts/alpha/admins/"' in page
    client.logout()
    client.force_login(district_admin)
    assert 'href="/districts/new/"' not in client.get("/").content.decode()
    page = client.get(f"/districts/{conversion.district.slug}/{conversion.school_year}/").content.decode()
    assert "/settings/" not in page and "/admins/" not in page
