"""The Django admin's conversion form: its fields come from ConversionAdmin alone (never the ZIS password), and it
keeps the pause and go-live dates' range check (forms.StepDateRange)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def form_of(conversion, **changes) -> dict:
    return {
        "zis_url": "",
        "zone_id": "ALPHA",
        "zis_username": "",
        "agent_source_id": "A",
        "hosting": "self",
        "gradebook": conversion.gradebook,
        "zis_ca_bundle": "",
        "expected_school_ids": "[]",
        "sif_version": conversion.sif_version,
        **changes,
    }


def test_the_admin_form_has_no_zis_password_field_and_refuses_a_pause_date_years_away(consultant, conversion):
    client = Client()
    client.force_login(consultant)
    change = reverse("admin:conversion_conversion_change", args=[conversion.pk])

    page = client.get(change).content.decode()
    assert 'name="zis_password"' not in page and 'name="pause_date"' in page

    refused = client.post(change, form_of(conversion, pause_date="2040-05-31"))
    assert refused.status_code == 200
    assert "Choose a date between January 1, 2025 and December 31, 2029." in refused.content.decode()
    accepted = client.post(change, form_of(conversion, pause_date="2027-05-28"))
    assert accepted.status_code == 302
    conversion.refresh_from_db()
    assert str(conversion.pause_date) == "2027-05-28"
