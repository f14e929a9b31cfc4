"""Every model names its row in words (the admin's lists and breadcrumbs, log lines), not "Artifact object (3)"."""

from __future__ import annotations

import pytest

from conversion.models import (
    Artifact,
    GpbCategoryOverride,
    MappingDiff,
    MappingRow,
    MatchStatus,
    RosterPolicy,
    Snapshot,
)

pytestmark = pytest.mark.django_db


def test_an_artifact_is_named_by_its_file_kind_and_rows(conversion):
    artifact = Artifact.objects.create(
        conversion=conversion, kind="sync_package", name="sis_import-job7.zip", content=b"zip", rows=42
    )
    assert str(artifact) == "sis_import-job7.zip (sync_package, 42 rows)"


def test_a_mapping_row_is_named_by_its_kind_key_and_status(conversion):
    diff = MappingDiff.objects.create(conversion=conversion, snapshot=Snapshot.objects.create(conversion=conversion))
    row = MappingRow.objects.create(diff=diff, kind="user", status=MatchStatus.ONLY_SIF, key="100234")
    assert str(row) == "user 100234: Only in SIF"


def test_a_category_override_says_which_group_goes_to_which_category(conversion):
    override = GpbCategoryOverride.objects.create(
        conversion=conversion, canvas_course_id=12, group_name="Labs", category_name="Lab Work"
    )
    assert str(override) == "Course 12: group \u201cLabs\u201d in \u201cLab Work\u201d"


def test_a_roster_policy_names_its_district(district):
    assert str(RosterPolicy.objects.create(district=district)) == "Roster policy of Alpha Unified"
