"""The nightly sync's policy and its decision, in one place: skip, hold or send.

`decide` is pure (no database, no Canvas): it takes what a run knows (why it must go whole, the fingerprints, what it
would remove) and the district's `SyncPolicy`, and says what the run does. `services/sync.py` gathers the facts and
carries the decision out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Action = Literal["skip", "hold", "send"]

# What a dropped enrollment becomes in Canvas (diffing_drop_status; canvas-lms lib/sis/csv/diff_generator.rb
# VALID_ENROLLMENT_DROP_STATUS): the district chooses it in its roster policy; "deleted" only where none is given.
DROP_STATUS = "deleted"


@dataclass(frozen=True)
class SyncPolicy:
    """How much one night may remove before a person looks, for the district and per school (percent of the last
    successful sync's enrollments), and what a drop becomes in Canvas."""

    deletion_threshold: int = 10
    school_thresholds: Mapping[str, int] = field(default_factory=dict)
    drop_status: str = DROP_STATUS

    @classmethod
    def for_district(cls, district, *, drop_status: str = DROP_STATUS) -> SyncPolicy:
        """The district's thresholds; its drop status is its roster policy's choice (RosterPolicy), passed in."""
        schools = {str(k): int(v) for k, v in (district.sync_school_thresholds or {}).items()}
        return cls(
            deletion_threshold=district.sync_deletion_threshold, school_thresholds=schools, drop_status=drop_status
        )

    @property
    def canvas_change_threshold(self) -> int:
        """Canvas's own `change_threshold`, passed on each diffed import: Canvas stops diffing (imports the files
        whole, dropping nothing) when the upload's size changed by more than this percent (sis_batch.rb
        `generate_diff`). The same number as ours: a second net behind the product's own count."""
        return max(1, min(100, self.deletion_threshold))

    def threshold_for(self, school: str) -> int | None:
        return self.school_thresholds.get(school)


@dataclass(frozen=True)
class SchoolRemovals:
    account_id: str
    name: str
    enrollments_before: int
    enrollments: int = 0
    users: int = 0
    courses: int = 0
    sections: int = 0


@dataclass(frozen=True)
class Removals:
    """What a package removes compared with the last successful sync's package."""

    enrollments_before: int
    enrollments: int
    users: int = 0
    courses: int = 0
    sections: int = 0
    schools: tuple[SchoolRemovals, ...] = ()


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""


def _share(removed: int, before: int) -> float:
    return removed * 100 / before if before else 0.0


def decide(
    policy: SyncPolicy,
    *,
    full_reason: str,
    previous_fingerprint: str | None,
    fingerprint: str,
    removals: Removals | None,
) -> Decision:
    """Skip (same data as the last successful sync), hold (too much would go), or send.

    (A released sync is not decided again: a person approved its removal list, and it goes as it is.)

    - a run that must go whole (`full_reason`: a remaster) is never skipped and never held: sent without diffing,
      it drops nothing;
    - the same fingerprint as the last successful sync: nothing new, skipped;
    - more than the district's threshold of the last sync's enrollments, or more than a school's own threshold of
      that school's enrollments, would be removed: held for a person's release;
    - otherwise sent.
    """
    if full_reason:
        return Decision("send", full_reason)
    if previous_fingerprint is not None and previous_fingerprint == fingerprint:
        return Decision("skip", "no new data since the last sync")
    if removals is None:
        return Decision("send")
    reasons = []
    share = _share(removals.enrollments, removals.enrollments_before)
    if share > policy.deletion_threshold:
        reasons.append(
            f"{removals.enrollments:,} of {removals.enrollments_before:,} enrollments ({share:.0f}%) would be "
            f"dropped, more than the {policy.deletion_threshold}% allowed without a look."
        )
    for school in removals.schools:
        limit = policy.threshold_for(school.account_id)
        school_share = _share(school.enrollments, school.enrollments_before)
        if limit is not None and school_share > limit:
            reasons.append(
                f"{school.name or school.account_id}: {school.enrollments:,} of {school.enrollments_before:,} "
                f"enrollments ({school_share:.0f}%) would be dropped, more than the school's {limit}%."
            )
    if reasons:
        return Decision("hold", " ".join(reasons))
    return Decision("send")
