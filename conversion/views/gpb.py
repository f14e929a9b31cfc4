"""Step 7: what grade passback did for one Canvas course: the teacher's report (HTML and CSV), the categories
PowerSchool has beside Canvas's groups, the course's category mapping, and the item-by-item ledger."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from conversion.rules import can_act_for
from conversion.services import gradepassback
from conversion.views.access import get_conversion_for_user
from conversion.views.data import _csv_response
from conversion.views.types import Request


def _known_course(conversion, course_id: int) -> None:
    if not conversion.gpb_items.filter(canvas_course_id=course_id).exists():
        # no course of this district's grade passback by that id
        raise Http404("Grade passback has sent nothing for this course.")


def _context(request: Request, conversion, course_id: int) -> dict:
    items = list(
        conversion.gpb_items.filter(canvas_course_id=course_id).order_by(
            "assignment_name", "canvas_assignment_id", "canvas_user_id"
        )
    )
    if not items:
        raise Http404("Grade passback has sent nothing for this course.")
    return {
        "conversion": conversion,
        "district": conversion.district,
        "course_id": course_id,
        "items": items,
        "course": items[0] if items else None,
        "report": gradepassback.course_report(conversion, course_id),
        "can_map": can_act_for(request.user, conversion.district),
    }


@require_GET
def gpb_course(request: Request, slug: str, year: int, course_id: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    template = "district/_gpb_course.html" if request.htmx else "district/gpb_course_page.html"
    return render(request, template, _context(request, conversion, course_id))


@require_GET
def gpb_course_report(request: Request, slug: str, year: int, course_id: int) -> HttpResponse:
    """The report for the teacher, alone on the page (to print or send)."""
    conversion = get_conversion_for_user(request.user, slug, year)
    return render(
        request, "district/gpb_course_page.html", {**_context(request, conversion, course_id), "teacher": True}
    )


@require_GET
def gpb_course_csv(request: Request, slug: str, year: int, course_id: int) -> StreamingHttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    _known_course(conversion, course_id)
    report = gradepassback.course_report(conversion, course_id)
    name = (report.sis_course_id or str(course_id)).replace('"', "")
    return _csv_response(f"grade-passback-{name}.csv", gradepassback.REPORT_HEADER, (r.as_csv() for r in report.rows))


@require_POST
def gpb_category_override(request: Request, slug: str, year: int, course_id: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    _known_course(conversion, course_id)
    try:
        gradepassback.set_category_override(
            conversion, course_id, request.POST.get("group", ""), request.POST.get("category", ""), request.user
        )
    except gradepassback.OverrideRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, "Category mapping saved; the next grade passback run uses it.")
    return redirect("gpb_course", slug=slug, year=year, course_id=course_id)
