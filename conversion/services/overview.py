"""The figures the district page draws for steps 2–6, computed once per page view.

Everything here reads; nothing changes state. Numbers come with the largest value of their group so the
templates can draw bars without arithmetic of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone

from conversion.models import (
    Artifact,
    Conversion,
    ConversionState,
    JobKind,
    MappingDiff,
    MatchStatus,
    Snapshot,
    SyncRun,
)
from conversion.services import remap
from conversion.services.zis import PULL_OBJECTS
from conversion.workflow import latest_job

S = ConversionState


@dataclass
class Bar:
    label: str
    value: int
    of: int
    note: str = ""

    @property
    def percent(self) -> int:
        return round(100 * self.value / self.of) if self.of else 0


@dataclass
class PullSummary:
    snapshot: Snapshot
    objects: list[Bar]
    missing: list[str]
    schools: list[dict]
    school_years: list[dict]
    errors: dict[str, str]


def pull_summary(snapshot: Snapshot | None) -> PullSummary | None:
    if snapshot is None:
        return None
    counts = snapshot.counts or {}
    largest = max(counts.values(), default=0)
    objects = [Bar(name, counts.get(name, 0), largest) for name in PULL_OBJECTS]
    years = []
    for object_name, per_year in sorted((snapshot.summary.get("school_years") or {}).items()):
        for year, n in sorted(per_year.items(), reverse=True):
            years.append(
                {
                    "object": object_name,
                    "year": int(year),
                    "count": n,
                    "current": int(year) == snapshot.conversion.school_year,
                }
            )
    schools = snapshot.summary.get("schools") or []
    expected = {str(s) for s in snapshot.conversion.expected_school_ids or []}
    most = max((s.get("students", 0) for s in schools), default=0)
    for s in schools:
        s["bar"] = round(100 * s.get("students", 0) / most) if most else 0
        s["excluded"] = bool(expected) and s.get("local_id") not in expected
    return PullSummary(
        snapshot=snapshot,
        objects=objects,
        missing=[b.label for b in objects if b.value == 0],
        schools=schools,
        school_years=years,
        errors={n: i["error"] for n, i in (snapshot.requests or {}).items() if i.get("error")},
    )


STATUS_ORDER = [MatchStatus.MATCHED, MatchStatus.CONFLICT, MatchStatus.ONLY_SIF, MatchStatus.ONLY_CANVAS]


@dataclass
class MappingSummary:
    diff: MappingDiff
    rows: list[dict]  # one per kind: label, cells (status, count, percent)
    stale: bool = False


def mapping_summary(conversion: Conversion) -> MappingSummary | None:
    diff = MappingDiff.objects.filter(conversion=conversion).order_by("-created_at", "-id").first()
    if diff is None:
        return None
    current = MappingDiff.objects.current(conversion)
    rows = []
    for kind in ("user", "course", "enrollment"):
        per_status = diff.counts.get(kind, {})
        total = sum(per_status.values())
        rows.append(
            {
                "kind": kind,
                "total": total,
                "cells": [
                    {
                        "status": s.value,
                        "label": s.label,
                        "count": per_status.get(s.value, 0),
                        "percent": round(100 * per_status.get(s.value, 0) / total) if total else 0,
                    }
                    for s in STATUS_ORDER
                ],
            }
        )
    return MappingSummary(diff, rows, stale=current is None or current.pk != diff.pk)


@dataclass
class RemapSummary:
    plan: remap.PlanSummary
    reasons: list[Bar]
    artifacts: list[Artifact] = field(default_factory=list)


def remap_summary(conversion: Conversion) -> RemapSummary | None:
    if not conversion.is_past(S.MAPPING):
        return None
    plan = remap.plan_summary(conversion)
    if plan is None:
        return None
    total = plan.changes + sum(plan.skipped_by_reason.values())
    bars = [Bar("Will move to DCID", plan.changes, total)] + [
        Bar(reason, n, total) for reason, n in sorted(plan.skipped_by_reason.items(), key=lambda kv: -kv[1])
    ]
    artifacts = list(
        conversion.artifacts.filter(kind__in=["remap_file", "remap_reverse_file", "rollback_file"]).defer("content")[:6]
    )
    return RemapSummary(plan, bars, artifacts)


@dataclass
class SyncHistory:
    runs: list[SyncRun]
    chart: list[dict]  # for the SVG: x, y, height, label, value, state
    undoable: int | None = None  # the run "Undo this sync" is offered on: the last one sent to Canvas, not restored
    thresholds: dict = field(default_factory=dict)  # the district's sync policy, shown beside the history

    @property
    def chart_width(self) -> int:
        return 20 + 34 * len(self.chart)


def sync_history(conversion: Conversion, limit: int = 14) -> SyncHistory | None:
    runs = list(conversion.sync_runs.select_related("job__requested_by").order_by("-created_at", "-id")[:limit])
    if not runs and conversion.state != S.LIVE:
        return None
    ordered = list(reversed(runs))

    def sent(r):
        return 0 if r.state == "skipped" else r.counts.get("enrollments", 0)  # a skipped night sent nothing

    largest = max((sent(r) for r in ordered), default=0)
    chart = []
    for i, r in enumerate(ordered):
        value = sent(r)
        # A skipped night sent nothing but is drawn as a thin bar so the gap reads as "checked, no change".
        height = max(2, round(80 * value / largest)) if largest else 2
        chart.append(
            {
                "x": 10 + i * 34,
                "y": 90 - height,
                "height": height,
                "value": value,
                "state": r.state,
                "label": (r.business_date or timezone.localdate(r.created_at)).strftime("%b %-d"),
            }
        )
    from conversion.services import sync_undo  # the sync history's safety net (issue 15)

    latest = sync_undo.last_sent(conversion)
    undoable = latest.pk if latest is not None and not latest.restored_state else None
    district = conversion.district
    thresholds = {
        "district": district.sync_deletion_threshold,
        "schools": sorted((district.sync_school_thresholds or {}).items()),
    }
    return SyncHistory(runs, chart, undoable, thresholds)


def connection_result(conversion: Conversion):
    return latest_job(conversion, JobKind.TEST_CONNECTION, succeeded=False)
