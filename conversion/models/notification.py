"""In-app notifications (alerts and notes), each also e-mailed at once or in a daily digest."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class NotificationQuerySet(models.QuerySet):
    def unread(self) -> NotificationQuerySet:
        # No arguments, so a template can ask `user.notifications.unread` without a view's help.
        return self.filter(read_at__isnull=True).select_related("conversion__district").order_by("-created_at", "-id")


class NotificationKind(models.TextChoices):
    APPROVAL = "approval", "A district approved"
    JOB_FAILED = "job_failed", "A job failed"
    SYNC_HELD = "sync_held", "A sync is held"
    DIAGNOSTIC = "diagnostic", "A new diagnostic"
    NIGHTLY_MISSING = "nightly_missing", "A nightly sync did not run"
    GPB_REFUSED = "gpb_refused", "Grade passback refusals"
    DATE_SOON = "date_soon", "A pause or go-live date is near"
    WAITING = "waiting", "An approval waits on the district"


class Notification(models.Model):
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices, default=NotificationKind.APPROVAL)
    key = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="What the note is about (e.g. job_failed:12): one note per recipient and key, so a retried "
        "job or a second run of a check tells no one twice.",
    )
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it went out by e-mail (alone or in a digest)."
    )

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"], condition=~Q(key=""), name="one_notification_per_key"),
        ]

    def __str__(self) -> str:
        return self.text


class Delivery(models.TextChoices):
    IMMEDIATE = "immediate", "Each alert by e-mail as it happens"
    DIGEST = "digest", "One e-mail a day with every alert"


class AlertPreference(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_preference")
    delivery = models.CharField(max_length=10, choices=Delivery.choices, default=Delivery.IMMEDIATE)

    def __str__(self) -> str:
        return f"{self.user}: {self.delivery}"
