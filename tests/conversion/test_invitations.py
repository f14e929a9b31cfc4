"""District admins invited by e-mail: a single-use link to set a password, removal, and consultants only."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from conversion.models import AuditEvent

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a-fresh-Passw0rd-for-me"


def link_in(message) -> str:
    match = re.search(r"https?://[^/\s]+(/invitations/[^\s]+/)", message.body)
    assert match, message.body
    return match.group(1)


def invite(client, district, email="dana@alpha.k12.example.org"):
    return client.post(f"/districts/{district.slug}/admins/invite/", {"email": email}, follow=True)


def test_invited_admin_sets_a_password_once_and_signs_in(client, consultant, district, conversion, mailoutbox):
    client.force_login(consultant)
    response = invite(client, district)
    assert "Invitation sent to dana@alpha.k12.example.org" in response.content.decode()
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["dana@alpha.k12.example.org"]
    assert "Alpha Unified" in mailoutbox[0].subject
    user = get_user_model().objects.get(email="dana@alpha.k12.example.org")
    assert district.admins.filter(pk=user.pk).exists() and not user.has_usable_password()
    link = link_in(mailoutbox[0])

    client.logout()
    opened = client.get(link)  # the token moves into the session; the page's URL no longer carries it
    assert opened.status_code == 302 and opened["Location"].endswith("/set-password/")
    set_password = opened["Location"]
    assert client.get(set_password).status_code == 200
    response = client.post(set_password, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}, follow=True)
    assert response.status_code == 200 and "Alpha Unified" in response.content.decode()
    assert response.context["user"] == user
    client.logout()
    # The link is spent: the password it set is part of the token.
    assert client.get(link).status_code == 404
    assert (
        client.post(set_password, {"new_password1": "x-Other-pass-99", "new_password2": "x-Other-pass-99"}).status_code
        == 404
    )
    assert client.get(set_password).status_code == 404  # without the session's token, nothing
    signed_in = client.post(reverse("login"), {"username": "dana@alpha.k12.example.org", "password": NEW_PASSWORD})
    assert signed_in.status_code == 302
    assert AuditEvent.objects.filter(district=district, action="invitation_accepted").exists()
    assert AuditEvent.objects.filter(district=district, action="admin_invited", actor=consultant).exists()


def test_a_forged_or_foreign_link_is_refused(client, consultant, district, district_admin, mailoutbox):
    client.force_login(consultant)
    invite(client, district)
    link = link_in(mailoutbox[0])
    uid, token = link.strip("/").split("/")[1:]
    client.logout()
    assert client.get(f"/invitations/{uid}/{token[:-2]}zz/").status_code == 404
    other = urlsafe_base64_encode(force_bytes(district_admin.pk))  # someone else's id with this token
    assert client.get(f"/invitations/{other}/{token}/").status_code == 404


def test_removed_admin_loses_the_district_and_a_pending_link(client, consultant, district, mailoutbox):
    client.force_login(consultant)
    invite(client, district)
    user = get_user_model().objects.get(email="dana@alpha.k12.example.org")
    link = link_in(mailoutbox[0])
    response = client.post(f"/districts/{district.slug}/admins/{user.pk}/remove/", follow=True)
    assert "Removed dana@alpha.k12.example.org" in response.content.decode()
    assert not district.admins.filter(pk=user.pk).exists()
    assert AuditEvent.objects.filter(district=district, action="admin_removed").exists()
    client.logout()
    assert client.get(link).status_code == 404


def test_only_consultants_add_or_remove_admins(client, district_admin, district, other_admin, mailoutbox):
    client.force_login(district_admin)
    assert client.get(f"/districts/{district.slug}/admins/").status_code == 403
    assert invite(client, district, "friend@example.org").status_code == 403
    assert client.post(f"/districts/{district.slug}/admins/{district_admin.pk}/remove/").status_code == 403
    assert not get_user_model().objects.filter(email="friend@example.org").exists()
    assert mailoutbox == []
    client.logout()
    client.force_login(other_admin)
    assert client.get(f"/districts/{district.slug}/admins/").status_code == 404  # not even its name


def test_a_consultant_cannot_be_invited_and_an_existing_admin_is_told_to_sign_in(
    client, consultant, district, other_district, other_admin, mailoutbox
):
    consultant.email = "ic@example.org"
    consultant.save()
    client.force_login(consultant)
    assert "implementation consultant" in invite(client, district, "ic@example.org").content.decode()
    other_admin.email = "beta@example.org"
    other_admin.save()
    invite(client, district, "beta@example.org")
    assert district.admins.filter(pk=other_admin.pk).exists()
    assert "/invitations/" not in mailoutbox[-1].body and "/accounts/login/" in mailoutbox[-1].body
