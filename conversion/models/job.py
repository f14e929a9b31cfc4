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
    SYNC_UNDO = "sync_undo", "Undo a sync in Canvas"
    GRADE_PASSBACK = "grade_passback", "Grade passback"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_STATES = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)
ACTIVE_STATES = (JobState.QUEUED, JobState.RUNNING)


class JobLost(Exception):
    """The job is no longer this run's (its lease ran out and another worker took it, or it was finished):
    the run stops writing and leaves the outcome to whoever holds it now."""


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
    error = models.TextField(blank=True, help_text="What went wrong, in words: shown to everyone who sees the job.")
    # An unexpected fault's traceback (server paths and all): for consultants and the logs, never district admins.
    traceback = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # A consultant asked a running job to stop: its run stops at its next step (see jobs.Progress).
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["conversion", "kind", "-created_at"])]
        constraints = [
            # Parallel presses (or a press racing the scheduler) cannot start the same work twice: the
            # database refuses a second active job of a kind, whatever the checks before the insert saw.
            models.UniqueConstraint(
                fields=["conversion", "kind"], condition=Q(state__in=ACTIVE_STATES), name="one_active_job_per_kind"
            ),
        ]

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

    def held(self) -> models.QuerySet:
        """This row while it is still running under this run's claim (`worker` is the claim's own name)."""
        return Job.objects.filter(pk=self.pk, state=JobState.RUNNING, worker=self.worker)

    def merge_detail(self, values: dict) -> None:
        """Add `values` to the job's detail and write it at once (facts a rerun must find, e.g. an import id).

        Only while this run still holds the job: a run that lost it raises JobLost and writes nothing.
        """
        detail = {**self.detail, **values}
        if not self.held().update(detail=detail):
            raise JobLost(f"job {self.pk} is no longer held by {self.worker}")
        self.detail = detail

    def claim(self, worker: str) -> bool:
        """Take this job for `worker`; True for exactly one caller.

        A queued job is free; a running one is free only when its worker stopped sending heartbeats
        (killed mid-job), so a redelivered task can finish what a dead worker started.
        """
        now = timezone.now()
        stale = now - dt.timedelta(seconds=settings.JOB_LEASE_SECONDS)
        claimable = Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING, heartbeat_at__lt=stale)
        # A job that kept killing its worker is not run again (the stale-job re-send fails it, with why).
        claimable &= Q(attempts__lt=settings.JOB_MAX_ATTEMPTS)
        changed = Job.objects.filter(claimable, pk=self.pk).update(
            state=JobState.RUNNING,
            worker=worker,
            attempts=F("attempts") + 1,
            started_at=now,
            heartbeat_at=now,
            error="",
        )
        if changed == 1:
            self.refresh_from_db()
        return changed == 1
