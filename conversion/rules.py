"""Who may see and do what. Every view and task asks here; nothing else decides access.

- Implementation consultants are staff users: every district, and they drive the workflow.
- District admins are listed on a district: that district only, and they approve what it asks of them.
- Workers act as the system (no user).
"""

from __future__ import annotations

import enum

from django.db.models import QuerySet
from django.http import Http404

from conversion.models import District


class Role(enum.Enum):
    CONSULTANT = "consultant"
    DISTRICT_ADMIN = "district admin"
    WORKER = "worker"

    @property
    def label(self) -> str:
        return {
            "consultant": "an implementation consultant",
            "district admin": "a district admin of this district",
            "worker": "the scheduler",
        }[self.value]


def is_consultant(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def districts_visible_to(user) -> QuerySet[District]:
    if is_consultant(user):
        return District.objects.all()
    if user and user.is_authenticated and user.is_active:
        return District.objects.filter(admins=user)
    return District.objects.none()


def get_district_for_user(user, slug: str) -> District:
    """The district named by `slug`, or 404 when it does not exist *or* the user may not see it.

    Answering 404 rather than 403 keeps other districts' names from leaking to district admins.
    """
    try:
        return districts_visible_to(user).get(slug=slug)
    except District.DoesNotExist:
        raise Http404("No such district.") from None


def role_in(user, district: District) -> Role | None:
    """The role `user` holds for `district` (None when none); `user=None` is the worker."""
    if user is None:
        return Role.WORKER
    if is_consultant(user):
        return Role.CONSULTANT
    if user.is_authenticated and user.is_active and district.admins.filter(pk=user.pk).exists():
        return Role.DISTRICT_ADMIN
    return None


def can_drive(user, district: District) -> bool:
    """Start jobs and edit step data: consultants only."""
    return role_in(user, district) is Role.CONSULTANT
