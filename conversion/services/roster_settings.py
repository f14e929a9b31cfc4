"""Changing a district's roster policy: saved, and audited with what changed from what."""

from __future__ import annotations

from django.db import transaction

from conversion import audit
from conversion.models import District, RosterPolicy

FIELDS = (
    "departed_status",
    "drop_status",
    "role_map",
    "course_grouping",
    "course_id_pattern",
    "login_rule",
    "login_pattern",
)


def policy_row(district: District) -> RosterPolicy:
    """The district's stored policy, or an unsaved one with the defaults."""
    return RosterPolicy.objects.filter(district=district).first() or RosterPolicy(district=district)


def save_policy(district: District, form, user, conversion=None) -> list[str]:
    """Save a valid RosterPolicyForm; audit the changed fields (from → to). Returns the names changed."""
    before = policy_row(district)
    before_values = (
        {name: getattr(before, name) for name in FIELDS}
        if before.pk
        else {name: getattr(RosterPolicy(district=district), name) for name in FIELDS}
    )
    if before.pk is None:
        before_values["role_map"] = {}
    row = form.save(commit=False)
    after = {name: getattr(row, name) for name in FIELDS}
    from conversion.roster_rules import DEFAULT_ROLE_MAP

    norm = lambda v, name: {**DEFAULT_ROLE_MAP, **(v or {})} if name == "role_map" else v  # noqa: E731
    changed = [name for name in FIELDS if norm(before_values[name], name) != norm(after[name], name)]
    if not changed:
        return []
    with transaction.atomic():
        row.district = district
        row.save()
        audit.record(
            district=district,
            conversion=conversion,
            user=user,
            action="edit:roster_policy",
            summary="Changed the roster policy: " + ", ".join(n.replace("_", " ") for n in changed),
            detail={n: {"from": _show(norm(before_values[n], n)), "to": _show(norm(after[n], n))} for n in changed},
        )
    return changed


def _show(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} → {v}" for k, v in value.items())
    return "" if value is None else str(value)
