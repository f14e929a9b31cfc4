"""One home for access: conversion.rules decides, raises AccessRefused (or NotVisible) with its reasons, and
AccessRefusedMiddleware answers 403 (reasons on the page) or 404 in one place."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversion.models import Job, JobKind
from conversion.rules import AccessRefused, NotVisible, get_district_for_user, require
from conversion.services import gradepassback, invitations, onboarding, setup_aids


def test_a_refusal_carries_its_reasons_and_a_hidden_thing_is_a_refusal_answered_404():
    refused = AccessRefused(["Only a consultant can do this.", "Not today."])
    assert refused.reasons == ["Only a consultant can do this.", "Not today."] and refused.status_code == 403
    assert str(refused) == "Only a consultant can do this. Not today."
    assert AccessRefused("One reason.").reasons == ["One reason."]
    assert issubclass(NotVisible, AccessRefused) and NotVisible("x").status_code == 404
    require(True, "never raised")
    with pytest.raises(AccessRefused, match="because"):
        require(False, "because")


def test_a_district_the_user_may_not_see_is_not_visible_like_one_that_does_not_exist(conversion, other_admin):
    with pytest.raises(NotVisible):
        get_district_for_user(other_admin, conversion.district.slug)
    with pytest.raises(NotVisible):
        get_district_for_user(other_admin, "no-such-district")


def test_a_refused_page_says_why(client, conversion, district_admin):
    job = Job.objects.create(conversion=conversion, kind=JobKind.PULL)
    client.force_login(district_admin)
    d = {"slug": conversion.district.slug, "year": conversion.school_year}
    response = client.post(reverse("cancel_job", kwargs={**d, "job_id": job.pk}))
    assert response.status_code == 403
    assert "Only an implementation consultant can cancel a job." in response.content.decode()
    response = client.get(reverse("district_admins", kwargs={"slug": conversion.district.slug}))
    assert response.status_code == 403 and "add or remove a district&#x27;s admins" in response.content.decode()


def test_a_hidden_district_is_answered_404_without_its_name(client, conversion, other_admin):
    client.force_login(other_admin)
    response = client.get(reverse("district_settings", kwargs={"slug": conversion.district.slug}))
    assert response.status_code == 404 and conversion.district.name not in response.content.decode()


def test_services_refuse_the_wrong_person_with_the_one_refusal(conversion, district_admin, other_admin):
    with pytest.raises(AccessRefused, match="consultant"):
        onboarding.create_district(
            user=district_admin, name="Sneaky", powerschool_url="", time_zone="America/Denver", school_year=2027
        )
    with pytest.raises(AccessRefused, match="consultant"):
        invitations.invite_admin(conversion.district, "x@example.org", by=district_admin, site_url="http://t")
    with pytest.raises(AccessRefused, match="consultant"):
        invitations.remove_admin(conversion.district, district_admin, by=district_admin)
    with pytest.raises(AccessRefused, match="map categories"):
        gradepassback.set_category_override(conversion, 1, "Labs", "Science", other_admin)
    with pytest.raises(AccessRefused, match="choose its schools"):
        setup_aids.set_expected_schools(conversion, [], user=other_admin)
    # What is about the data, not about who acts, is still its own refusal.
    with pytest.raises(gradepassback.OverrideRefused, match="Name the Canvas assignment group"):
        gradepassback.set_category_override(conversion, 1, "  ", "Science", district_admin)
