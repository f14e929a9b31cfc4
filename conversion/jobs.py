"""Starting background jobs, running them once, and writing their progress where pages read it.

A job is a `Job` row first and a Celery message second: the row is what the page polls and what makes a
redelivered message harmless (`Job.claim` lets exactly one worker run it). The database allows one active
(queued or running) job per conversion and kind, so parallel presses start the work once.

This module does not import `conversion.tasks`: the tasks sit above it (each calls `run_job` with its
runner) and it sends a job's message by the task's name (`JOB_TASK_NAMES`), looked up in the Celery app's
task registry. The registry rather than `send_task`, because a registered task honours
CELERY_TASK_ALWAYS_EAGER (the embedded default and some tests run jobs in the sending process) and fails
loudly when the task was never imported; `conversion.apps` imports `conversion.tasks` in every process.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, NamedTuple

from celery import current_app
from celery.app.task import Task
from django.db import IntegrityError, transaction
from django.utils import timezone

from conversion import audit, signals
from conversion.models import ACTIVE_STATES, Conversion, Job, JobKind, JobLost, JobState
from conversion.rules import can_drive, require

log = logging.getLogger(__name__)

# Well inside JOB_LEASE_SECONDS, so a live worker never loses a job it is waiting on.
HEARTBEAT_SECONDS = 20
# How often a running job writes its progress: the pages poll every 2 s, so a poll always finds news.
PROGRESS_INTERVAL_SECONDS = 0.5
# What a job says while no worker has it, and when its message could not reach the broker.
WAITING_MESSAGE = "Waiting for a worker"
BROKER_DOWN_MESSAGE = (
    "The workers cannot be reached right now: the job will start when they are back (it is sent again automatically)."
)
ALREADY_ACTIVE = "One is already queued or running."

# kind -> the name of the Celery task that runs it (defined in conversion/tasks.py under these names). The
# names are in CELERY_TASK_ROUTES (by prefix: sif or canvas queue), in queued messages and in beat's
# database: never rename one.
JOB_TASK_NAMES: Final[Mapping[str, str]] = MappingProxyType(
    {
        JobKind.TEST_CONNECTION: "conversion.sif.test_connection",
        JobKind.PULL: "conversion.sif.pull",
        JobKind.MAPPING: "conversion.canvas.mapping",
        JobKind.REMAP: "conversion.canvas.remap",
        JobKind.REMAP_ROLLBACK: "conversion.canvas.remap_rollback",
        JobKind.SYNC: "conversion.canvas.sync",
        JobKind.REMASTER: "conversion.canvas.remaster",
        JobKind.SYNC_UNDO: "conversion.canvas.sync_undo",
        JobKind.GRADE_PASSBACK: "conversion.sif.grade_passback",
    }
)


def worker_name() -> str:
    """The name one claim runs under: host, process (read now, not when the module was imported, so every
    pool process forked from one worker has its own) and a random part (threads of one process, and two
    claims of one thread, differ too). The lease takeover and every write of the run compare this name."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class JobFailed(Exception):
    """A job stopped for a reason a person can act on; the message is shown on the page as it is."""


def summary(text: str, limit: int = 300) -> str:
    """`text` shortened to fit a job's message (`limit` characters) without ending mid-sentence: its first
    paragraph (lines wrapped inside a sentence are joined); when that is longer, the whole sentences that
    fit, else the words that fit followed by "…". The full text stays in the job's error."""
    paragraph = " ".join((text.strip().split("\n\n") or [""])[0].split())
    if len(paragraph) <= limit:
        return paragraph
    head = paragraph[:limit]
    ends = [i + 1 for i, ch in enumerate(head) if ch in ".!?" and (i + 1 == len(paragraph) or paragraph[i + 1] == " ")]
    if ends and ends[-1] >= limit // 3:
        return head[: ends[-1]]
    return head[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


class JobCancelled(Exception):
    """A consultant asked the job to stop; raised at the run's next step (its next progress write)."""


class JobAlreadyActive(Exception):
    """A job of this kind is already queued or running for the conversion (the database refused another)."""

    def __init__(self, job: Job | None):
        super().__init__(ALREADY_ACTIVE)
        self.job = job


class Progress:
    """Writes a job's progress to its row, at most every `interval` seconds, and renews its lease.

    Every write goes through the run's claim: a run that lost its job (taken over after its lease ran out)
    raises JobLost and writes nothing, and a run whose job a consultant cancelled raises JobCancelled.
    """

    def __init__(self, job: Job, interval: float = PROGRESS_INTERVAL_SECONDS):
        self.job = job
        self.interval = interval
        self._last_write = 0.0

    def update(
        self,
        current: int | None = None,
        total: int | None = None,
        message: str | None = None,
        detail: dict[str, Any] | None = None,
        *,
        force: bool = False,
    ) -> None:
        job = self.job
        if current is not None:
            job.current = current
        if total is not None:
            job.total = total
        if message is not None:
            job.message = summary(message)
        if detail:
            job.detail = {**job.detail, **detail}
        now = time.monotonic()
        if force or now - self._last_write >= self.interval:
            self._last_write = now
            job.heartbeat_at = timezone.now()
            written = (
                job.held()
                .filter(cancel_requested_at__isnull=True)
                .update(
                    current=job.current,
                    total=job.total,
                    message=job.message,
                    detail=job.detail,
                    heartbeat_at=job.heartbeat_at,
                )
            )
            if not written:
                raise self._stopped()

    def check(self) -> None:
        """Renew the lease and stop here if the job was cancelled or lost (for loops that wait on a peer)."""
        self.update(force=True)

    def add(self, n: int = 1, **kwargs) -> None:
        self.update(current=self.job.current + n, **kwargs)

    def _stopped(self) -> Exception:
        if self.job.held().filter(cancel_requested_at__isnull=False).exists():
            return JobCancelled("Cancelled at a consultant's request.")
        return JobLost(f"job {self.job.pk} is no longer held by {self.job.worker}")


Runner = Callable[[Job, Progress], None]


class StartedJob(NamedTuple):
    """What start_job found or made: the job, and whether this call created it."""

    job: Job
    created: bool


def start_job(
    conversion: Conversion,
    kind: str,
    *,
    user=None,
    params: dict | None = None,
    idempotency_key: str | None = None,
    enqueue: bool = True,
) -> StartedJob:
    """Create the job row and queue it once the transaction commits.

    With an idempotency key, a second call finds the first job instead of making another. Raises
    JobAlreadyActive when a job of this kind is already queued or running for the conversion.
    """
    if idempotency_key:
        existing = Job.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return StartedJob(existing, created=False)
    try:
        with transaction.atomic():
            job = Job.objects.create(
                conversion=conversion,
                kind=kind,
                requested_by=user,
                params=params or {},
                idempotency_key=idempotency_key,
                message=WAITING_MESSAGE,
            )
            audit.record(
                district=conversion.district,
                conversion=conversion,
                user=user,
                action=f"job_started:{kind}",
                summary=f"Started: {JobKind(kind).label}",
                detail={"job": job.pk, "params": params or {}},
            )
    except IntegrityError:
        # Either the same idempotency key won a race, or another active job of this kind holds the place.
        if idempotency_key:
            existing = Job.objects.filter(idempotency_key=idempotency_key).first()
            if existing:
                return StartedJob(existing, created=False)
        raise JobAlreadyActive(active_job(conversion, kind)) from None
    if enqueue:
        transaction.on_commit(lambda: enqueue_job(job))
    return StartedJob(job, created=True)


def active_job(conversion: Conversion, kind: str) -> Job | None:
    return Job.objects.filter(conversion=conversion, kind=kind, state__in=ACTIVE_STATES).first()


def job_task(kind: str) -> Task[Any, Any]:
    """The registered Celery task that runs jobs of `kind`: KeyError for a kind without one, NotRegistered
    when conversion.tasks was not imported in this process (a deployment fault, not a broker outage)."""
    return current_app.tasks[JOB_TASK_NAMES[kind]]


def enqueue_job(job: Job) -> bool:
    """Send the job's Celery message. With the broker unreachable the job stays queued, says so, and the
    stale-job re-send (every few minutes) sends it again once the broker is back. True when sent."""
    task = job_task(job.kind)  # outside the try: a missing task is not a broker outage
    try:
        task.apply_async(kwargs={"job_id": job.pk})
    except Exception:  # noqa: BLE001 - kombu raises many kinds (OperationalError, OSError, ...) for one cause
        log.exception("job %s: its message could not be sent to the broker; the re-send will retry", job.pk)
        Job.objects.filter(pk=job.pk, state=JobState.QUEUED).update(message=BROKER_DOWN_MESSAGE)
        job.message = BROKER_DOWN_MESSAGE
        return False
    if job.message == BROKER_DOWN_MESSAGE:
        Job.objects.filter(pk=job.pk, state=JobState.QUEUED, message=BROKER_DOWN_MESSAGE).update(
            message=WAITING_MESSAGE
        )
        job.message = WAITING_MESSAGE
    return True


def resend_unsent(conversion: Conversion, kind: str) -> Job | None:
    """A press on a job whose message never reached the broker sends it again (the job may start now); None
    when the active job of that kind (if any) was sent already. The job's message says how it went."""
    job = active_job(conversion, kind)
    if job is None or job.state != JobState.QUEUED or job.message != BROKER_DOWN_MESSAGE:
        return None
    enqueue_job(job)
    return job


def cancel_job(job: Job, *, user, reason: str = "") -> str:
    """A consultant stops a job: a queued one at once, a running one at its next step. Returns what happened."""
    require(can_drive(user, job.conversion.district), "Only an implementation consultant can cancel a job.")
    now = timezone.now()
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.is_finished:
            return "The job had already ended."
        if locked.cancel_requested_at:
            return "Cancelling: the job stops at its next step."
        label = JobKind(locked.kind).label
        if locked.state == JobState.QUEUED:
            Job.objects.filter(pk=locked.pk).update(
                state=JobState.CANCELLED,
                cancel_requested_at=now,
                finished_at=now,
                message="Cancelled before it started",
            )
            outcome = "Cancelled."
        else:
            Job.objects.filter(pk=locked.pk).update(cancel_requested_at=now)
            outcome = "Cancelling: the job stops at its next step."
        audit.record(
            district=locked.conversion.district,
            conversion=locked.conversion,
            user=user,
            action=f"job_cancel:{locked.kind}",
            summary=f"Asked to cancel: {label}",
            reason=reason,
            detail={"job": locked.pk, "state": locked.state},
        )
    job.refresh_from_db()
    return outcome


def run_job(job_id: int, runner: Runner) -> Job | None:
    """Claim the job and run it; a job someone else holds (or that is finished) is left alone."""
    job = Job.objects.select_related("conversion__district").filter(pk=job_id).first()
    if job is None:
        log.warning("job %s no longer exists: its message is dropped", job_id)
        return None
    if not job.claim(worker_name()):
        log.info("job %s not claimed (state %s): nothing to do", job_id, job.state)
        return None
    progress = Progress(job)
    heartbeat = _Heartbeat(job.pk, job.worker)
    heartbeat.start()
    try:
        runner(job, progress)
    except JobLost:
        log.warning("job %s was taken over by another worker; this run stops without an outcome", job_id)
    except JobCancelled as exc:
        _finish(job, JobState.CANCELLED, error=str(exc))
    except JobFailed as exc:
        _finish(job, JobState.FAILED, error=str(exc))
    except Exception as exc:  # An unexpected fault still ends the job visibly instead of leaving it running.
        log.exception("job %s failed", job_id)
        # Everyone sees what happened; the traceback (server paths) is for consultants and the logs.
        _finish(
            job,
            JobState.FAILED,
            error=f"Unexpected error: {type(exc).__name__}: {exc}",
            trace=traceback.format_exc(limit=8),
        )
    else:
        _finish(job, JobState.SUCCEEDED)
    finally:
        heartbeat.stop()
    return job


class _Heartbeat(threading.Thread):
    """Renews the job's lease while its runner waits on a peer (a slow ZIS, a long Canvas import).

    It dies with the worker process, so a killed worker's job still goes stale and is taken over.
    """

    def __init__(self, job_id: int, worker: str):
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.job_id = job_id
        self.worker = worker
        self._stopped = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self._stopped.wait(HEARTBEAT_SECONDS):
                Job.objects.filter(pk=self.job_id, state=JobState.RUNNING, worker=self.worker).update(
                    heartbeat_at=timezone.now()
                )
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=HEARTBEAT_SECONDS)


def _finish(job: Job, state: JobState, *, error: str = "", trace: str = "") -> None:
    job.state = state
    job.error = error
    job.traceback = trace
    job.finished_at = timezone.now()
    if state == JobState.SUCCEEDED and job.total:
        job.current = job.total
    if state == JobState.SUCCEEDED and not job.message:
        job.message = "Done"
    elif state in (JobState.FAILED, JobState.CANCELLED):
        job.message = summary(error) or "Failed"
    written = job.held().update(
        state=state,
        error=error,
        traceback=trace,
        finished_at=job.finished_at,
        current=job.current,
        message=job.message,
        detail=job.detail,
        total=job.total,
    )
    if not written:
        # Our lease ran out and another worker took the job over: its outcome is the one that counts.
        log.warning("job %s was taken over by another worker; this run's outcome (%s) is dropped", job.pk, state)
        return
    audit.record(
        district=job.conversion.district,
        conversion=job.conversion,
        user=None,
        action=f"job_{state}:{job.kind}",
        summary=f"{JobKind(job.kind).label}: {JobState(state).label.lower()}",
        detail={"job": job.pk, **({"error": job.message} if error else {})},
    )
    signals.job_finished.send(sender=Job, job=job)
