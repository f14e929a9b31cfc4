"""Fixed personas (as in healthchecks' tests): the consultant, the district's own admin, an admin of
another district who must see nothing of this one, and nobody signed in."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from conversion.models import Conversion, District

PASSWORD = "test-password-1"


def make_user(username: str, *, staff: bool = False):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=staff)
    return user


@pytest.fixture
def consultant(db):
    return make_user("ic", staff=True)


@pytest.fixture
def district(db):
    return District.objects.create(
        name="Alpha Unified",
        slug="alpha",
        powerschool_url="https://alpha.powerschool.com",
        canvas_url="http://127.0.0.1:1",
        canvas_token="secret-canvas-token-abcd",
    )


@pytest.fixture
def other_district(db):
    return District.objects.create(name="Beta Schools", slug="beta", powerschool_url="https://ps.beta.example.org")


@pytest.fixture
def district_admin(district):
    user = make_user("alpha-admin")
    district.admins.add(user)
    return user


@pytest.fixture
def other_admin(other_district):
    user = make_user("beta-admin")
    other_district.admins.add(user)
    return user


@pytest.fixture
def conversion(district):
    return Conversion.objects.create(district=district, school_year=2027, agent_source_id="KIMONO_ALPHA")


@pytest.fixture
def other_conversion(other_district):
    return Conversion.objects.create(district=other_district, school_year=2027)


def fill_step_one(conversion: Conversion) -> Conversion:
    conversion.zis_url = conversion.zis_url or "http://127.0.0.1:9/zis"  # keep a simulator's URL
    conversion.zone_id = conversion.zone_id or "ALPHA"
    for field in (
        "agent_mode_pull",
        "agent_method_http",
        "agent_school_year_checked",
        "agent_smp_disabled",
        "agent_zone_ready",
        "agent_schools_selected",
    ):
        setattr(conversion, field, True)
    conversion.save()
    return conversion


DAY = dt.timedelta(days=1)
