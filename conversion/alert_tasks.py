"""The scheduled alert checks and the daily digest, as beat tasks (installed by install_schedule)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="conversion.scheduled.check_nightly_syncs")
def check_nightly_syncs() -> list[int]:
    from conversion.services import notifications

    return notifications.check_nightly_syncs()


@shared_task(name="conversion.scheduled.remind_due_dates")
def remind_due_dates() -> list:
    from conversion.services import notifications

    return notifications.remind_due_dates()


@shared_task(name="conversion.scheduled.daily_digest")
def daily_digest() -> dict:
    from conversion.services import notifications

    return notifications.send_digests()


@shared_task(name="conversion.scheduled.check_legacy_imports")
def check_legacy_imports() -> dict:
    from conversion.services import legacy_watch

    return legacy_watch.check_all()
