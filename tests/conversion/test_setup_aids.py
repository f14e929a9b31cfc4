"""Step 1 aids: hosting read from the PowerSchool URL, the ticket text or the checklist, the mappings document."""

from __future__ import annotations

import pytest
from django.urls import reverse
from lxml import etree

from conversion.models import AuditEvent, Conversion, ConversionState, Hosting
from conversion.services import setup_aids
from conversion.services.step_data import EditRefused
from conversion.services.zis import PULL_OBJECTS
from sifclient.powerschool import District as SimDistrict
from sifclient.powerschool import DistrictSpec
from sifclient.safexml import new_parser


@pytest.fixture
def zoned(conversion):
    conversion.zis_url = "https://zis.kimono.example/zis"
    conversion.zone_id = "ALPHA_ZONE"
    conversion.save()
    return conversion


def setup_url(conversion, name="setup_aids"):
    return reverse(name, kwargs={"slug": conversion.district.slug, "year": conversion.school_year})


def test_a_powerschool_hosted_district_gets_the_ticket_text(zoned, district_admin, client):
    assert setup_aids.hosting_of(zoned) == Hosting.POWERSCHOOL  # alpha.powerschool.com
    client.force_login(district_admin)
    html = client.get(setup_url(zoned)).content.decode()
    assert '<pre id="support-ticket"' in html
    ticket = client.get(setup_url(zoned, "setup_ticket"))
    assert ticket["Content-Type"].startswith("text/plain")
    text = ticket.content.decode()
    for needed in (
        "ZIS URL: https://zis.kimono.example/zis",
        "Zone ID: ALPHA_ZONE",
        "Mode: Pull (SIF Agent Console / Agent Settings / Registration / Messaging Mode)",
        "If the mode is set to Push, the connection will fail",
        "Method: HTTP (SIF Agent Console / Agent Settings / Protocol)",
        "the https:// in the ZIS URL still connects the agent to the ZIS using HTTPS",
        "Java's trusted certificates",
        "http://testserver/districts/alpha/2027/setup/agent-cfg-mappings.xml",
        "Default Zone Settings / School Year",
        "2026–27",
        "disable the State Messaging Plug-ins (SMP) for the Canvas connection only",
        'the zone must display as "ready"',
        "deselect every school",
    ):
        assert needed in text, needed
    # The "copy" button is a real form: without JavaScript it opens the plain text.
    assert f'action="{setup_url(zoned, "setup_ticket")}"' in html and "Copy the ticket text" in html


def test_a_self_hosted_district_works_through_the_checklist(other_conversion, other_admin, client):
    other_conversion.zis_url, other_conversion.zone_id = "https://zis.example/zis", "BETA"
    other_conversion.save()
    assert setup_aids.hosting_of(other_conversion) == Hosting.SELF  # ps.beta.example.org
    client.force_login(other_admin)
    html = client.get(setup_url(other_conversion)).content.decode()
    assert "support-ticket" not in html and "Checklist: set up the SIF agent yourself" in html
    assert "Zone ID: BETA" in html and 'name="checklist-agent_mode_pull"' in html
    # Ticking boxes goes through the audited step data edit.
    client.post(
        reverse("edit_part", kwargs={"slug": "beta", "year": 2027, "part": "checklist"}),
        {"checklist-agent_mode_pull": "on", "checklist-agent_zone_ready": "on"},
    )
    other_conversion.refresh_from_db()
    assert other_conversion.agent_mode_pull and other_conversion.agent_zone_ready
    assert not other_conversion.agent_smp_disabled


def test_the_recorded_hosting_wins_over_the_url(zoned):
    zoned.hosting = Hosting.SELF
    aids = setup_aids.setup_aids(zoned, "http://x/m.xml")
    assert aids.hosting == Hosting.SELF and not aids.from_url and aids.ticket_text == ""


def test_missing_zis_information_is_named(conversion):
    aids = setup_aids.setup_aids(conversion, "http://x/m.xml")
    assert aids.missing == ["the ZIS URL", "the Zone ID"]
    assert "ZIS URL: (to be provided)" in aids.ticket_text


def test_the_mappings_document_lists_what_the_agent_must_publish(zoned, district_admin, client):
    client.force_login(district_admin)
    response = client.get(setup_url(zoned, "setup_mappings"))
    assert response["Content-Type"].startswith("application/xml")
    assert "attachment" in response["Content-Disposition"]
    root = etree.fromstring(response.content, new_parser())  # no entities, no DTD, no network
    objects = [o.get("Name") for o in root.findall("Object")]
    assert objects == [name for name in PULL_OBJECTS if name != "LEAInfo"]
    assert {"StudentPersonal", "StaffPersonal", "SchoolInfo", "SectionInfo", "TermInfo", "SchoolCourseInfo"} <= set(
        objects
    )
    for obj in root.findall("Object"):
        first = obj.find("ExtendedElement")
        assert first.get("Name") == "DCID" and first.get("Required") == "Yes"
    # The simulated PowerSchool agent, with its mappings in place, publishes exactly that element.
    district = SimDistrict(DistrictSpec(students=3, schools=1))
    for name in objects:
        assert "DCID" in district.record(name, 0).extended_elements, name
    assert root.get("ZoneId") == "ALPHA_ZONE"


def test_the_district_page_links_the_aids_at_step_one(zoned, district_admin, client):
    client.force_login(district_admin)
    html = client.get(
        reverse("district_section", kwargs={"slug": "alpha", "year": 2027, "section": "connection"})
    ).content.decode()
    assert f'hx-get="{setup_url(zoned)}"' in html and f'href="{setup_url(zoned)}"' in html


def test_schools_can_only_be_chosen_from_the_pull_and_before_the_mapping_is_approved(conversion, consultant):
    with pytest.raises(EditRefused, match="Not a school of the latest pull"):
        setup_aids.set_expected_schools(conversion, ["100"], user=consultant)
    Conversion.objects.filter(pk=conversion.pk).update(state=ConversionState.REMAPPING)
    conversion.refresh_from_db()
    with pytest.raises(EditRefused, match="cannot change"):
        setup_aids.set_expected_schools(conversion, [], user=consultant)
    assert not AuditEvent.objects.filter(action="edit:schools").exists()
