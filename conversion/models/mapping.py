"""Step 4's result: how the pulled SIF data matches what Canvas holds, row by row."""

from __future__ import annotations

from django.db import models


class MatchStatus(models.TextChoices):
    MATCHED = "matched", "Matched"
    ONLY_CANVAS = "only_canvas", "Only in Canvas"
    ONLY_SIF = "only_sif", "Only in SIF"
    CONFLICT = "conflict", "Conflicting"


class MappingDiffQuerySet(models.QuerySet["MappingDiff"]):
    def current(self, conversion) -> MappingDiff | None:
        """The newest diff, if it was computed from the newest complete snapshot (else it is stale)."""
        from conversion.models.snapshot import Snapshot

        snapshot = Snapshot.objects.latest_complete(conversion)
        if snapshot is None:
            return None
        return self.filter(conversion=conversion, snapshot=snapshot).order_by("-created_at", "-id").first()


class MappingDiff(models.Model):
    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="mapping_diffs")
    snapshot = models.ForeignKey("conversion.Snapshot", on_delete=models.CASCADE, related_name="mapping_diffs")
    job = models.ForeignKey("conversion.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    counts = models.JSONField(default=dict, blank=True, help_text="{kind: {status: n}}")
    blocking_count = models.PositiveIntegerField(default=0, help_text="Conflicts that stop approval.")
    fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = MappingDiffQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Mapping check #{self.pk} of {self.conversion} ({self.blocking_count} blocking)"


class MappingRow(models.Model):
    diff = models.ForeignKey(MappingDiff, on_delete=models.CASCADE, related_name="rows")
    kind = models.CharField(max_length=20, help_text="user, course, section or enrollment")
    status = models.CharField(max_length=12, choices=MatchStatus.choices)
    blocking = models.BooleanField(default=False)
    key = models.CharField(max_length=200, help_text="What the row is about, e.g. the PowerSchool ID.")
    name = models.CharField(max_length=300, blank=True)
    sif_value = models.CharField(max_length=300, blank=True)
    canvas_value = models.CharField(max_length=300, blank=True)
    dcid = models.CharField(max_length=32, blank=True)
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["kind", "status", "key"]
        indexes = [models.Index(fields=["diff", "kind", "status"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}: {self.get_status_display()}"
