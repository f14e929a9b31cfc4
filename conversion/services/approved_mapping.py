"""What the district approved at step 4: the mapping diff behind its newest approval, and the legacy course
grouping that diff learned. Kept below mapping, remap, roster and sis_csv, which all read it."""

from __future__ import annotations

from conversion.models import ApprovalKind, Conversion, MappingDiff, MatchStatus

# A mapping row of this kind: a further section of a legacy course that holds several, and the course it stays in.
LEGACY_GROUP = "legacy_group"


def approved_diff(conversion: Conversion) -> MappingDiff | None:
    """The mapping diff behind the district's newest mapping approval."""
    approval = conversion.approvals.filter(kind=ApprovalKind.MAPPING).order_by("-approved_at", "-id").first()
    if approval is None or not approval.subject.startswith("mapping_diff:"):
        return None
    return MappingDiff.objects.filter(pk=int(approval.subject.split(":")[1]), conversion=conversion).first()


def legacy_course_groups(conversion: Conversion) -> dict[str, str]:
    """Section SIS id -> the Canvas course the legacy integration kept it in (its course's new id), from the mapping
    diff the district approved (the one the remap carried out)."""
    diff = approved_diff(conversion)
    if diff is None:
        return {}
    return dict(diff.rows.filter(kind=LEGACY_GROUP, status=MatchStatus.MATCHED).values_list("key", "sif_value"))
