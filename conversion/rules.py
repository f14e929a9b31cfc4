"""Who may see and do what. Every view, service and task asks here; nothing else decides access.

- Implementation consultants are staff users: every district, and they drive the workflow.
- District admins are listed on a district: that district only, and they approve what it asks of them.
- Workers act as the system (no user).

A refusal is one exception, `AccessRefused`, carrying its reasons; `NotVisible` is the refusal for something
the user may not even know exists. `conversion.middleware.AccessRefusedMiddleware` answers them, in one
place, with 403 and 404. A view that shows a refusal as a message on the page it redirects to catches it.

Which role takes which workflow step, and which role edits which part of the step data, are tables that
live beside the steps they guard (`conversion.workflow.TRANSITIONS`, `conversion.services.step_data`); they
ask `role_in` here who the user is.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from django.db.models import Q, QuerySet

from conversion.models import District


class AccessRefused(Exception):
    """The person acting may not do this; `reasons` says why, one sentence each. Answered with 403."""

    status_code = 403

    def __init__(self, reasons: str | Iterable[str]):
        self.reasons: list[str] = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__(" ".join(self.reasons))


class NotVisible(AccessRefused):
    """What the user may not see at all. Answered with 404, as if it did not exist, so that other districts'
    names do not leak to district admins."""

    status_code = 404


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


# Who may act for a district: its consultant, or its own admins (approvals, the district's own choices).
CONSULTANT_OR_ADMIN = frozenset({Role.CONSULTANT, Role.DISTRICT_ADMIN})

ONLY_CONSULTANTS = "Only an implementation consultant can do this."


def _signed_in(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def is_consultant(user) -> bool:
    return _signed_in(user) and bool(user.is_staff)


def visible_to(user, district: str = "") -> Q:
    """A filter keeping the rows whose district (reached through the lookup path `district`, e.g.
    "conversion__district") the user may see: every one for a consultant, their own for a district admin,
    none for anyone else. A join on the district admins' table at most, never a subquery: the job poll
    runs it on every poll of every open page."""
    if is_consultant(user):
        return Q()
    if _signed_in(user):
        return Q(**{f"{district}__admins" if district else "admins": user})
    return Q(pk__in=[])


def districts_visible_to(user) -> QuerySet[District]:
    return District.objects.filter(visible_to(user))


def get_district_for_user(user, slug: str) -> District:
    """The district named by `slug`; NotVisible (404) when it does not exist *or* the user may not see it."""
    try:
        return districts_visible_to(user).get(slug=slug)
    except District.DoesNotExist:
        raise NotVisible("No such district.") from None


def role_in(user, district: District) -> Role | None:
    """The role `user` holds for `district` (None when none); `user=None` is the worker."""
    if user is None:
        return Role.WORKER
    if is_consultant(user):
        return Role.CONSULTANT
    if _signed_in(user) and district.admins.filter(pk=user.pk).exists():
        return Role.DISTRICT_ADMIN
    return None


def can_drive(user, district: District) -> bool:
    """Start, cancel and check jobs, change thresholds, policies and school years: consultants only."""
    return role_in(user, district) is Role.CONSULTANT


def can_act_for(user, district: District) -> bool:
    """Approve and choose for the district (release a held sync, map grade categories, pick its schools):
    its consultant or one of its own admins."""
    return role_in(user, district) in CONSULTANT_OR_ADMIN


def require(allowed: bool, reason: str) -> None:
    """Raise AccessRefused(reason) unless `allowed` (the answer of one of the predicates above)."""
    if not allowed:
        raise AccessRefused(reason)


def require_consultant(user, reason: str = ONLY_CONSULTANTS) -> None:
    """For what no district admin does anywhere (onboarding, managing district admins)."""
    require(is_consultant(user), reason)
