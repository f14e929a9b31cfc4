"""The audit trail: every state change, approval and edit of step data, with who, when, what and why."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    district = models.ForeignKey("conversion.District", on_delete=models.CASCADE, related_name="audit_events")
    conversion = models.ForeignKey(
        "conversion.Conversion", null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, help_text="User name at the time, or the worker that acted.")
    action = models.CharField(max_length=50)
    summary = models.CharField(max_length=300)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    reason = models.CharField(max_length=2000, blank=True)  # conversion.models.conversion.NOTE_MAX_LENGTH
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_label}: {self.summary}"
