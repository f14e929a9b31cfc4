"""Telling implementation consultants that a district did its part, and marking notes read."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from conversion.models import Approval, Conversion, Notification


def approval_text(conversion: Conversion, approval: Approval) -> str:
    who = approval.approved_by.get_username() if approval.approved_by_id else "the district"
    text = f"{conversion.district.name} ({conversion.school_year_label}): {approval.get_kind_display()}, by {who}."
    if approval.note:
        text += f" Note: {approval.note}"
    return text[:500]


def notify_consultants_of_approval(conversion: Conversion, approval: Approval) -> list[Notification]:
    """One unread note per active consultant (staff user); called by workflow.perform after an approval."""
    text = approval_text(conversion, approval)
    consultants = get_user_model().objects.filter(is_staff=True, is_active=True)
    return Notification.objects.bulk_create(
        [Notification(recipient=user, conversion=conversion, text=text) for user in consultants]
    )


@transaction.atomic
def mark_read(user, notification_id: int | None = None) -> int:
    """Mark one of `user`'s notes read (or all of them when no id is given); returns how many changed.

    Only the user's own notes are touched: another user's id changes nothing.
    """
    notes = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_id is not None:
        notes = notes.filter(pk=notification_id)
    return notes.update(read_at=timezone.now())
