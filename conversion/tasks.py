"""Celery tasks: thin. Each takes keyword-only ids, claims its Job row and calls a service.

SIF work goes to the `sif` queue and Canvas work to the `canvas` queue (see CELERY_TASK_ROUTES), so a
slow ZIS cannot starve Canvas syncs and each can be scaled on its own. The scheduled tasks (stale-job
re-sends, due dates, the nightly and hourly starts) go to the `maintenance` queue, consumed by a worker of
its own, so that workers busy with long jobs never delay them.
"""

from __future__ import annotations

import importlib

from celery import shared_task
from celery.app.task import Task

from conversion.jobs import run_job
from conversion.models import JobKind

# kind -> (task name, "module:function" of the runner). The runner takes (job, progress).
RUNNERS: dict[str, tuple[str, str]] = {
    JobKind.TEST_CONNECTION: ("conversion.sif.test_connection", "conversion.services.connection:run_test_connection"),
    JobKind.PULL: ("conversion.sif.pull", "conversion.services.pull:run_pull"),
    JobKind.MAPPING: ("conversion.canvas.mapping", "conversion.services.mapping:run_mapping"),
    JobKind.REMAP: ("conversion.canvas.remap", "conversion.services.remap:run_remap"),
    JobKind.REMAP_ROLLBACK: ("conversion.canvas.remap_rollback", "conversion.services.remap:run_rollback"),
    JobKind.SYNC: ("conversion.canvas.sync", "conversion.services.sync:run_sync"),
    JobKind.REMASTER: ("conversion.canvas.remaster", "conversion.services.sync:run_remaster"),
    JobKind.SYNC_UNDO: ("conversion.canvas.sync_undo", "conversion.services.sync_undo:run_undo"),
    JobKind.GRADE_PASSBACK: ("conversion.sif.grade_passback", "conversion.services.gradepassback:run_grade_passback"),
}


def _runner(kind: str):
    module, function = RUNNERS[kind][1].split(":")
    return getattr(importlib.import_module(module), function)


def _make_task(kind: str) -> Task:
    name = RUNNERS[kind][0]

    @shared_task(name=name)
    def task(*, job_id: int) -> None:
        run_job(job_id, _runner(kind))

    return task


TASKS: dict[str, Task] = {kind: _make_task(kind) for kind in RUNNERS}


def task_for(kind: str) -> Task:
    return TASKS[kind]


@shared_task(name="conversion.scheduled.advance_due_dates")
def advance_due_dates() -> dict:
    """Daily: pause legacy syncs whose pause date came, and take live the conversions due today."""
    from conversion.services import schedule

    return schedule.advance_due_dates()


@shared_task(name="conversion.scheduled.nightly_syncs")
def nightly_syncs() -> dict:
    """At midnight Mountain time: one sync job per live district, keyed by business date."""
    from conversion.services import schedule

    return schedule.start_nightly_syncs()


@shared_task(name="conversion.scheduled.grade_passback")
def grade_passback_runs() -> dict:
    """Every hour: a grade passback job per district with it enabled (paused roster sync or not)."""
    from conversion.services import schedule

    return schedule.start_grade_passback_runs()


@shared_task(name="conversion.scheduled.requeue_stale_jobs")
def requeue_stale_jobs() -> int:
    """Re-send jobs whose worker died (no heartbeat past the lease) or that were never picked up; fail those
    that keep killing their worker; prune snapshots abandoned while receiving."""
    from conversion.services import schedule

    return schedule.requeue_stale_jobs()
