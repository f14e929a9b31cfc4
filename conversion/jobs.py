"""Starting background jobs, running them once, and writing their progress where pages read it.

A job is a `Job` row first and a Celery message second: the row is what the page polls and what makes a
redelivered message harmless (`Job.claim` lets exactly one worker run it).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversion import audit
from conversion.models import Conversion, Job, JobKind, JobState

log = logging.getLogger(__name__)

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"
# Well inside JOB_LEASE_SECONDS, so a live worker never loses a job it is waiting on.
HEARTBEAT_SECONDS = 20
# How often a running job writes its progress: the pages poll every 2 s, so a poll always finds news.
PROGRESS_INTERVAL_SECONDS = 0.5


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
        return head[:ends[-1]]
    return head[:limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"


class Progress:
    """Writes a job's progress to its row, at most every `interval` seconds, and renews its lease."""

    def __init__(self, job: Job, interval: float = PROGRESS_INTERVAL_SECONDS):
        self.job = job
        self.interval = interval
        self._last_write = 0.0

    def update(self, current: int | None = None, total: int | None = None, message: str | None = None,
               detail: dict[str, Any] | None = None, *, force: bool = False) -> None:
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
            Job.objects.filter(pk=job.pk).update(
                current=job.current, total=job.total, message=job.message, detail=job.detail,
                heartbeat_at=job.heartbeat_at,
            )

    def add(self, n: int = 1, **kwargs) -> None:
        self.update(current=self.job.current + n, **kwargs)


Runner = Callable[[Job, Progress], None]


def start_job(conversion: Conversion, kind: str, *, user=None, params: dict | None = None,
              idempotency_key: str | None = None, enqueue: bool = True) -> tuple[Job, bool]:
    """Create the job row and queue it once the transaction commits. Returns (job, created).

    With an idempotency key, a second call finds the first job instead of making another.
    """
    if idempotency_key:
        existing = Job.objects.filter(idempotency_key=idempotency_key).first()
        if existing:
            return existing, False
    try:
        with transaction.atomic():
            job = Job.objects.create(
                conversion=conversion, kind=kind, requested_by=user, params=params or {},
                idempotency_key=idempotency_key, message="Waiting for a worker",
            )
            audit.record(
                district=conversion.district, conversion=conversion, user=user, action=f"job_started:{kind}",
                summary=f"Started: {JobKind(kind).label}", detail={"job": job.pk, "params": params or {}},
            )
    except IntegrityError:
        return Job.objects.get(idempotency_key=idempotency_key), False
    if enqueue:
        transaction.on_commit(lambda: enqueue_job(job))
    return job, True


def enqueue_job(job: Job) -> None:
    from conversion import tasks

    tasks.task_for(job.kind).apply_async(kwargs={"job_id": job.pk})


def run_job(job_id: int, runner: Runner) -> Job | None:
    """Claim the job and run it; a job someone else holds (or that is finished) is left alone."""
    job = Job.objects.select_related("conversion__district").filter(pk=job_id).first()
    if job is None:
        log.warning("job %s no longer exists: its message is dropped", job_id)
        return None
    if not job.claim(WORKER_NAME):
        log.info("job %s not claimed (state %s): nothing to do", job_id, job.state)
        return None
    progress = Progress(job)
    heartbeat = _Heartbeat(job.pk)
    heartbeat.start()
    try:
        runner(job, progress)
    except JobFailed as exc:
        _finish(job, JobState.FAILED, error=str(exc))
    except Exception as exc:  # An unexpected fault still ends the job visibly instead of leaving it running.
        log.exception("job %s failed", job_id)
        _finish(job, JobState.FAILED, error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc(limit=5)}")
    else:
        _finish(job, JobState.SUCCEEDED)
    finally:
        heartbeat.stop()
    return job


class _Heartbeat(threading.Thread):
    """Renews the job's lease while its runner waits on a peer (a slow ZIS, a long Canvas import).

    It dies with the worker process, so a killed worker's job still goes stale and is taken over.
    """

    def __init__(self, job_id: int):
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.job_id = job_id
        self._stopped = threading.Event()

    def run(self) -> None:
        from django.db import connection

        try:
            while not self._stopped.wait(HEARTBEAT_SECONDS):
                Job.objects.filter(pk=self.job_id, state=JobState.RUNNING, worker=WORKER_NAME).update(
                    heartbeat_at=timezone.now())
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=HEARTBEAT_SECONDS)


def _finish(job: Job, state: str, *, error: str = "") -> None:
    if not Job.objects.filter(pk=job.pk, state=JobState.RUNNING, worker=job.worker).exists():
        # Our lease ran out and another worker took the job over: its outcome is the one that counts.
        log.warning("job %s was taken over by another worker; this run's outcome (%s) is dropped", job.pk, state)
        return
    job.state = state
    job.error = error
    job.finished_at = timezone.now()
    if state == JobState.SUCCEEDED and job.total:
        job.current = job.total
    if state == JobState.SUCCEEDED and not job.message:
        job.message = "Done"
    elif state == JobState.FAILED:
        job.message = summary(error) or "Failed"
    job.save(update_fields=["state", "error", "finished_at", "current", "message", "detail", "total"])
    audit.record(
        district=job.conversion.district, conversion=job.conversion, user=None,
        action=f"job_{state}:{job.kind}", summary=f"{JobKind(job.kind).label}: {JobState(state).label.lower()}",
        detail={"job": job.pk, **({"error": job.message} if error else {})},
    )
