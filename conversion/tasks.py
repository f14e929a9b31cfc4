"""Celery tasks: thin. Each takes keyword-only ids, claims its Job row and calls a service.

One named task per kind of job, each calling `run_job` with its runner, so that grep and mypy follow a job
from its kind to the code that does it. The task names never change: they are what CELERY_TASK_ROUTES
routes by, what queued messages and beat's database entries hold, and what `conversion.jobs` sends by
(`jobs.JOB_TASK_NAMES`; a test checks the two agree).

This module sits above `conversion.jobs` and `conversion.services.schedule`: it imports them, and neither
imports it (import-linter's contracts in pyproject.toml hold that), so there is no import cycle to hide.

SIF work goes to the `sif` queue and Canvas work to the `canvas` queue (see CELERY_TASK_ROUTES), so a
slow ZIS cannot starve Canvas syncs and each can be scaled on its own. The scheduled tasks (stale-job
re-sends, due dates, the nightly and hourly starts) go to the `maintenance` queue, consumed by a worker of
its own, so that workers busy with long jobs never delay them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from celery import shared_task
from celery.app.task import Task

from conversion.jobs import run_job
from conversion.models import JobKind
from conversion.services import schedule
from conversion.services.connection import run_test_connection
from conversion.services.gradepassback import run_grade_passback
from conversion.services.mapping import run_mapping
from conversion.services.pull import run_pull
from conversion.services.remap import run_remap, run_rollback
from conversion.services.sync import run_remaster, run_sync
from conversion.services.sync_undo import run_undo

# ---- one task per kind of job ------------------------------------------------------------------


@shared_task(name="conversion.sif.test_connection")
def connection_test(*, job_id: int) -> None:  # (not test_*: pytest would collect it where imported)
    """Register with the zone, ping it and read what the zone says of itself (step 1 and 2)."""
    run_job(job_id, run_test_connection)


@shared_task(name="conversion.sif.pull")
def pull(*, job_id: int) -> None:
    """Request every object the conversion reads from the zone and store it as a snapshot."""
    run_job(job_id, run_pull)


@shared_task(name="conversion.canvas.mapping")
def mapping(*, job_id: int) -> None:
    """Compare the latest snapshot with what Canvas holds (step 4)."""
    run_job(job_id, run_mapping)


@shared_task(name="conversion.canvas.remap")
def remap(*, job_id: int) -> None:
    """Move every Canvas user's sis_user_id onto its DCID (step 5)."""
    run_job(job_id, run_remap)


@shared_task(name="conversion.canvas.remap_rollback")
def remap_rollback(*, job_id: int) -> None:
    """Put back the sis_user_ids a remap changed."""
    run_job(job_id, run_rollback)


@shared_task(name="conversion.canvas.sync")
def sync(*, job_id: int) -> None:
    """Pull, build the SIS package and import it into Canvas when the data changed (nightly or by hand)."""
    run_job(job_id, run_sync)


@shared_task(name="conversion.canvas.remaster")
def remaster(*, job_id: int) -> None:
    """A full sync that sends the whole roster, whether or not it changed."""
    run_job(job_id, run_remaster)


@shared_task(name="conversion.canvas.sync_undo")
def sync_undo(*, job_id: int) -> None:
    """Undo a sync's changes in Canvas."""
    run_job(job_id, run_undo)


@shared_task(name="conversion.sif.grade_passback")
def grade_passback(*, job_id: int) -> None:
    """Send Canvas grades to PowerSchool through the zone (step 7)."""
    run_job(job_id, run_grade_passback)


# kind -> its task. Written out (not built from a table of strings) so that each entry is a name a reader
# and a type checker can follow.
TASKS: Final[Mapping[str, Task[Any, Any]]] = MappingProxyType(
    {
        JobKind.TEST_CONNECTION: connection_test,
        JobKind.PULL: pull,
        JobKind.MAPPING: mapping,
        JobKind.REMAP: remap,
        JobKind.REMAP_ROLLBACK: remap_rollback,
        JobKind.SYNC: sync,
        JobKind.REMASTER: remaster,
        JobKind.SYNC_UNDO: sync_undo,
        JobKind.GRADE_PASSBACK: grade_passback,
    }
)


def task_for(kind: str) -> Task[Any, Any]:
    """The task that runs jobs of `kind` (KeyError for a kind without one)."""
    return TASKS[kind]


# ---- the scheduled tasks (beat; installed by schedule.install_schedule) --------------------------


@shared_task(name="conversion.scheduled.advance_due_dates")
def advance_due_dates() -> schedule.DueDateMoves:
    """Daily: pause legacy syncs whose pause date came, and take live the conversions due today."""
    return schedule.advance_due_dates()


@shared_task(name="conversion.scheduled.nightly_syncs")
def nightly_syncs() -> schedule.NightlyStarts:
    """At midnight Mountain time: one sync job per live district, keyed by business date."""
    return schedule.start_nightly_syncs()


@shared_task(name="conversion.scheduled.grade_passback")
def grade_passback_runs() -> schedule.HourlyStarts:
    """Every hour: a grade passback job per district with it enabled (paused roster sync or not)."""
    return schedule.start_grade_passback_runs()


@shared_task(name="conversion.scheduled.requeue_stale_jobs")
def requeue_stale_jobs() -> int:
    """Re-send jobs whose worker died (no heartbeat past the lease) or that were never picked up; fail those
    that keep killing their worker; prune snapshots abandoned while receiving."""
    return schedule.requeue_stale_jobs()
