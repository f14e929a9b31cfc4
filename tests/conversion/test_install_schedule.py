"""The beat schedule is installed by its own idempotent command, separate from the demo."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_install_schedule_is_idempotent_and_creates_no_users():
    first = run("install_schedule")
    tasks = set(PeriodicTask.objects.values_list("task", flat=True))
    assert {
        "conversion.scheduled.nightly_syncs",
        "conversion.scheduled.advance_due_dates",
        "conversion.scheduled.grade_passback",
        "conversion.scheduled.requeue_stale_jobs",
    } <= tasks
    count, crontabs = PeriodicTask.objects.count(), CrontabSchedule.objects.count()
    second = run("install_schedule")
    assert (PeriodicTask.objects.count(), CrontabSchedule.objects.count()) == (count, crontabs)
    assert "added:" in first and "added:" not in second and "kept:" in second
    assert not get_user_model().objects.exists()


def test_an_entry_of_ours_no_longer_listed_is_removed_and_others_are_left_alone():
    every_minute, _ = CrontabSchedule.objects.get_or_create(minute="*", hour="*")
    PeriodicTask.objects.create(name="Old entry", task="conversion.scheduled.gone", crontab=every_minute)
    PeriodicTask.objects.create(name="Someone else's", task="other.app.task", crontab=every_minute)
    assert "removed: Old entry" in run("install_schedule")
    assert not PeriodicTask.objects.filter(name="Old entry").exists()
    assert PeriodicTask.objects.filter(name="Someone else's").exists()


def test_the_demo_seeds_users_but_no_schedule():
    run("demo")
    assert get_user_model().objects.filter(username="consultant").exists()
    assert not PeriodicTask.objects.filter(task__startswith="conversion.scheduled.").exists()


def test_every_scheduled_task_is_one_the_worker_knows():
    from conversion.celery import app

    run("install_schedule")
    app.loader.import_default_modules()
    scheduled = set(PeriodicTask.objects.values_list("task", flat=True))
    assert len(scheduled) == 8 and scheduled <= set(app.tasks)
