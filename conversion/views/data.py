"""Step data views: mapping rows (filtered, paginated, CSV), files the jobs produced, held syncs."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from conversion import jobs
from conversion.models import MappingDiff, MatchStatus, SyncRun
from conversion.rules import AccessRefused
from conversion.services import remap, sync, sync_undo
from conversion.spreadsheet import SafeWriter, neutralise_csv
from conversion.views.access import get_conversion_for_user
from conversion.views.types import Request

KINDS = ("user", "course", "enrollment")
# Files the jobs keep that are for people (opened in a spreadsheet), not for Canvas.
READ_BY_PEOPLE = ("sync_errors", "removal_list")


def _filtered_rows(request: Request, diff: MappingDiff):
    kind = request.GET.get("kind", "")
    status = request.GET.get("status", "")
    q = request.GET.get("q", "").strip()[:100]
    rows = diff.rows.all()
    if kind in KINDS:
        rows = rows.filter(kind=kind)
    if status in MatchStatus.values:
        rows = rows.filter(status=status)
    if q:
        rows = rows.filter(Q(key__icontains=q) | Q(name__icontains=q) | Q(dcid=q) | Q(canvas_value=q))
    return rows.order_by("-blocking", "kind", "status", "key"), kind, status, q


def _latest_diff(conversion) -> MappingDiff:
    diff = MappingDiff.objects.filter(conversion=conversion).order_by("-created_at", "-id").first()
    if diff is None:
        raise Http404("No mapping check has run yet.")
    return diff


@require_GET
def mapping_rows(request: Request, slug: str, year: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    rows, kind, status, q = _filtered_rows(request, _latest_diff(conversion))
    context = {
        "conversion": conversion,
        "district": conversion.district,
        "page": Paginator(rows, 50).get_page(request.GET.get("page")),
        "kind": kind,
        "status": status,
        "q": q,
        "kinds": KINDS,
        "statuses": MatchStatus.choices,
        "status_label": MatchStatus(status).label if status in MatchStatus.values else "",
    }
    template = "district/_mapping_rows.html" if request.htmx else "district/mapping_rows_page.html"
    return render(request, template, context)


class _Echo:
    """A file-like object whose write returns the line, for csv.writer inside a streaming response."""

    def write(self, value: str) -> str:
        return value


def _csv_response(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    """A CSV download for people (opened in a spreadsheet): no cell starts a formula (conversion.spreadsheet)."""
    writer = SafeWriter(_Echo())

    def generate():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(generate(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
def mapping_csv(request: Request, slug: str, year: int) -> StreamingHttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    diff = _latest_diff(conversion)
    rows, *_ = _filtered_rows(request, diff)
    return _csv_response(
        f"mapping-{conversion.district.slug}-{diff.pk}.csv",
        ["kind", "status", "blocking", "key", "name", "sif", "canvas_sis_id", "dcid", "reason"],
        (
            [
                r.kind,
                r.status,
                "yes" if r.blocking else "",
                r.key,
                r.name,
                r.sif_value,
                r.canvas_value,
                r.dcid,
                r.reason,
            ]
            for r in rows.iterator(chunk_size=2000)
        ),
    )


@require_GET
def remap_preview_csv(request: Request, slug: str, year: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    plan = remap.plan(conversion)
    if plan is None:
        raise Http404("The district has not approved a mapping yet.")
    # A preview people read (the file sent to Canvas is made apart, unchanged): no cell starts a formula.
    preview = neutralise_csv(remap.change_file(plan.changes).decode("utf-8")).encode("utf-8")
    response = HttpResponse(preview, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="change_sis_id-preview-{conversion.district.slug}.csv"'
    return response


@require_GET
def artifact(request: Request, slug: str, year: int, artifact_id: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    item = get_object_or_404(conversion.artifacts.exclude(kind__in=["enrollment_keys"]), pk=artifact_id)
    content = bytes(item.content)
    if item.kind in READ_BY_PEOPLE:  # also those stored before their writer made them safe
        content = neutralise_csv(content.decode("utf-8")).encode("utf-8")
    response = HttpResponse(content, content_type=item.content_type)
    response["Content-Disposition"] = f'attachment; filename="{item.name}"'
    return response


@require_POST
def release_sync(request: Request, slug: str, year: int, run_id: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    run = get_object_or_404(SyncRun, pk=run_id, conversion=conversion)
    try:
        sync.release_held_sync(run, user=request.user, note=request.POST.get("note", ""))
    except ValueError as exc:
        messages.error(request, str(exc))
    except jobs.JobAlreadyActive:
        messages.error(request, "A sync is already queued or running: release this one once it has ended.")
    else:
        messages.success(request, "Released: the held sync is on its way to Canvas.")
    return redirect("district_year", slug=slug, year=year)


@require_POST
def remaster_sync(request: Request, slug: str, year: int) -> HttpResponse:
    """The sync history's "full sync" button: a remaster, with the consultant's reason."""
    conversion = get_conversion_for_user(request.user, slug, year)
    try:
        sync.start_remaster(conversion, user=request.user, reason=request.POST.get("reason", ""))
    except (AccessRefused, ValueError) as exc:  # the button is on a page district admins see too
        messages.error(request, f"The full sync cannot start: {exc}")
    else:
        messages.success(request, "Full sync (remaster) queued: the whole roster goes to Canvas without diffing.")
    return redirect("district_section", slug=slug, year=year, section="syncs")  # the form lives there


@require_POST
def undo_sync(request: Request, slug: str, year: int, run_id: int) -> HttpResponse:
    """The sync history's "Undo this sync": Canvas's restore_states, then a remaster (services/sync_undo.py)."""
    conversion = get_conversion_for_user(request.user, slug, year)
    run = get_object_or_404(SyncRun, pk=run_id, conversion=conversion)
    try:
        sync_undo.start_undo(
            run,
            user=request.user,
            reason=request.POST.get("reason", ""),
            undelete_only=request.POST.get("undelete_only") == "1",
        )
    except (AccessRefused, sync_undo.UndoRefused) as exc:  # the button is on a page district admins see too
        messages.error(request, f"This sync cannot be undone: {exc}")
    else:
        messages.success(request, "Undo queued: Canvas restores the import, then a full sync follows.")
    return redirect("district_section", slug=slug, year=year, section="syncs")  # the form lives there


@require_POST
def sync_thresholds(request: Request, slug: str, year: int) -> HttpResponse:
    """A consultant changes how much a night may remove before it is held (district and per school; audited)."""
    conversion = get_conversion_for_user(request.user, slug, year)
    try:
        sync.set_thresholds(
            conversion,
            user=request.user,
            district=request.POST.get("district", ""),
            schools=request.POST.get("schools", ""),
        )
    except AccessRefused as refused:  # the form is on a page district admins see too
        messages.error(request, str(refused))
    except ValueError as exc:
        messages.error(request, f"The thresholds were not changed: {exc}")
    else:
        messages.success(request, "Sync thresholds saved.")
    return redirect("district_section", slug=slug, year=year, section="syncs")  # the form lives there
