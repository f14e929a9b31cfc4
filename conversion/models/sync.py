"""Step 6's nightly syncs, and files the workers produce (CSVs, error reports) kept for download."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Artifact(models.Model):
    """A file a job produced: the remap's change_sis_id.csv and its reverse, a sync's error report, ..."""

    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="artifacts")
    job = models.ForeignKey(
        "conversion.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="artifacts"
    )
    kind = models.CharField(max_length=40)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100, default="text/csv")
    content = models.BinaryField()
    rows = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind}, {self.rows} rows)"


class SyncState(models.TextChoices):
    RUNNING = "running", "Running"
    SKIPPED = "skipped", "Skipped: no new data"
    HELD = "held", "Held for approval"
    SUBMITTED = "submitted", "Submitted to Canvas"
    IMPORTED = "imported", "Imported"
    IMPORTED_WITH_MESSAGES = "imported_with_messages", "Imported with messages"
    FAILED = "failed", "Failed"


SYNC_SUCCESS_STATES = (SyncState.IMPORTED, SyncState.IMPORTED_WITH_MESSAGES)


class SyncRun(models.Model):
    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="sync_runs")
    job = models.OneToOneField(
        "conversion.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="sync_run"
    )
    trigger = models.CharField(max_length=20, default="nightly", help_text="nightly, manual or release")
    business_date = models.DateField(null=True, blank=True, help_text="Mountain-time date of a nightly run.")
    state = models.CharField(max_length=30, choices=SyncState.choices, default=SyncState.RUNNING)
    snapshot = models.ForeignKey(
        "conversion.Snapshot", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fingerprint = models.CharField(max_length=64, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="Rows per CSV we built.")
    skipped_users = models.JSONField(default=list, blank=True)
    previous_enrollments = models.PositiveIntegerField(null=True, blank=True)
    removed_enrollments = models.PositiveIntegerField(null=True, blank=True)
    held_reason = models.TextField(blank=True)
    # Set when the run went to Canvas whole, without diffing (a "remaster"): why. Empty for a diffed sync.
    full_import_reason = models.CharField(max_length=200, blank=True)
    canvas_import_id = models.BigIntegerField(null=True, blank=True)
    canvas_state = models.CharField(max_length=40, blank=True)
    canvas_progress = models.PositiveSmallIntegerField(null=True, blank=True)
    canvas_counts = models.JSONField(default=dict, blank=True)
    warning_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    submitted_at = models.DateTimeField(null=True, blank=True)
    # The submission's state, here only (canvas_import.submit_once reads and writes it through sync.py): when the
    # upload began and under which file name, so a rerun recognises an upload whose answer was lost.
    submitting_at = models.DateTimeField(null=True, blank=True)
    upload_name = models.CharField(max_length=120, blank=True)
    # What this run would remove compared with the last successful sync: totals and per school (services/removals.py).
    removals = models.JSONField(default=dict, blank=True)
    # Canvas's own change_threshold tripped: it imported the files whole, without diffing (nothing dropped).
    canvas_threshold_exceeded = models.BooleanField(default=False)
    # "Undo this sync": Canvas's state after restore_states (restored or partially_restored), and when.
    restored_state = models.CharField(max_length=30, blank=True)
    restored_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversion", "business_date"],
                condition=Q(trigger="nightly"),
                name="one_nightly_sync_per_business_date",
            ),
        ]

    def __str__(self) -> str:
        return f"Sync {self.pk} of {self.conversion} ({self.get_state_display()})"
