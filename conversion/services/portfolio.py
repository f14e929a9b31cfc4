"""The consultant's portfolio: every conversion with its step, next date and last job."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import caches
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone

from conversion.models import Conversion, ConversionState, Job, JobKind, JobState
from conversion.rules import districts_visible_to, is_consultant

SYNC_ZONE = ZoneInfo("America/Denver")


def next_nightly_sync(now: dt.datetime | None = None) -> dt.datetime:
    """The next midnight in Mountain time (DST-aware: the wall clock, not a fixed UTC offset)."""
    now = (now or timezone.now()).astimezone(SYNC_ZONE)
    tomorrow = now.date() + dt.timedelta(days=1)
    return dt.datetime.combine(tomorrow, dt.time(0, 0), tzinfo=SYNC_ZONE)


@dataclass
class NextDate:
    label: str
    value: dt.date | dt.datetime | None

    @property
    def text(self) -> str:
        """The date as the portfolio shows it; a moment always with its time zone."""
        if self.value is None:
            return "not set" if self.label == "Go-live" else ""
        if isinstance(self.value, dt.datetime):
            return self.value.astimezone(SYNC_ZONE).strftime("%b %-d, %Y %H:%M %Z")
        return self.value.strftime("%b %-d, %Y")


def next_date(conversion: Conversion, next_sync: dt.datetime | None = None) -> NextDate:
    """The date the portfolio shows for a conversion; `next_sync` saves working the next midnight out per row."""
    state = conversion.state
    if state in (ConversionState.AGENT_SETUP, ConversionState.CONNECTION, ConversionState.PAUSE):
        custom = "" if conversion.pause_date else " (default)"
        return NextDate(f"Pause{custom}", conversion.effective_pause_date)
    if state in (ConversionState.MAPPING, ConversionState.REMAPPING, ConversionState.GO_LIVE):
        return NextDate("Go-live", conversion.go_live_date)
    if conversion.nightly_sync_paused:
        return NextDate("Nightly sync held", None)
    return NextDate("Next sync", next_sync or next_nightly_sync())


def audience(user) -> str:
    """Who sees the same portfolio rows, for keying its render cache: the rows are whatever
    `districts_visible_to` gives, which is every district for every consultant and the admin's own
    districts for anyone else. So all consultants share one entry and every other user has their own.
    (Change this together with `conversion.rules.districts_visible_to`.)"""
    return "consultants" if is_consultant(user) else f"user-{user.pk}"


# The columns the portfolio reads: no credentials (nothing to decrypt per row), no JSON, no PEM bundle.
ROW_FIELDS = ("school_year", "state", "pause_date", "go_live_date", "nightly_sync_paused", "district__name",
              "district__slug")


def portfolio(user, *, query: str = "", state: str = "") -> QuerySet[Conversion]:
    """Conversions the user may see (one per district and school year), with their last job annotated."""
    last_job = Job.objects.filter(conversion=OuterRef("pk")).order_by("-created_at", "-id")
    qs = (
        Conversion.objects.filter(district__in=districts_visible_to(user))
        .select_related("district")
        .only(*ROW_FIELDS)
        .annotate(
            last_job_kind=Subquery(last_job.values("kind")[:1]),
            last_job_state=Subquery(last_job.values("state")[:1]),
            last_job_at=Subquery(last_job.values("created_at")[:1]),
        )
        .order_by("district__name", "-school_year")
    )
    if query:
        qs = qs.filter(Q(district__name__icontains=query) | Q(zone_id__icontains=query))
    if state in ConversionState.values:
        qs = qs.filter(state=state)
    return qs


def state_counts(user) -> dict[str, int]:
    rows = Conversion.objects.filter(district__in=districts_visible_to(user)).values("state").annotate(n=Count("id"))
    counts = {s: 0 for s in ConversionState.values}
    counts.update({r["state"]: r["n"] for r in rows})
    return counts


@dataclass(frozen=True, slots=True)
class Row:
    """One portfolio line with every value worked out, so the template only prints."""

    url: str
    district: str
    year_label: str
    state: str
    step: int
    state_label: str
    next_date: str
    job_label: str  # "" when the conversion has no job yet
    job_state: str
    job_state_label: str
    job_at: str


_STATE_LABELS = dict(ConversionState.choices)
_JOB_KIND_LABELS = dict(JobKind.choices)
_JOB_STATE_LABELS = dict(JobState.choices)


def rows(conversions: Iterable[Conversion]) -> list[Row]:
    """The portfolio lines of `conversions` (from `portfolio()`, so with the last job annotated)."""
    next_sync = next_nightly_sync()  # one midnight for the whole table
    zone = timezone.get_current_timezone()
    out = []
    for c in conversions:
        when = next_date(c, next_sync)
        text = when.text
        out.append(Row(
            url=reverse("district_year", args=(c.district.slug, c.school_year)),
            district=c.district.name,
            year_label=c.school_year_label,
            state=c.state,
            step=c.step_number,
            state_label=_STATE_LABELS.get(c.state, c.state),
            next_date=f"{when.label}: {text}" if text else when.label,
            job_label=_JOB_KIND_LABELS.get(c.last_job_kind, c.last_job_kind or ""),
            job_state=c.last_job_state or "",
            job_state_label=_JOB_STATE_LABELS.get(c.last_job_state, c.last_job_state or ""),
            # What |date:"M j H:i T" gave, in the current time zone: "Nov 22 14:05 MST".
            job_at=c.last_job_at.astimezone(zone).strftime("%b %-d %H:%M %Z") if c.last_job_at else "",
        ))
    return out


@dataclass(frozen=True, slots=True)
class Note:
    """An unread note as the portfolio lists it."""

    pk: int
    text: str
    url: str
    when: str


def _notes_key(user) -> str:
    return f"portfolio-notes:{user.pk}"


def unread_notes(user) -> list[Note]:
    """The user's own unread notes, newest first; read through this process's cache for
    PORTFOLIO_CACHE_SECONDS (keyed by user: notes are never shared). `forget_notes` drops them when the
    user marks notes read."""
    window = settings.PORTFOLIO_CACHE_SECONDS
    if window > 0:
        notes = caches["local"].get(_notes_key(user))
        if notes is not None:
            return notes
    zone = timezone.get_current_timezone()
    notes = [
        Note(pk=n.pk, text=n.text,
             url=reverse("district_year", args=(n.conversion.district.slug, n.conversion.school_year)),
             when=n.created_at.astimezone(zone).strftime("%b %-d, %Y %H:%M %Z"))  # as |date:"M j, Y H:i T"
        for n in user.notifications.unread().only(
            "text", "created_at", "conversion__school_year", "conversion__district__slug")
    ]
    if window > 0:
        caches["local"].set(_notes_key(user), notes, window)
    return notes


def forget_notes(user) -> None:
    """Drop the user's cached notes in this process (another process's copy ages out within the window)."""
    caches["local"].delete(_notes_key(user))
