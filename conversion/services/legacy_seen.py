"""What the latest look at Canvas's SIS imports after the pause saw (legacy_watch.check records it).

Reading that record is apart from taking the look (legacy_watch, which talks to Canvas and refreshes the
diagnostics afterwards), so that the diagnostics and the workflow can read it without importing what
imports them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from conversion.models import AuditEvent, Conversion

# The audit action a check is recorded under; its detail is what the check saw.
CHECK_ACTION = "legacy_check"
# A legacy sync runs at least nightly: when none of its imports arrived for this long, it has stopped.
QUIET_HOURS = 36


def recent(newest: str | None, now: dt.datetime | None = None) -> bool:
    """Whether an import created at `newest` (ISO text) is within QUIET_HOURS of now."""
    if not newest:
        return False
    return (now or timezone.now()) - dt.datetime.fromisoformat(newest) < dt.timedelta(hours=QUIET_HOURS)


def latest(conversion: Conversion) -> dict[str, Any] | None:
    """What the latest check saw (its audit detail), or None before the first."""
    event = AuditEvent.objects.filter(conversion=conversion, action=CHECK_ACTION).order_by("-created_at", "-id").first()
    return event.detail if event else None


def still_arriving(conversion: Conversion) -> list[str]:
    """Why the remap must wait (empty: it need not), from the latest check."""
    seen = latest(conversion)
    if seen and recent(seen.get("newest")):
        last = seen["foreign"][0]
        return [
            f"Legacy SIS imports still reach Canvas after the pause (the last, import {last['id']}, at "
            f"{seen['newest']}): pause the legacy sync; the remap can run {QUIET_HOURS} hours after the last one."
        ]
    return []


def finding_evidence(conversion: Conversion) -> dict[str, Any] | None:
    """Evidence for the diagnostics' "legacy imports" finding: the latest check, while imports still arrive."""
    seen = latest(conversion)
    if seen and seen.get("foreign") and recent(seen.get("newest")):
        return {
            "count": seen.get("count", len(seen["foreign"])),
            "since": seen["since"],
            "newest": seen["newest"],
            "imports": seen["foreign"],
        }
    return None
