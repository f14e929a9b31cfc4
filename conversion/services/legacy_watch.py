"""Step 3, verified: after the pause, every SIS import Canvas received that this product did not make.

Pausing the legacy sync is the district's act (and the legacy integration's); the product's part is to
know that it happened. `check` reads Canvas's SIS imports created since the pause, keeps those that are
not ours (our imports are the syncs' and the remap jobs' recorded import ids, and uploads named by our
jobs), records what it saw in the audit trail and refreshes the diagnostics, whose new "legacy imports"
finding also alerts people. The remap is refused while legacy imports still arrive: each one would
re-create users under their PowerSchool ids.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from conversion import audit
from conversion.models import Conversion, Job, SyncRun
from conversion.services import diagnostics
from conversion.services.canvas_api import canvas_for
from conversion.services.legacy_seen import CHECK_ACTION, QUIET_HOURS, recent

# Reading what a check saw lives in legacy_seen (the diagnostics and the workflow read it there, since this
# module imports the diagnostics); the pages and the remap still find these two here.
from conversion.services.legacy_seen import latest as latest
from conversion.services.legacy_seen import still_arriving as still_arriving

FINDING_CODE = "legacy_imports"
SHOWN = 20  # imports kept in the evidence


# What the district must do, shown on the step's page (the diagnostic's advice says the same in short).
CHECKLIST = (
    "In PowerSchool, turn off the legacy Canvas plug-in's scheduled sync (or ask whoever runs it to).",
    "Stop any other SIS import job that posts to this Canvas account (scripts, other integrations).",
    f"Tell your implementation consultant: the remap runs once no such import arrived for {QUIET_HOURS} hours.",
)


def pause_moment(conversion: Conversion) -> dt.datetime | None:
    """When the legacy sync was paused: the recorded moment, else the start of the pause date (district
    time) once that has come; None before."""
    if conversion.legacy_sync_paused_at:
        return conversion.legacy_sync_paused_at
    start = dt.datetime.combine(conversion.effective_pause_date, dt.time(0), tzinfo=conversion.district.tzinfo)
    return start if start <= timezone.now() else None


def our_imports(conversion: Conversion) -> tuple[set[int], set[str]]:
    """The import ids this product made for the conversion, and the upload names its jobs used."""
    ids = {
        import_id
        for import_id in SyncRun.objects.filter(conversion=conversion).values_list("canvas_import_id", flat=True)
        if import_id is not None
    }
    # A sync keeps its upload's name on its SyncRun (services/sync.py), the other jobs in their detail.
    names = set(
        SyncRun.objects.filter(conversion=conversion).exclude(upload_name="").values_list("upload_name", flat=True)
    )
    for detail in Job.objects.filter(conversion=conversion).exclude(detail={}).values_list("detail", flat=True):
        if detail.get("import_id"):
            ids.add(int(detail["import_id"]))
        if detail.get("file_name"):
            names.add(detail["file_name"])
    return ids, names


def _describe(sis_import) -> dict:
    raw = sis_import.raw
    user = raw.get("user") or {}
    return {
        "id": sis_import.id,
        "created_at": sis_import.created_at.isoformat() if sis_import.created_at else None,
        "state": sis_import.workflow_state,
        "by": user.get("name") or user.get("login_id") or "",
        "files": sorted(
            {a.get("display_name") or a.get("filename") or "" for a in raw.get("csv_attachments") or []} - {""}
        ),
        "counts": {k: v for k, v in sis_import.counts.items() if v},
        "data_set": sis_import.diffing_data_set_identifier or "",
    }


def check(conversion: Conversion, *, user=None) -> dict:
    """Read Canvas's imports since the pause; record and return {since, foreign, newest, still_arriving}."""
    since = pause_moment(conversion)
    if since is None:
        return {"since": None, "count": 0, "foreign": [], "newest": None, "still_arriving": False}
    ids, names = our_imports(conversion)
    account = conversion.district.canvas_account_id or "self"
    foreign = []
    with canvas_for(conversion.district) as canvas:
        for sis_import in canvas.iter_sis_imports(account, created_since=since):
            if sis_import.created_at and sis_import.created_at < since:
                continue
            described = _describe(sis_import)
            if sis_import.id in ids or names & set(described["files"]):
                continue
            foreign.append(described)
    foreign.sort(key=lambda d: d["created_at"] or "", reverse=True)
    newest = foreign[0]["created_at"] if foreign else None
    result = {
        "since": since.isoformat(),
        "count": len(foreign),
        "foreign": foreign[:SHOWN],
        "newest": newest,
        "still_arriving": recent(newest),
    }
    summary = (
        (
            f"Canvas SIS imports since the pause: {len(foreign)} not made by this product"
            + (f", the last at {newest}" if newest else "")
        )
        if foreign
        else "Canvas SIS imports since the pause: none but ours"
    )
    audit.record(
        district=conversion.district,
        conversion=conversion,
        user=user,
        action=CHECK_ACTION,
        summary=summary,
        detail=result,
    )
    diagnostics.update_diagnostics(conversion)
    return result


def check_all() -> dict:
    """The scheduled look (hourly): every conversion past the pause and not yet live."""
    from conversion.models import ConversionState

    found = {}
    for conversion in Conversion.objects.filter(
        state__in=(ConversionState.MAPPING, ConversionState.REMAPPING, ConversionState.GO_LIVE)
    ).select_related("district"):
        try:
            found[conversion.pk] = check(conversion)["count"]
        except Exception as exc:  # one district's Canvas being down must not stop the others' checks
            found[conversion.pk] = f"error: {exc}"[:200]
    return found
