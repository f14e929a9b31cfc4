"""Fixed personas (as in healthchecks' tests): the consultant, the district's own admin, an admin of
another district who must see nothing of this one, and nobody signed in. And the grade passback zone
(`paused`) that several modules share."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from conversion.models import Conversion, ConversionState, District, GpbState, Gradebook, JobKind, JobState
from conversion.services import pull
from sifclient.powerschool import DistrictSpec
from tests.conversion.jobhelpers import run
from tests.conversion.simulators import simulated_district

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


GPB_SPEC = DistrictSpec(students=40, schools=2, school_year=2027, seed=21)


class Inbound:
    """Wraps the zone's entry point to keep every message our agent sent (the real bytes on the wire)."""

    def __init__(self, zone):
        self.messages: list[bytes] = []
        self._handle = zone.handle
        zone.handle = self

    def __call__(self, data: bytes) -> bytes:
        self.messages.append(data)
        return self._handle(data)

    def events(self) -> list[bytes]:
        return [m for m in self.messages if b"<SIF_Event" in m]


@pytest.fixture
def paused(conversion, monkeypatch, zis_profile):
    """A conversion in step 3 (roster sync paused) with grade passback enabled, both simulators running, the ZIS
    in each profile (default, and strict: as OpenZIS answers; a module that sets `zis_profile` gets its own)."""
    monkeypatch.setattr(pull, "POLL_SECONDS", 0.05)
    with simulated_district(conversion, GPB_SPEC, profile=zis_profile) as (zis, canvas):
        assert run(conversion, JobKind.PULL, pull.run_pull).state == JobState.SUCCEEDED
        conversion.state = ConversionState.PAUSE
        conversion.gpb_state = GpbState.ENABLED
        conversion.gradebook = Gradebook.PTP
        conversion.save()
        yield conversion, zis, canvas, Inbound(zis.zone)
