"""At most N jobs of the whole fleet talk to one ZIS host at a time; a job that finds no free slot waits in the
broker, not in a worker.

A ZIS is often hosted: one server (one host and port) carries the zones of many districts, and a slow or
overloaded one must neither be hammered by every worker at once nor hold workers that other districts' jobs could
use. So every job that talks to a ZIS (a pull, a sync or remaster, which pull first, a connection test, a grade
passback) first takes one of its host's slots:

* a slot is a PostgreSQL session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own, held for
  the whole run of the job. PostgreSQL, which every worker already shares, is the only state: no home-made queue or
  counter, no lease to renew, and a worker that dies (even by SIGKILL, or a host cut off) loses its connection and
  so its slot, which the server frees at once (or when TCP keepalive notices a dead peer);
* a job whose host's slots are all taken is sent again later (Celery `Task.retry(countdown=...)`, jittered) and the
  worker is free for the next message at once, so one slow ZIS holds back only its own districts;
* the limit is per host (`zis_host`): `ZIS_MAX_CONCURRENT_JOBS` (default 2), with `ZIS_CONCURRENCY` overriding it
  per host ("zis.example.org:443=4,10.0.0.5:80=1").

The slot is taken in `SlotTask.__call__`, the base class of every task of the app (conversion/celery.py), before
`jobs.run_job` claims the row, so the tasks themselves do not change. It is held until the job is done with the ZIS:
a sync frees it as soon as its pull is stored (`done_with_zis`), so the Canvas part of one district's night (reading
Canvas, building, importing and waiting for the import) does not keep another district of the same ZIS waiting.
A job that never says so holds its slot to its end.

SQLite (the embedded default, one worker) has no advisory locks: there every job runs without a limit. Behind a
connection pooler in transaction mode (PgBouncer) a session lock would not stay with its session: the slot
connections must then go to PostgreSQL directly (or through a session-mode pool).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import random
import threading
from typing import Any
from urllib.parse import urlsplit

from celery import Task
from django.conf import settings
from django.db import connections
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 2
DEFAULT_RETRY_SECONDS = 15.0
WAITING_FOR_SLOT = "Waiting for the ZIS: {limit} of its jobs are running already"


def zis_host(zis_url: str) -> str:
    """The host a ZIS URL names, with its port (the scheme's default when none is given), lower case."""
    parts = urlsplit(zis_url.strip())
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def limit_for(host: str) -> int:
    """How many jobs may talk to `host` at once: its ZIS_CONCURRENCY entry, else ZIS_MAX_CONCURRENT_JOBS."""
    configured = getattr(settings, "ZIS_CONCURRENCY", "") or ""
    overrides = parse_overrides(configured) if isinstance(configured, str) else dict(configured)
    return max(1, int(overrides.get(host, getattr(settings, "ZIS_MAX_CONCURRENT_JOBS", DEFAULT_LIMIT))))


def parse_overrides(text: str) -> dict[str, int]:
    """ "host:port=N,host2=M" (a host without a port means port 80) as {"host:port": N}."""
    overrides = {}
    for item in text.split(","):
        if "=" not in item:
            continue
        host, _, count = item.strip().rpartition("=")
        host = host.strip().lower()
        overrides[host if ":" in host else f"{host}:80"] = int(count)
    return overrides


def lock_key(host: str, slot: int) -> int:
    """The advisory lock's bigint key of one slot of one host (a 64-bit hash; a collision with another lock of
    ours is about one in 2^64)."""
    digest = hashlib.blake2b(f"sifconvert-zis-slot|{host}|{slot}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Slot:
    """One held slot: its own database connection, whose session holds the lock. `release()` ends both."""

    def __init__(self, host: str, index: int | None, connection: Any = None):
        self.host = host
        self.index = index
        self._connection = connection

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [lock_key(self.host, self.index or 0)])
        except Exception:  # noqa: BLE001 - closing the session below frees the lock whatever went wrong here
            log.warning("slot %s of %s: unlock failed; closing its session frees it", self.index, self.host)
        finally:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _advisory_locks_available() -> bool:
    return connections["default"].vendor == "postgresql"


def acquire(host: str, limit: int | None = None) -> Slot | None:
    """A free slot of `host` (one of `limit`), or None when all are taken. Never waits."""
    if not _advisory_locks_available():
        return Slot(host, None)
    limit = limit_for(host) if limit is None else limit
    connection = connections.create_connection("default")  # a session of its own, not the job's
    try:
        with connection.cursor() as cursor:
            # Slots in a random order: a host's first slot is not everyone's first try.
            for index in random.sample(range(limit), limit):
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [lock_key(host, index)])
                if cursor.fetchone()[0]:
                    return Slot(host, index, connection)
    except BaseException:
        connection.close()
        raise
    connection.close()
    return None


def held(host: str, limit: int | None = None) -> int:
    """How many of `host`'s slots are held now, by any session (for pages and tests)."""
    if not _advisory_locks_available():
        return 0
    limit = limit_for(host) if limit is None else limit
    keys = [lock_key(host, i) for i in range(limit)]
    with connections["default"].cursor() as cursor:
        # A bigint advisory key shows in pg_locks as classid (high 32 bits) and objid (low 32 bits), objsubid 1.
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = ANY(%s)",
            [keys],
        )
        return int(cursor.fetchone()[0])


def host_for_job(job_id: int) -> str | None:
    """The ZIS host whose slot the job needs before it runs, or None: not a ZIS job, no ZIS set, or a job no run
    may claim now (finished, or running under a live lease), which `run_job` will leave alone at once."""
    from conversion.models import Job, JobKind, JobState

    kinds = {JobKind.PULL, JobKind.SYNC, JobKind.REMASTER, JobKind.TEST_CONNECTION, JobKind.GRADE_PASSBACK}
    stale = timezone.now() - dt.timedelta(seconds=settings.JOB_LEASE_SECONDS)
    # The same test as Job.claim: queued, or running with a heartbeat older than the lease.
    claimable = Q(state=JobState.QUEUED) | Q(state=JobState.RUNNING, heartbeat_at__lt=stale)
    row = Job.objects.filter(claimable, pk=job_id, kind__in=kinds).values_list("conversion__zis_url", flat=True).first()
    return zis_host(row) if row else None


def retry_countdown(retries: int = 0) -> float:
    """Seconds before a job without a slot is offered again: ZIS_SLOT_RETRY_SECONDS, growing with the retries
    already made up to four times that (a host with a long queue is asked less often: each retry costs a worker a
    few milliseconds), ±50% so that the waiting jobs of one host do not all come back in the same instant."""
    base = float(getattr(settings, "ZIS_SLOT_RETRY_SECONDS", DEFAULT_RETRY_SECONDS))
    return base * min(1 + retries / 4, 4) * random.uniform(0.5, 1.5)


def _say_waiting(job_id: int, limit: int) -> None:
    from conversion.jobs import WAITING_MESSAGE
    from conversion.models import Job, JobState

    Job.objects.filter(pk=job_id, state=JobState.QUEUED, message=WAITING_MESSAGE).update(
        message=WAITING_FOR_SLOT.format(limit=limit)
    )


class SlotTask(Task):
    """The app's task base class: a task called with a `job_id` of a ZIS job runs inside one of its host's slots,
    or is retried later when none is free. Every other task runs as it is."""

    # A job waits for a slot as long as it takes (slots are held only by live sessions, so each wait ends); no task
    # of ours retries for any other reason.
    max_retries = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        job_id = kwargs.get("job_id")
        if job_id is None or self.request.is_eager:  # eager runs (tests, one process) need no fleet limit
            return super().__call__(*args, **kwargs)
        host = host_for_job(int(job_id))
        if host is None:
            return super().__call__(*args, **kwargs)
        limit = limit_for(host)
        slot = acquire(host, limit)
        if slot is None:
            _say_waiting(int(job_id), limit)
            log.info("job %s: all %s slots of ZIS %s are taken; offered again later", job_id, limit, host)
            raise self.retry(countdown=retry_countdown(self.request.retries or 0))
        _running.slot = slot
        try:
            with slot:
                return super().__call__(*args, **kwargs)
        finally:
            _running.slot = None


# The slot of the job this thread runs (a worker runs one task per thread, whatever its pool).
_running = threading.local()


def done_with_zis() -> None:
    """The job this thread runs will not talk to its ZIS again: free its slot now for another job of that host.
    Nothing happens outside a slotted job (eager runs, tests, the embedded default's single worker)."""
    slot = getattr(_running, "slot", None)
    if slot is not None:
        slot.release()
        log.info("ZIS slot %s of %s freed: the job is done with the ZIS", slot.index, slot.host)
