"""What the scheduler (Celery beat) sets off: date-driven moves, nightly syncs, grade passback runs.

The beat schedule itself lives in the database (django-celery-beat); `install_schedule` writes it.
The tasks beat fires (conversion/tasks.py) call the functions here; this module starts jobs through
`conversion.jobs` and never imports the tasks (import-linter's layers contract holds that).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, NamedTuple, TypedDict

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from conversion import audit, jobs, signals, workflow
from conversion.models import Conversion, ConversionState, GpbState, Job, JobKind, JobState, Snapshot
from conversion.services.portfolio import SYNC_ZONE

if TYPE_CHECKING:
    # (django-celery-beat ships no types: ignored here until pyproject tells mypy so, then unused.)
    from django_celery_beat.models import CrontabSchedule  # type: ignore[import-untyped, unused-ignore]

log = logging.getLogger(__name__)


class DueDateMoves(TypedDict):
    """The conversions the daily run moved on, by pk."""

    paused: list[int]
    live: list[int]


class NightlyStarts(TypedDict):
    """The nightly run: its business date, the sync jobs it started and those already there (by pk)."""

    business_date: str
    started: list[int]
    already: list[int]


class HourlyStarts(TypedDict):
    """The grade passback jobs the hourly run started (by pk)."""

    started: list[int]


def business_date(now: dt.datetime | None = None) -> dt.date:
    """The day a nightly sync belongs to: the Mountain-time date at which it fires."""
    return (now or timezone.now()).astimezone(SYNC_ZONE).date()


def advance_due_dates() -> DueDateMoves:
    moved = DueDateMoves(paused=[], live=[])
    for conversion in Conversion.objects.filter(state=ConversionState.PAUSE).select_related("district"):
        if not workflow.guard_pause_date_reached(conversion):
            workflow.perform(conversion, "pause_legacy_sync", user=None, reason="Pause date reached")
            moved["paused"].append(conversion.pk)
    for conversion in Conversion.objects.filter(state=ConversionState.GO_LIVE).select_related("district"):
        if not workflow.guard_go_live_date_reached(conversion) and not workflow.guard_remap_verified(conversion):
            workflow.perform(conversion, "go_live", user=None, reason="Go-live date reached")
            moved["live"].append(conversion.pk)
    return moved


def start_nightly_syncs(now: dt.datetime | None = None) -> NightlyStarts:
    """One sync job per live district and business date: a duplicate or late trigger finds the first."""
    day = business_date(now)
    started: list[int] = []
    existing: list[int] = []
    live = Conversion.objects.filter(state=ConversionState.LIVE, nightly_sync_paused=False).select_related("district")
    for conversion in live:
        job: Job | None
        try:
            job, created = jobs.start_job(
                conversion,
                JobKind.SYNC,
                params={"business_date": day.isoformat(), "trigger": "nightly"},
                idempotency_key=f"sync:{conversion.pk}:{day.isoformat()}",
            )
        except jobs.JobAlreadyActive as busy:  # a manual sync still running: it is tonight's sync
            job, created = busy.job, False
        if job is not None:
            (started if created else existing).append(job.pk)
    return NightlyStarts(business_date=day.isoformat(), started=started, already=existing)


def start_grade_passback_runs(now: dt.datetime | None = None) -> HourlyStarts:
    now = now or timezone.now()
    hour = now.astimezone(SYNC_ZONE).strftime("%Y-%m-%dT%H")
    started: list[int] = []
    for conversion in Conversion.objects.filter(gpb_state=GpbState.ENABLED).select_related("district"):
        try:
            job, created = jobs.start_job(
                conversion,
                JobKind.GRADE_PASSBACK,
                params={"trigger": "hourly"},
                idempotency_key=f"gpb:{conversion.pk}:{hour}",
            )
        except jobs.JobAlreadyActive:  # the last hour's run is still going: it carries this hour's grades
            continue
        if created:
            started.append(job.pk)
    return HourlyStarts(started=started)


def requeue_stale_jobs() -> int:
    """Jobs that lost their worker (or their Celery message) are sent again; `Job.claim` keeps it safe.

    A job whose runs keep dying (each claim counts an attempt) is failed with the reason after
    JOB_MAX_ATTEMPTS instead of being sent again for ever. Also prunes abandoned receiving snapshots.
    """
    lease = dt.timedelta(seconds=settings.JOB_LEASE_SECONDS)
    cutoff = timezone.now() - lease
    stale = Job.objects.filter(
        Q(state=JobState.RUNNING, heartbeat_at__lt=cutoff) | Q(state=JobState.QUEUED, created_at__lt=cutoff)
    ).select_related("conversion__district")
    count = 0
    for job in stale:
        if job.cancel_requested_at and job.state == JobState.RUNNING:
            _end(job, cutoff, JobState.CANCELLED, "Cancelled at a consultant's request (its worker had stopped).")
            continue
        if job.attempts >= settings.JOB_MAX_ATTEMPTS:
            _end(
                job,
                cutoff,
                JobState.FAILED,
                f"Stopped after {job.attempts} attempts: each run ended without finishing (its worker was killed or "
                "ran out of memory). It is not sent again; look at the workers' logs, then start it again.",
            )
            continue
        if jobs.enqueue_job(job):
            count += 1
    prune_abandoned_snapshots()
    return count


def _end(job: Job, cutoff: dt.datetime, state: JobState, reason: str) -> None:
    """End a stale job that is not to be sent again (still stale: no run took it meanwhile), audited."""
    ended = Job.objects.filter(pk=job.pk, state=JobState.RUNNING, heartbeat_at__lt=cutoff).update(
        state=state, error=reason, message=reason[:300], finished_at=timezone.now()
    )
    if ended:
        log.warning("job %s ended %s by the stale-job sweep: %s", job.pk, state, reason)
        audit.record(
            district=job.conversion.district,
            conversion=job.conversion,
            user=None,
            action=f"job_{state}:{job.kind}",
            summary=f"{JobKind(job.kind).label}: {JobState(state).label.lower()}",
            detail={"job": job.pk, "error": reason[:300], "attempts": job.attempts},
        )
        signals.job_finished.send(sender=Job, job=Job.objects.get(pk=job.pk))


def prune_abandoned_snapshots(now: dt.datetime | None = None) -> int:
    """Snapshots a failed or cancelled pull left "receiving" are deleted after RECEIVING_SNAPSHOT_MAX_HOURS."""
    before = (now or timezone.now()) - dt.timedelta(hours=settings.RECEIVING_SNAPSHOT_MAX_HOURS)
    return Snapshot.objects.prune_abandoned(before)


class BeatEntry(NamedTuple):
    """One entry of the beat schedule: its name (shown in the admin), the task it fires, and when."""

    name: str
    task: str
    crontab: CrontabSchedule


def install_schedule() -> list[str]:
    """Write the beat schedule into the database (idempotent). Times are Mountain time, DST-aware.

    Entries of ours (tasks named conversion.scheduled.*) no longer in the list are removed; returns one
    line per entry, for the command's output.
    """
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    def crontab(minute: str, hour: str) -> CrontabSchedule:
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="America/Denver",
        )
        return schedule

    entries = [
        BeatEntry("Nightly Canvas syncs (00:00 Mountain)", "conversion.scheduled.nightly_syncs", crontab("0", "0")),
        BeatEntry(
            "Pause and go-live dates (00:05 Mountain)", "conversion.scheduled.advance_due_dates", crontab("5", "0")
        ),
        BeatEntry("Grade passback (hourly)", "conversion.scheduled.grade_passback", crontab("15", "*")),
        BeatEntry(
            "Re-send stale jobs (every 5 minutes)", "conversion.scheduled.requeue_stale_jobs", crontab("*/5", "*")
        ),
        BeatEntry(
            "Alert: nightly syncs not run (01:00 Mountain)",
            "conversion.scheduled.check_nightly_syncs",
            crontab("0", "1"),
        ),
        BeatEntry(
            "Alert: pause and go-live dates a week and a day away (06:00 Mountain)",
            "conversion.scheduled.remind_due_dates",
            crontab("0", "6"),
        ),
        BeatEntry("Daily digest of alerts (07:00 Mountain)", "conversion.scheduled.daily_digest", crontab("0", "7")),
        BeatEntry(
            "Legacy SIS imports after the pause (hourly)",
            "conversion.scheduled.check_legacy_imports",
            crontab("40", "*"),
        ),
    ]
    lines = []
    for entry in entries:
        _, created = PeriodicTask.objects.update_or_create(
            name=entry.name, defaults={"task": entry.task, "crontab": entry.crontab, "enabled": True}
        )
        lines.append(f"{'added' if created else 'kept'}: {entry.name} [{entry.task}]")
    stale = PeriodicTask.objects.filter(task__startswith="conversion.scheduled.").exclude(
        name__in=[entry.name for entry in entries]
    )
    lines += [f"removed: {name}" for name in stale.values_list("name", flat=True)]
    stale.delete()
    return lines
