"""Alerts that reach people: an in-app note per person, and an e-mail (at once, or in a daily digest).

`notify` is the one way in. Each note carries a key naming what it is about (job_failed:12,
sync_held:7, ...); a person gets one note per key, so a retried job, a re-saved row or a second run of
a scheduled check tells no one twice. Who hears of what, by the people who can act on it:

- consultants: failed jobs, held syncs, nightly syncs that did not run by 01:00 Mountain, approvals;
- the district's admins: approvals the conversion waits for from them;
- both: new diagnostics, grade-passback refusals, a pause or go-live date a week and a day away.

The receivers below are connected when the app is ready (conversion/apps.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from conversion.models import (
    AlertPreference,
    Approval,
    AuditEvent,
    Conversion,
    ConversionState,
    Delivery,
    Diagnostic,
    Job,
    JobKind,
    JobState,
    Notification,
    NotificationKind,
    SyncRun,
)
from conversion.models.sync import SyncState
from conversion.signals import approval_recorded, job_finished

log = logging.getLogger(__name__)
REMINDER_DAYS = (7, 1)  # a pause or go-live date a week away, and a day away


# ---- who ---------------------------------------------------------------------------------------


def consultants():
    return get_user_model().objects.filter(is_staff=True, is_active=True)


def district_admins(conversion: Conversion):
    return conversion.district.admins.filter(is_active=True)


def everyone(conversion: Conversion) -> list:
    return list(consultants()) + list(district_admins(conversion).filter(is_staff=False))


def delivery_of(user) -> str:
    pref = AlertPreference.objects.filter(user=user).first()
    return pref.delivery if pref else Delivery.IMMEDIATE


def set_delivery(user, delivery: str) -> None:
    AlertPreference.objects.update_or_create(user=user, defaults={"delivery": Delivery(delivery)})


# ---- the one way in ----------------------------------------------------------------------------


def notify(conversion: Conversion, kind: str, text: str, recipients: Iterable, *, key: str) -> list[Notification]:
    """One note per recipient and key (people who have it already are skipped); e-mails the new notes of
    people who chose immediate messages. Returns the notes created now."""
    created = []
    for user in {u.pk: u for u in recipients}.values():
        try:
            with transaction.atomic():
                note = Notification.objects.create(
                    recipient=user, conversion=conversion, kind=kind, key=key[:200], text=text[:500]
                )
        except IntegrityError:
            continue  # told already: this is a retry or a second look
        created.append(note)
        if user.email and delivery_of(user) == Delivery.IMMEDIATE:
            _email_one(note)
    return created


def _site_url(path: str) -> str:
    return getattr(settings, "SITE_URL", "http://127.0.0.1:8000").rstrip("/") + path


def _conversion_url(conversion: Conversion) -> str:
    return _site_url(
        reverse("district_year", kwargs={"slug": conversion.district.slug, "year": conversion.school_year})
    )


def _email_one(note: Notification) -> None:
    conversion = note.conversion
    body = (
        f"{note.text}\n\n{_conversion_url(conversion)}\n\n"
        f"You get each alert as it happens; to get one e-mail a day instead: {_site_url(reverse('alert_settings'))}\n"
    )
    try:
        send_mail(
            f"[{conversion.district.name}] {note.get_kind_display()}",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [note.recipient.email],
        )
    except Exception:  # a mail server down must not fail the job that raised the alert; the note stays
        log.exception("could not e-mail notification %s", note.pk)
        return
    Notification.objects.filter(pk=note.pk).update(emailed_at=timezone.now())


def send_digests(now: dt.datetime | None = None) -> dict:
    """One e-mail per digest reader with every note not yet e-mailed; returns {username: count}."""
    now = now or timezone.now()
    pending = (
        Notification.objects.filter(
            emailed_at__isnull=True,
            created_at__lte=now,
            recipient__alert_preference__delivery=Delivery.DIGEST,
            recipient__is_active=True,
        )
        .exclude(recipient__email="")
        .select_related("recipient", "conversion__district")
        .order_by("created_at", "id")
    )
    by_user: dict = defaultdict(list)
    for note in pending:
        by_user[note.recipient].append(note)
    sent = {}
    for user, notes in by_user.items():
        lines = [
            f"- {n.created_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC · {n.get_kind_display()}: {n.text}\n"
            f"  {_conversion_url(n.conversion)}"
            for n in notes
        ]
        body = (
            "Alerts since your last digest:\n\n"
            + "\n".join(lines)
            + (f"\n\nTo get each alert as it happens instead: {_site_url(reverse('alert_settings'))}\n")
        )
        send_mail(
            f"Daily digest: {len(notes)} alert{'s' if len(notes) != 1 else ''}",
            body,
            settings.DEFAULT_FROM_EMAIL,
            [user.email],
        )
        Notification.objects.filter(pk__in=[n.pk for n in notes]).update(emailed_at=timezone.now())
        sent[user.get_username()] = len(notes)
    return sent


# ---- approvals (consultants hear of every approval) -------------------------------------------


def approval_text(conversion: Conversion, approval: Approval) -> str:
    who = approval.approved_by.get_username() if approval.approved_by_id else "the district"
    text = f"{conversion.district.name} ({conversion.school_year_label}): {approval.get_kind_display()}, by {who}."
    if approval.note:
        text += f" Note: {approval.note}"
    return text[:500]


@receiver(approval_recorded, dispatch_uid="alerts:approval")
def _approval_recorded(sender, conversion: Conversion, approval: Approval, **kwargs) -> None:
    notify_consultants_of_approval(conversion, approval)


def notify_consultants_of_approval(conversion: Conversion, approval: Approval) -> list[Notification]:
    """One unread note per active consultant (staff user), when workflow.perform records an approval."""
    return notify(
        conversion,
        NotificationKind.APPROVAL,
        approval_text(conversion, approval),
        consultants(),
        key=f"approval:{approval.pk}",
    )


@transaction.atomic
def mark_read(user, notification_id: int | None = None) -> int:
    """Mark one of `user`'s notes read (or all of them when no id is given); returns how many changed.

    Only the user's own notes are touched: another user's id changes nothing.
    """
    notes = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if notification_id is not None:
        notes = notes.filter(pk=notification_id)
    return notes.update(read_at=timezone.now())


# ---- what happens, as it happens ---------------------------------------------------------------


def _quietly(when):
    """A receiver that only works when `when(instance, created)` holds (a cheap test, so the many saves
    that raise no alert cost nothing), in its own savepoint: an alert that cannot be raised must never
    fail what raised it (a job's end, a workflow move); its fault is logged."""
    import functools

    def decorate(receiver_func):
        @functools.wraps(receiver_func)
        def wrapper(sender, instance, created=False, **kwargs):
            if not when(instance, created):
                return
            try:
                with transaction.atomic():
                    receiver_func(sender, instance, created=created, **kwargs)
            except Exception:
                log.exception("alert %s failed", receiver_func.__name__)

        return wrapper

    return decorate


def _label(conversion: Conversion) -> str:
    return f"{conversion.district.name} ({conversion.school_year_label})"


def _job_finished(sender, job: Job, **kwargs) -> None:
    # Jobs end by a conditional UPDATE (jobs._finish), which post_save never sees: hence this signal.
    _job_ended(sender, job)


@_quietly(
    lambda job, created: (
        job.state == JobState.FAILED or job.state == JobState.SUCCEEDED and job.kind == JobKind.GRADE_PASSBACK
    )
)
def _job_ended(sender, instance: Job, **kwargs) -> None:
    job = instance
    if job.state == JobState.FAILED:
        conversion = job.conversion
        people = list(consultants()) + ([job.requested_by] if job.requested_by and job.requested_by.is_active else [])
        notify(
            conversion,
            NotificationKind.JOB_FAILED,
            f"{_label(conversion)}: {JobKind(job.kind).label} failed. {job.message}",
            people,
            key=f"job_failed:{job.pk}",
        )
    elif job.state == JobState.SUCCEEDED and job.kind == JobKind.GRADE_PASSBACK:
        refused = ((job.detail or {}).get("counts") or {}).get("refused", 0)
        if refused:
            conversion = job.conversion
            notify(
                conversion,
                NotificationKind.GPB_REFUSED,
                f"{_label(conversion)}: grade passback refused {refused} score{'s' if refused != 1 else ''} "
                f"or assignment{'s' if refused != 1 else ''}; the reasons are on the grade passback page.",
                everyone(conversion),
                key=f"gpb_refused:{job.pk}",
            )


@receiver(post_save, sender=SyncRun, dispatch_uid="alerts:sync")
@_quietly(lambda run, created: run.state == SyncState.HELD)
def sync_saved(sender, instance: SyncRun, **kwargs) -> None:
    if instance.state != SyncState.HELD:
        return
    conversion = instance.conversion
    reason = (instance.held_reason or "").splitlines()[0] if instance.held_reason else ""
    notify(
        conversion,
        NotificationKind.SYNC_HELD,
        f"{_label(conversion)}: a sync is held for a person's release. {reason}",
        consultants(),
        key=f"sync_held:{instance.pk}",
    )


@receiver(post_save, sender=Diagnostic, dispatch_uid="alerts:diagnostic")
@_quietly(lambda diagnostic, created: diagnostic.cleared_at is None)
def diagnostic_saved(sender, instance: Diagnostic, **kwargs) -> None:
    if instance.cleared_at is not None:
        return
    conversion = instance.conversion
    # first_seen starts a new episode each time a cleared finding comes back: each episode is new.
    notify(
        conversion,
        NotificationKind.DIAGNOSTIC,
        f"{_label(conversion)}: {instance.get_severity_display()}: {instance.title}",
        everyone(conversion),
        key=f"diagnostic:{instance.pk}:{instance.first_seen.isoformat()}",
    )


@receiver(post_save, sender=AuditEvent, dispatch_uid="alerts:waiting")
@_quietly(lambda event, created: created and (event.conversion_id is not None or event.action == "admin_invited"))
def audit_saved(sender, instance: AuditEvent, created: bool, **kwargs) -> None:
    """After any recorded change (a move, a job, an invitation), tell the district's admins what the
    conversion waits for from them; each wait (transition and the moment its state began) once."""
    if not created or instance.conversion_id is None and instance.action != "admin_invited":
        return
    from conversion import workflow  # workflow imports this module

    conversions = Conversion.objects.select_related("district").order_by("pk")
    if instance.conversion_id is not None:
        conversions = conversions.filter(pk=instance.conversion_id)
    else:
        conversions = conversions.filter(district_id=instance.district_id).exclude(state=ConversionState.LIVE)
    for conversion in conversions:
        for transition in workflow.waiting_on_district(conversion):
            if not _admins_can_act(conversion, transition):
                continue
            since = conversion.state_changed_at if transition.field == "state" else None
            began = since.isoformat() if since else getattr(conversion, transition.field)
            notify(
                conversion,
                NotificationKind.WAITING,
                f"{_label(conversion)} waits for you: {transition.label}.",
                district_admins(conversion),
                key=f"waiting:{conversion.pk}:{transition.name}:{began}",
            )


def _admins_can_act(conversion: Conversion, transition) -> bool:
    """The wait is the admins' now: its guard holds (a pull to verify, a clean mapping check). Step 1's
    confirmation is theirs as soon as the consultant entered the ZIS details: its checklist is theirs too."""
    if transition.name == "confirm_agent_setup":
        return bool(conversion.zis_url and conversion.zone_id)
    return not transition.guard(conversion)


# ---- scheduled checks --------------------------------------------------------------------------


def check_nightly_syncs(now: dt.datetime | None = None) -> list[int]:
    """At 01:00 Mountain: every live district whose nightly sync of today's business date has not run."""
    from conversion.services.schedule import business_date

    day = business_date(now)
    missing = []
    live = Conversion.objects.filter(state=ConversionState.LIVE, nightly_sync_paused=False).select_related("district")
    for conversion in live:
        ran = SyncRun.objects.filter(conversion=conversion, trigger="nightly", business_date=day).exists()
        if not ran:
            missing.append(conversion.pk)
            notify(
                conversion,
                NotificationKind.NIGHTLY_MISSING,
                f"{_label(conversion)}: the nightly sync of {day:%B %-d} did not run by 01:00 Mountain time.",
                consultants(),
                key=f"nightly_missing:{conversion.pk}:{day.isoformat()}",
            )
    return missing


def remind_due_dates() -> list[tuple[int, str, int]]:
    """A pause or go-live date a week away, and a day away, in the district's own calendar."""
    from conversion import workflow

    sent = []
    before_pause = (ConversionState.AGENT_SETUP, ConversionState.CONNECTION, ConversionState.PAUSE)
    before_live = tuple(s for s in ConversionState.values if s != ConversionState.LIVE)
    for conversion in Conversion.objects.filter(state__in=before_live).select_related("district"):
        today = workflow.local_today(conversion)
        dates = []
        if conversion.state in before_pause:
            dates.append(("pause", "pause of the legacy Canvas sync", conversion.effective_pause_date))
        if conversion.go_live_date:
            dates.append(("go_live", "go-live", conversion.go_live_date))
        for what, label, when in dates:
            days = (when - today).days
            if days in REMINDER_DAYS:
                notify(
                    conversion,
                    NotificationKind.DATE_SOON,
                    f"{_label(conversion)}: the {label} is {'tomorrow' if days == 1 else 'in a week'}, "
                    f"{when:%A %B %-d}.",
                    everyone(conversion),
                    key=f"date_soon:{conversion.pk}:{what}:{when.isoformat()}:{days}",
                )
                sent.append((conversion.pk, what, days))
    return sent


job_finished.connect(_job_finished, sender=Job, dispatch_uid="alerts:job")
