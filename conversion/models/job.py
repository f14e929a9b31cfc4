"""Background work that pages show progress of: one row per run, claimed by exactly one worker."""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone


class JobKind(models.TextChoices):
    TEST_CONNECTION = "test_connection", "Connection test"
    PULL = "pull", "Pull from the zone"
    PAUSE_LEGACY = "pause_legacy", "Pause of the legacy Canvas sync"
    MAPPING = "mapping", "Mapping check against Canvas"
    REMAP = "remap", "Remap Canvas users to DCID"
    REMAP_ROLLBACK = "remap_rollback", "Roll the remap back"
    SYNC = "sync", "Sync to Canvas"
    REMASTER = "remaster", "Full sync to Canvas (remaster)"
    GRADE_PASSBACK = "grade_passback", "Grade passback"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class Job(models.Model):
    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=20, choices=JobKind.choices)
    state = models.CharField(max_length=10, choices=JobState.choices, default=JobState.QUEUED)
    # Same key, same work: a second trigger for the same (district, business date) finds the first row.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    params = models.JSONField(default=dict, blank=True)
    current = models.PositiveBigIntegerField(default=0)
    total = models.PositiveBigIntegerField(null=True, blank=True)
    message = models.CharField(max_length=300, blank=True)
    detail = models.JSONField(default=dict, blank=True, help_text="Figures the page draws: counts per object, etc.")
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["conversion", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.get_state_display()})"

    @property
    def is_finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def percent(self) -> int | None:
        if not self.total:
            return 100 if self.state == JobState.SUCCEEDED else None
        return min(100, int(self.current * 100 / self.total))

    @property
    def duration(self) -> dt.timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    def merge_detail(self, values: dict) -> None:
        """Add `values` to the job's detail and write it at once (facts a rerun must find, e.g. an import id)."""
        self.detail = {**self.detail, **values}
        Job.objects.filter(pk=self.pk).update(detail=self.detail)

    def claim(self, worker: str) -> bool:
        """Take this job for `worker`; True for exactly one caller.

        A queued job is free; a running one is free only when its worker stopped sending heartbeats
        (killed mid-job), so a redelivered task can finish what a dead worker started.
        """
        now = timezone.now()
        stale = now - dt.timedelta(seconds=settings.JOB_LEASE_SECONDS)
        claimable = Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING, heartbeat_at__lt=stale)
        changed = Job.objects.filter(claimable, pk=self.pk).update(
            state=JobState.RUNNING, worker=worker, attempts=F("attempts") + 1,
            started_at=now, heartbeat_at=now, error="",
        )
        if changed == 1:
            self.refresh_from_db()
        return changed == 1
