"""District admins: invited by a consultant by e-mail, they set their own password from a single-use link.

The link carries Django's password-reset token: it is tied to the user's password hash and last sign-in,
so setting the password (or signing in) spends it, and PASSWORD_RESET_TIMEOUT ends it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from conversion import audit
from conversion.models import District
from conversion.rules import require_consultant


class InvitationRefused(Exception):
    """Why this person cannot be added or removed (who may add or remove is rules.require_consultant's)."""


def invitation_path(user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("accept_invitation", kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)})


def user_for_link(uidb64: str, token: str):
    """The invited user when the link is valid and unspent, else None."""
    try:
        pk = force_str(urlsafe_base64_decode(uidb64))
        user = get_user_model().objects.get(pk=pk)
    except (TypeError, ValueError, OverflowError, get_user_model().DoesNotExist):
        return None
    if not user.is_active or user.is_staff or not default_token_generator.check_token(user, token):
        return None
    return user


@transaction.atomic
def invite_admin(district: District, email: str, *, by, site_url: str):
    """Make the person at `email` an admin of `district` and e-mail them; only consultants may.

    A new person gets an account without a password and a link to set one; someone who already has a
    password is told they now administer this district too.
    """
    require_consultant(by, "Only an implementation consultant can add people to a district.")
    email = get_user_model().objects.normalize_email(email.strip()).lower()
    users = get_user_model().objects
    user = users.filter(email__iexact=email).first() or users.filter(username__iexact=email).first()
    if user is not None and user.is_staff:
        raise InvitationRefused(f"{email} is an implementation consultant: they see every district already.")
    if user is not None and district.admins.filter(pk=user.pk).exists() and user.has_usable_password():
        raise InvitationRefused(f"{email} is an admin of this district already.")
    if user is None:
        user = users.create_user(username=email, email=email)  # no password: unusable until they set one
    elif not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])
    district.admins.add(user)
    needs_password = not user.has_usable_password()
    context = {
        "district": district,
        "user": user,
        "invited_by": by,
        "needs_password": needs_password,
        "link": site_url.rstrip("/") + (invitation_path(user) if needs_password else reverse("login")),
        "days": settings.PASSWORD_RESET_TIMEOUT // 86400,
    }
    send_mail(
        subject=f"You are invited to {district.name}'s SIF conversion",
        message=render_to_string("invitations/invitation_email.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    audit.record(
        district=district,
        conversion=None,
        user=by,
        action="admin_invited",
        summary=f"Invited {email} as a district admin",
        detail={"user": user.pk, "email": email},
    )
    return user


@transaction.atomic
def remove_admin(district: District, user, *, by) -> None:
    """Take `user` off the district; someone left with no district cannot sign in or use a pending link."""
    require_consultant(by, "Only an implementation consultant can remove people from a district.")
    if not district.admins.filter(pk=user.pk).exists():
        raise InvitationRefused("That person is not an admin of this district.")
    district.admins.remove(user)
    if not user.is_staff and not user.administered_districts.exists():
        user.is_active = False
        user.save(update_fields=["is_active"])
    audit.record(
        district=district,
        conversion=None,
        user=by,
        action="admin_removed",
        summary=f"Removed {user.email or user.get_username()} as a district admin",
        detail={"user": user.pk},
    )


@transaction.atomic
def accept(user, form) -> None:
    """Save the password the invited person chose (a valid SetPasswordForm); the link is spent with it."""
    form.save()
    for district in user.administered_districts.all():
        audit.record(
            district=district,
            conversion=None,
            user=user,
            action="invitation_accepted",
            summary=f"{user.get_username()} set a password and joined as a district admin",
        )
