"""The consultant's portfolio: every conversion with its step, next date and last job."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone

from conversion import workflow
from conversion.models import Conversion, ConversionState, Job, JobKind, JobState, SyncRun, SyncState
from conversion.models.conversion import AGENT_CHECKLIST
from conversion.rules import is_consultant, visible_to

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _Annotated(TypedDict):
    """What `portfolio()` annotates on each conversion (the last_job_* ones unless last_job=False)."""

    last_sync_state: str | None
    last_sync_at: dt.datetime | None
    last_job_kind: str | None
    last_job_state: str | None
    last_job_at: dt.datetime | None


if TYPE_CHECKING:
    PortfolioConversion = WithAnnotations[Conversion, _Annotated]

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
    `visible_to` keeps, which is every district for every consultant and the admin's own districts for
    anyone else. So all consultants share one entry and every other user has their own.
    (Change this together with `conversion.rules.visible_to`.)"""
    return "consultants" if is_consultant(user) else f"user-{user.pk}"


# The columns the portfolio reads: no credentials (nothing to decrypt per row), no JSON, no PEM bundle.
# workflow.next_step reads the ZIS details and the agent checklist too.
ROW_FIELDS = (
    "school_year",
    "state",
    "pause_date",
    "go_live_date",
    "nightly_sync_paused",
    "live_since",
    "zis_url",
    "zone_id",
    *(f for f, _, _ in AGENT_CHECKLIST),
    "district__name",
    "district__slug",
    "district__time_zone",
)


def portfolio(user, *, query: str = "", state: str = "", last_job: bool = True) -> QuerySet[PortfolioConversion]:
    """Conversions the user may see (one per district and school year), with their last nightly sync and
    (unless `last_job` is False: the timeline does without it) their last job annotated."""
    last_sync = SyncRun.objects.filter(conversion=OuterRef("pk"), trigger="nightly").order_by("-created_at", "-id")
    qs = (
        Conversion.objects.filter(visible_to(user, "district"))
        .select_related("district")
        .only(*ROW_FIELDS)
        .annotate(
            last_sync_state=Subquery(last_sync.values("state")[:1]),
            last_sync_at=Subquery(last_sync.values("created_at")[:1]),
        )
        .order_by("district__name", "-school_year")
    )
    if last_job:
        jobs = Job.objects.filter(conversion=OuterRef("pk")).order_by("-created_at", "-id")
        qs = qs.annotate(
            last_job_kind=Subquery(jobs.values("kind")[:1]),
            last_job_state=Subquery(jobs.values("state")[:1]),
            last_job_at=Subquery(jobs.values("created_at")[:1]),
        )
    if query:
        qs = qs.filter(Q(district__name__icontains=query) | Q(zone_id__icontains=query))
    if state in ConversionState.values:
        qs = qs.filter(state=state)
    # The last job is annotated only when asked for: the type says what callers that asked may read.
    return cast("QuerySet[PortfolioConversion]", qs)


def state_counts(user) -> dict[str, int]:
    rows = Conversion.objects.filter(visible_to(user, "district")).values("state").annotate(n=Count("id"))
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


def rows(conversions: Iterable[PortfolioConversion]) -> list[Row]:
    """The portfolio lines of `conversions` (from `portfolio()`, so with the last job annotated)."""
    next_sync = next_nightly_sync()  # one midnight for the whole table
    zone = timezone.get_current_timezone()
    out = []
    for c in conversions:
        when = next_date(c, next_sync)
        text = when.text
        out.append(
            Row(
                url=reverse("district_year", args=(c.district.slug, c.school_year)),
                district=c.district.name,
                year_label=c.school_year_label,
                state=c.state,
                step=c.step_number,
                state_label=_STATE_LABELS.get(c.state, c.state),
                next_date=f"{when.label}: {text}" if text else when.label,
                job_label=_JOB_KIND_LABELS.get(c.last_job_kind or "", c.last_job_kind or ""),
                job_state=c.last_job_state or "",
                job_state_label=_JOB_STATE_LABELS.get(c.last_job_state or "", c.last_job_state or ""),
                # What |date:"M j H:i T" gave, in the current time zone: "Nov 22 14:05 MST".
                job_at=c.last_job_at.astimezone(zone).strftime("%b %-d %H:%M %Z") if c.last_job_at else "",
            )
        )
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
    """The user's own unread notes, newest first; kept PORTFOLIO_CACHE_SECONDS in the default cache (keyed
    by user: notes are never shared). `forget_notes` drops them when the user marks notes read."""
    window = settings.PORTFOLIO_CACHE_SECONDS
    if window <= 0:
        return _unread_notes(user)
    return cast(list[Note], cache.get_or_set(_notes_key(user), lambda: _unread_notes(user), window))


def _unread_notes(user) -> list[Note]:
    zone = timezone.get_current_timezone()
    return [
        Note(
            pk=n.pk,
            text=n.text,
            url=reverse("district_year", args=(n.conversion.district.slug, n.conversion.school_year)),
            when=n.created_at.astimezone(zone).strftime("%b %-d, %Y %H:%M %Z"),
        )  # as |date:"M j, Y H:i T"
        for n in user.notifications.unread().only(
            "text", "created_at", "conversion__school_year", "conversion__district__slug"
        )
    ]


def forget_notes(user) -> None:
    """Drop the user's cached notes (with per-process memory, another process's copy ages out within the
    window; with Redis, every process's at once)."""
    cache.delete(_notes_key(user))


# ---- late and at-risk districts, the timeline and its CSV ------------------------------------------

AT_RISK_DAYS = 7  # a date this close with its step not reached yet
MISSED_SYNC_AFTER = dt.timedelta(hours=26)  # a live district whose last nightly sync is older missed one
S = ConversionState
_BEFORE_PAUSE = (S.AGENT_SETUP, S.CONNECTION, S.PAUSE)
_BEFORE_GO_LIVE = (S.AGENT_SETUP, S.CONNECTION, S.PAUSE, S.MAPPING, S.REMAPPING)


@dataclass(frozen=True, slots=True)
class Flag:
    level: str  # "late" | "at-risk"
    text: str


def flags(c: PortfolioConversion, now: dt.datetime | None = None) -> list[Flag]:
    """Why a conversion is late or at risk: a go-live date passed with the remap not done, a pause date passed
    without the pause, a failed or missed nightly sync (or those dates coming within AT_RISK_DAYS).
    `c` comes from `portfolio()` (its last nightly sync annotated)."""
    now = now or timezone.now()
    today = timezone.localdate(now, timezone=c.district.tzinfo)
    soon = today + dt.timedelta(days=AT_RISK_DAYS)
    out = []
    if c.go_live_date and c.state in _BEFORE_GO_LIVE:
        if c.go_live_date <= today:
            out.append(Flag("late", f"Go-live date {c.go_live_date:%b %-d} passed; remap not done"))
        elif c.go_live_date <= soon:
            out.append(Flag("at-risk", f"Go-live {c.go_live_date:%b %-d}; remap not done"))
    pause = c.effective_pause_date
    if c.state in _BEFORE_PAUSE:
        if pause < today:
            out.append(Flag("late", f"Pause date {pause:%b %-d} passed; legacy sync not paused"))
        elif pause <= soon and c.state != S.PAUSE:
            out.append(Flag("at-risk", f"Pause {pause:%b %-d}; still at step {c.step_number}"))
    if c.state == S.LIVE and not c.nightly_sync_paused:
        if c.last_sync_state == SyncState.FAILED:
            out.append(Flag("late", "Last nightly sync failed"))
        elif (c.last_sync_at or c.live_since or now) < now - MISSED_SYNC_AFTER:
            out.append(Flag("late", "Nightly sync missed"))
    return out


@dataclass(frozen=True, slots=True)
class TimelineRow:
    url: str
    district: str
    year_label: str
    step: int
    state_label: str
    pause_date: dt.date
    go_live_date: dt.date | None
    last_sync_at: dt.datetime | None
    last_sync_state: str
    flags: tuple[Flag, ...]
    next_actor: str  # workflow.next_step's actor

    @property
    def level(self) -> str:
        levels = {f.level for f in self.flags}
        return "late" if "late" in levels else "at-risk" if levels else ""


def timeline_rows(conversions: Iterable[PortfolioConversion], now: dt.datetime | None = None) -> list[TimelineRow]:
    conversions = list(conversions)
    facts = workflow.step_facts_for(conversions)
    out = []
    for c in conversions:
        out.append(
            TimelineRow(
                url=reverse("district_year", args=(c.district.slug, c.school_year)),
                district=c.district.name,
                year_label=c.school_year_label,
                step=c.step_number,
                state_label=_STATE_LABELS.get(c.state, c.state),
                pause_date=c.effective_pause_date,
                go_live_date=c.go_live_date,
                last_sync_at=c.last_sync_at,
                last_sync_state=c.last_sync_state or "",
                flags=tuple(flags(c, now)),
                next_actor=workflow.next_step(c, facts[c.pk]).actor,
            )
        )
    return out


ROW_HEIGHT = 30
LABEL_WIDTH = 260
CHART_WIDTH = 640


@dataclass
class Timeline:
    """The SVG's geometry, worked out here so the template only prints: one row per district, x by date."""

    rows: list[dict]
    ticks: list[dict]
    today_x: float
    width: int
    height: int


def timeline(rows: list[TimelineRow], today: dt.date) -> Timeline:
    dates = [today] + [
        d for r in rows for d in (r.pause_date, r.go_live_date, r.last_sync_at.date() if r.last_sync_at else None) if d
    ]
    start = min(dates) - dt.timedelta(days=7)
    end = max(max(dates) + dt.timedelta(days=7), start + dt.timedelta(days=60))
    span = (end - start).days

    def x(d):
        return round(LABEL_WIDTH + CHART_WIDTH * (d - start).days / span, 1)

    ticks: list[dict] = []
    month = dt.date(start.year, start.month, 1)
    while month <= end:
        if month >= start:
            ticks.append(
                {
                    "x": x(month),
                    "label": month.strftime("%b %Y") if month.month == 1 or not ticks else month.strftime("%b"),
                }
            )
        month = dt.date(month.year + month.month // 12, month.month % 12 + 1, 1)
    out = []
    for i, r in enumerate(rows):
        y = 24 + i * ROW_HEIGHT
        sync_day = timezone.localtime(r.last_sync_at, SYNC_ZONE).date() if r.last_sync_at else None
        mid = y + ROW_HEIGHT // 2
        go = x(r.go_live_date) if r.go_live_date else None
        out.append(
            {
                "row": r,
                "y": y,
                "mid": mid,
                "text_y": mid + 4,
                "marker_y": mid - 5,
                "pause_x": x(r.pause_date) - 5,
                "go_live_points": f"{go},{mid - 7} {go + 7},{mid} {go},{mid + 7} {go - 7},{mid}"
                if go is not None
                else "",
                "sync_x": x(sync_day) if sync_day else None,
                "sync_day": sync_day,
            }
        )
    return Timeline(out, ticks, x(today), LABEL_WIDTH + CHART_WIDTH + 20, 24 + len(rows) * ROW_HEIGHT + 10)


CSV_HEADER = [
    "district",
    "school_year",
    "step",
    "state",
    "pause_date",
    "go_live_date",
    "last_nightly_sync",
    "last_nightly_sync_state",
    "next_action_by",
    "late_or_at_risk",
    "why",
]


def csv_rows(rows: list[TimelineRow]) -> Iterable[list[str]]:
    """The timeline's data, one line per district, as the CSV export gives it."""
    for r in rows:
        yield [
            r.district,
            r.year_label,
            str(r.step),
            r.state_label,
            r.pause_date.isoformat(),
            r.go_live_date.isoformat() if r.go_live_date else "",
            r.last_sync_at.astimezone(SYNC_ZONE).isoformat(timespec="minutes") if r.last_sync_at else "",
            r.last_sync_state,
            r.next_actor,
            r.level,
            "; ".join(f.text for f in r.flags),
        ]


@dataclass(frozen=True, slots=True)
class Attention:
    """What needs a person today, for one user: next actions that are theirs, and late districts."""

    role: str  # "consultant" | "district": whose turn "yours" counts
    yours: int
    late: int
    at_risk: int
    waiting_on_others: int


def attention(user, rows: list[TimelineRow]) -> Attention:
    mine = "consultant" if is_consultant(user) else "district"
    yours = sum(1 for r in rows if r.next_actor == mine)
    others = sum(1 for r in rows if r.next_actor in ("consultant", "district") and r.next_actor != mine)
    return Attention(
        role=mine,
        yours=yours,
        late=sum(1 for r in rows if r.level == "late"),
        at_risk=sum(1 for r in rows if r.level == "at-risk"),
        waiting_on_others=others,
    )
