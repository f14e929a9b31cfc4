"""Writing the audit trail. Every state change, approval and edit goes through `record`."""

from __future__ import annotations

from typing import Any

from conversion.models import AuditEvent, Conversion, District

WORKER_LABEL = "worker"


def actor_label(user) -> str:
    return user.get_username() if user is not None else WORKER_LABEL


def record(
    *,
    district: District,
    conversion: Conversion | None,
    user,
    action: str,
    summary: str,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        district=district,
        conversion=conversion,
        actor=user,
        actor_label=actor_label(user),
        action=action,
        summary=summary[:300],
        from_state=from_state,
        to_state=to_state,
        reason=reason[:2000],  # people's reasons are refused beyond it at entry (workflow.check_note)
        detail=detail or {},
    )
