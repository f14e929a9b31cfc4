"""A note to an implementation consultant that a district did its part (an approval)."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class NotificationQuerySet(models.QuerySet):
    def unread(self) -> "NotificationQuerySet":
        # No arguments, so a template can ask `user.notifications.unread` without a view's help.
        return self.filter(read_at__isnull=True).select_related("conversion__district").order_by("-created_at", "-id")


class Notification(models.Model):
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="notifications")
    text = models.CharField(max_length=500)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return self.text
