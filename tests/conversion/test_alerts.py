"""Alerts that reach people: each one in the outbox of those who can act, once, however often the thing
behind it is saved, retried or looked at again; immediate messages or a daily digest per person."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from conversion import jobs, signals, workflow
from conversion.forms import ZisSettingsForm
from conversion.jobs import JobFailed
from conversion.models import (
    ConversionState,
    Diagnostic,
    Job,
    JobKind,
    JobState,
    Notification,
    Severity,
    SyncRun,
)
from conversion.models.sync import SyncState
from conversion.services import notifications, schedule, step_data
from tests.conversion.jobhelpers import run

pytestmark = pytest.mark.django_db
UTC = dt.UTC


@pytest.fixture
def people(consultant, district_admin, other_admin):
    for user, email in (
        (consultant, "ic@example.org"),
        (district_admin, "admin@alpha.example.org"),
        (other_admin, "admin@beta.example.org"),
    ):
        user.email = email
        user.save()
    mail.outbox = []
    return consultant, district_admin, other_admin


def inboxes() -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in mail.outbox:
        for to in message.to:
            counts[to] = counts.get(to, 0) + 1
    return counts


def fail(job, progress):
    raise JobFailed("The ZIS answered 503 three times.")


def test_a_failed_job_reaches_the_consultants_once_even_when_redelivered(conversion, people):
    job = run(conversion, JobKind.TEST_CONNECTION, fail)
    assert job.state == JobState.FAILED
    assert inboxes() == {"ic@example.org": 1}
    assert "Connection test failed" in mail.outbox[0].body and "503" in mail.outbox[0].body
    assert "/districts/alpha/2027/" in mail.outbox[0].body
    jobs.run_job(job.pk, fail)  # Celery redelivers the message: the job is finished, nothing new
    Job.objects.get(pk=job.pk).save()  # and any later save of the failed row
    assert inboxes() == {"ic@example.org": 1}
    assert Notification.objects.filter(kind="job_failed").count() == 1


def test_a_held_sync_reaches_the_consultants_once(conversion, people):
    run_ = SyncRun.objects.create(
        conversion=conversion,
        trigger="nightly",
        business_date=dt.date(2027, 6, 2),
        state=SyncState.HELD,
        held_reason="14% of enrollments would disappear.",
    )
    run_.save()
    assert inboxes() == {"ic@example.org": 1}
    assert "14% of enrollments" in mail.outbox[0].body and "held" in mail.outbox[0].subject.lower()


def test_a_new_diagnostic_reaches_consultant_and_the_district_and_again_when_it_comes_back(conversion, people):
    now = timezone.now()
    diag = Diagnostic.objects.create(
        conversion=conversion,
        code="smp",
        severity=Severity.ERROR,
        title="SIF_ExtendedElements are missing",
        advice="Turn SMP off.",
        first_seen=now,
        last_seen=now,
    )
    diag.last_seen = now + dt.timedelta(hours=1)
    diag.save()  # seen again: the same episode
    assert inboxes() == {"ic@example.org": 1, "admin@alpha.example.org": 1}
    diag.cleared_at = now + dt.timedelta(hours=2)
    diag.save()
    diag.cleared_at, diag.first_seen = None, now + dt.timedelta(hours=3)  # back: a new episode
    diag.save()
    assert inboxes() == {"ic@example.org": 2, "admin@alpha.example.org": 2}


def test_a_nightly_sync_that_did_not_run_by_one_am_mountain(conversion, people):
    conversion.state = ConversionState.LIVE
    conversion.save()
    one_am = dt.datetime(2027, 8, 3, 7, 0, tzinfo=UTC)  # 01:00 MDT
    assert notifications.check_nightly_syncs(one_am) == [conversion.pk]
    assert notifications.check_nightly_syncs(one_am) == [conversion.pk]  # a second look tells no one again
    assert inboxes() == {"ic@example.org": 1}
    assert "August 3" in mail.outbox[0].body
    SyncRun.objects.create(conversion=conversion, trigger="nightly", business_date=dt.date(2027, 8, 4))
    assert notifications.check_nightly_syncs(one_am + dt.timedelta(days=1)) == []
    assert inboxes() == {"ic@example.org": 1}


def test_grade_passback_refusals_reach_consultant_and_district(conversion, people):
    job, _ = jobs.start_job(conversion, JobKind.GRADE_PASSBACK, enqueue=False)
    job.state, job.detail = JobState.SUCCEEDED, {"counts": {"accepted": 40, "refused": 3, "unchanged": 0}}
    job.save()
    signals.job_finished.send(sender=Job, job=job)  # as jobs._finish sends it once the outcome is written
    signals.job_finished.send(sender=Job, job=job)  # a redelivered end tells no one twice
    assert inboxes() == {"ic@example.org": 1, "admin@alpha.example.org": 1}
    assert "refused 3" in mail.outbox[0].body
    clean, _ = jobs.start_job(conversion, JobKind.GRADE_PASSBACK, enqueue=False, idempotency_key="gpb-clean")
    clean.state, clean.detail = JobState.SUCCEEDED, {"counts": {"accepted": 5, "refused": 0, "unchanged": 0}}
    clean.save()
    signals.job_finished.send(sender=Job, job=clean)
    assert len(mail.outbox) == 2


def test_pause_and_go_live_dates_a_week_and_a_day_away(conversion, people):
    today = workflow.local_today(conversion)
    conversion.pause_date = today + dt.timedelta(days=7)
    conversion.go_live_date = today + dt.timedelta(days=1)
    conversion.save()
    assert sorted(notifications.remind_due_dates()) == [(conversion.pk, "go_live", 1), (conversion.pk, "pause", 7)]
    notifications.remind_due_dates()  # the next run the same day
    assert inboxes() == {"ic@example.org": 2, "admin@alpha.example.org": 2}
    bodies = " ".join(m.body for m in mail.outbox)
    assert "pause of the legacy Canvas sync is in a week" in bodies and "go-live is tomorrow" in bodies
    conversion.pause_date = today + dt.timedelta(days=3)
    conversion.go_live_date = today + dt.timedelta(days=30)
    conversion.save()
    assert notifications.remind_due_dates() == []


def test_an_approval_waiting_on_the_district_reaches_its_admins_only(conversion, people, consultant):
    form = ZisSettingsForm(
        data={
            "zis-zis_url": "https://127.0.0.1:8443/zis",
            "zis-zone_id": "ALPHA",
            "zis-agent_source_id": "KIMONO_ALPHA",
            "zis-hosting": "powerschool",
        },
        instance=conversion,
        prefix="zis",
    )
    assert form.is_valid(), form.errors
    step_data.save_part(conversion, "zis", form, consultant)
    step_data.save_part(conversion, "zis", form, consultant)  # saved again: the same wait
    assert inboxes() == {"admin@alpha.example.org": 1}
    assert "Confirm the SIF agent is set up" in mail.outbox[0].body


def test_a_newly_invited_admin_hears_of_the_wait_too(conversion, people, consultant):
    conversion.zis_url, conversion.zone_id = "https://127.0.0.1:8443/zis", "ALPHA"
    conversion.save()
    from conversion.services import invitations

    invitations.invite_admin(conversion.district, "new@alpha.example.org", by=consultant, site_url="http://t")
    waits = [m for m in mail.outbox if "waits for you" in m.body]
    assert sorted(m.to[0] for m in waits) == ["admin@alpha.example.org", "new@alpha.example.org"]
    invitations.invite_admin(conversion.district, "third@alpha.example.org", by=consultant, site_url="http://t")
    waits = [m for m in mail.outbox if "waits for you" in m.body]
    assert len(waits) == 3 and waits[-1].to == ["third@alpha.example.org"]  # only the newcomer this time


def test_a_digest_reader_gets_one_email_a_day(conversion, people):
    consultant, admin, _ = people
    notifications.set_delivery(consultant, "digest")
    run(conversion, JobKind.TEST_CONNECTION, fail)
    run(conversion, JobKind.PULL, fail)
    assert inboxes() == {}
    assert Notification.objects.filter(recipient=consultant, kind="job_failed").count() == 2  # in the app at once
    assert notifications.send_digests() == {"ic": 2}
    assert notifications.send_digests() == {}
    assert inboxes() == {"ic@example.org": 1}
    assert "Connection test failed" in mail.outbox[0].body and "Pull" in mail.outbox[0].body


def test_each_person_chooses_in_the_dashboard(client, people):
    consultant, _, _ = people
    client.force_login(consultant)
    assert client.get("/notifications/settings/").status_code == 200
    client.post("/notifications/settings/", {"delivery": "digest"})
    assert notifications.delivery_of(consultant) == "digest"
    client.post("/notifications/settings/", {"delivery": "immediate"})
    assert notifications.delivery_of(consultant) == "immediate"


def test_no_email_address_means_in_app_only(conversion, consultant):
    mail.outbox = []
    run(conversion, JobKind.TEST_CONNECTION, fail)
    assert mail.outbox == [] and Notification.objects.filter(recipient=consultant, kind="job_failed").exists()


def test_the_schedule_installs_the_alert_checks_and_the_digest(db):
    schedule.install_schedule()
    one_am = PeriodicTask.objects.get(task="conversion.scheduled.check_nightly_syncs")
    assert (one_am.crontab.minute, one_am.crontab.hour, str(one_am.crontab.timezone)) == ("0", "1", "America/Denver")
    assert (
        PeriodicTask.objects.filter(
            task__in=["conversion.scheduled.remind_due_dates", "conversion.scheduled.daily_digest"]
        ).count()
        == 2
    )


def test_an_alert_that_cannot_be_raised_does_not_fail_the_job(conversion, people, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("mail server on fire")

    monkeypatch.setattr(notifications, "notify", broken)
    job = run(conversion, JobKind.TEST_CONNECTION, fail)
    assert job.state == JobState.FAILED and "503" in job.message
