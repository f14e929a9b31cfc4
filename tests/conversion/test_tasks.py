"""The Celery tasks: one named task per kind of job, each running that kind's runner, sent by name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conversion import jobs, tasks
from conversion.celery import app as celery_app
from conversion.models import JobKind
from conversion.services import connection, gradepassback, mapping, pull, remap, sync, sync_undo

# Written out independently of conversion/tasks.py: a kind wired to another runner fails here.
EXPECTED = {
    JobKind.TEST_CONNECTION: ("conversion.sif.test_connection", connection.run_test_connection, "sif"),
    JobKind.PULL: ("conversion.sif.pull", pull.run_pull, "sif"),
    JobKind.MAPPING: ("conversion.canvas.mapping", mapping.run_mapping, "canvas"),
    JobKind.REMAP: ("conversion.canvas.remap", remap.run_remap, "canvas"),
    JobKind.REMAP_ROLLBACK: ("conversion.canvas.remap_rollback", remap.run_rollback, "canvas"),
    JobKind.SYNC: ("conversion.canvas.sync", sync.run_sync, "canvas"),
    JobKind.REMASTER: ("conversion.canvas.remaster", sync.run_remaster, "canvas"),
    JobKind.SYNC_UNDO: ("conversion.canvas.sync_undo", sync_undo.run_undo, "canvas"),
    JobKind.GRADE_PASSBACK: ("conversion.sif.grade_passback", gradepassback.run_grade_passback, "sif"),
}


def test_every_kind_of_job_has_a_task():
    # (pause_legacy is a kind no worker runs: the pause is a workflow move, the kind is kept for old rows.)
    runnable = set(JobKind.values) - {JobKind.PAUSE_LEGACY}
    assert set(tasks.TASKS) == runnable == set(jobs.JOB_TASK_NAMES) == set(EXPECTED)


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_a_kinds_task_keeps_its_name_and_queue_and_is_the_one_jobs_sends(kind):
    name, _, queue = EXPECTED[kind]
    task = tasks.task_for(kind)
    assert task.name == name == jobs.JOB_TASK_NAMES[kind]
    # (shared_task hands out a proxy of the registered task: equal to it, not the same object.)
    assert jobs.job_task(kind) == celery_app.tasks[name] == task
    assert celery_app.amqp.router.route({}, name)["queue"].name == queue


# (The app's task base looks the job up for its ZIS slot first: job 41 does not exist, so it needs none.)
@pytest.mark.django_db
@pytest.mark.parametrize("kind", list(EXPECTED))
def test_a_kinds_task_runs_its_runner_for_the_job_it_names(kind, monkeypatch):
    calls = []
    monkeypatch.setattr(tasks, "run_job", lambda job_id, runner: calls.append((job_id, runner)))
    tasks.task_for(kind)(job_id=41)
    assert calls == [(41, EXPECTED[kind][1])]


def test_a_web_process_has_the_job_tasks_registered_once_django_is_set_up():
    """jobs sends by name through Celery's registry: a process that never imports conversion.tasks itself
    (a web worker) must still find every job task there."""
    script = (
        "import django; django.setup()\n"
        "from conversion import jobs\n"
        "print(sorted(jobs.job_task(kind).name for kind in jobs.JOB_TASK_NAMES))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "conversion.settings_test"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sorted(name for name, _, _ in EXPECTED.values()))
