"""The consultant's portfolio: every conversion with its step, next date and last job."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from conversion.models import Conversion, ConversionState, Job
from conversion.rules import districts_visible_to

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


def next_date(conversion: Conversion) -> NextDate:
    state = conversion.state
    if state in (ConversionState.AGENT_SETUP, ConversionState.CONNECTION, ConversionState.PAUSE):
        custom = "" if conversion.pause_date else " (default)"
        return NextDate(f"Pause{custom}", conversion.effective_pause_date)
    if state in (ConversionState.MAPPING, ConversionState.REMAPPING, ConversionState.GO_LIVE):
        return NextDate("Go-live", conversion.go_live_date)
    if conversion.nightly_sync_paused:
        return NextDate("Nightly sync held", None)
    return NextDate("Next sync", next_nightly_sync())


def portfolio(user, *, query: str = "", state: str = "") -> QuerySet[Conversion]:
    """Conversions the user may see (one per district and school year), with their last job annotated."""
    last_job = Job.objects.filter(conversion=OuterRef("pk")).order_by("-created_at", "-id")
    qs = (
        Conversion.objects.filter(district__in=districts_visible_to(user))
        .select_related("district")
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
    from django.db.models import Count

    rows = Conversion.objects.filter(district__in=districts_visible_to(user)).values("state").annotate(n=Count("id"))
    counts = {s: 0 for s in ConversionState.values}
    counts.update({r["state"]: r["n"] for r in rows})
    return counts
