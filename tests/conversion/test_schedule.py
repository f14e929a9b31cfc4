"""The scheduler's clock: Mountain-time business dates across DST, and the beat schedule it installs."""

from __future__ import annotations

import datetime as dt

import pytest
from django_celery_beat.models import PeriodicTask

from conversion.services import portfolio, schedule

UTC = dt.UTC


@pytest.mark.parametrize(
    "utc_moment, business_date",
    [
        (dt.datetime(2027, 1, 15, 7, 0, 30, tzinfo=UTC), dt.date(2027, 1, 15)),  # midnight MST = 07:00 UTC
        (dt.datetime(2027, 7, 15, 6, 0, 30, tzinfo=UTC), dt.date(2027, 7, 15)),  # midnight MDT = 06:00 UTC
        (dt.datetime(2027, 3, 14, 6, 59, 0, tzinfo=UTC), dt.date(2027, 3, 13)),  # DST starts that night
        (dt.datetime(2027, 11, 7, 6, 30, 0, tzinfo=UTC), dt.date(2027, 11, 7)),  # DST ends that night
    ],
)
def test_business_date_is_the_mountain_time_date(utc_moment, business_date):
    assert schedule.business_date(utc_moment) == business_date


def test_next_sync_is_the_next_mountain_midnight_in_summer_and_winter():
    summer = portfolio.next_nightly_sync(dt.datetime(2027, 7, 1, 18, 0, tzinfo=UTC))
    winter = portfolio.next_nightly_sync(dt.datetime(2027, 1, 1, 18, 0, tzinfo=UTC))
    assert summer.astimezone(UTC) == dt.datetime(2027, 7, 2, 6, 0, tzinfo=UTC)
    assert winter.astimezone(UTC) == dt.datetime(2027, 1, 2, 7, 0, tzinfo=UTC)


def test_beat_schedule_runs_nightly_syncs_at_midnight_denver(db):
    schedule.install_schedule()
    schedule.install_schedule()  # idempotent
    nightly = PeriodicTask.objects.get(task="conversion.scheduled.nightly_syncs")
    assert (nightly.crontab.minute, nightly.crontab.hour) == ("0", "0")
    assert str(nightly.crontab.timezone) == "America/Denver"
    assert PeriodicTask.objects.filter(task="conversion.scheduled.nightly_syncs").count() == 1
