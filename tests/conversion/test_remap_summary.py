"""The remap preview on the district page: the same figures as the full plan, worked out once per diff."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversion.models import Approval, ApprovalKind, MappingDiff, Snapshot
from conversion.models import MatchStatus as M
from conversion.services import overview, remap
from conversion.services.mapping import DiffRow, save_rows

pytestmark = pytest.mark.django_db


def test_the_summary_matches_the_plan_and_is_computed_once(conversion, district_admin):
    cache.clear()
    diff = MappingDiff.objects.create(conversion=conversion, snapshot=Snapshot.objects.create(conversion=conversion))
    rows = [
        DiffRow("user", M.MATCHED, str(n), f"Person {n}", "student", str(n), str(9000 + n), "same") for n in range(25)
    ]
    rows += [
        DiffRow("user", M.ONLY_SIF, "500", "New Person", "student", "", "9500", "new"),
        DiffRow("user", M.CONFLICT, "501", "Twin", "student", "501", "", "no DCID", blocking=True),
        DiffRow("user", M.ONLY_CANVAS, "990001", "Former", canvas_value="990001"),
    ]
    save_rows(diff, rows)
    Approval.objects.create(
        conversion=conversion, kind=ApprovalKind.MAPPING, subject=f"mapping_diff:{diff.pk}", approved_by=district_admin
    )

    full = remap.plan(conversion)
    summary = remap.plan_summary(conversion)
    assert summary.diff_id == diff.pk
    assert summary.changes == len(full.changes) == 25
    assert (
        summary.skipped_by_reason
        == full.skipped_by_reason
        == {
            "no DCID": 1,
            "not in Canvas yet: the first sync creates it under its DCID": 1,
            "not in the SIF data: left as it is": 1,
        }
    )
    assert list(summary.sample) == full.changes[:10]

    with CaptureQueriesContext(connection) as queries:
        assert remap.plan_summary(conversion) == summary
    assert not any("mappingrow" in q["sql"].lower() for q in queries.captured_queries)

    conversion.state = "remapping"
    bars = {b.label: b.value for b in overview.remap_summary(conversion).reasons}
    assert bars["Will move to DCID"] == 25 and sum(bars.values()) == 28
