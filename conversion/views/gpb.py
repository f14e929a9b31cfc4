"""Step 7: what grade passback sent for one Canvas course, assignment by assignment and student by student."""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from conversion.views.access import get_conversion_for_user


@require_GET
def gpb_course(request: HttpRequest, slug: str, year: int, course_id: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    items = list(conversion.gpb_items.filter(canvas_course_id=course_id)
                 .order_by("assignment_name", "canvas_assignment_id", "canvas_user_id"))
    if not items:  # no course of this district's grade passback by that id
        raise Http404("Grade passback has sent nothing for this course.")
    context = {"conversion": conversion, "district": conversion.district, "course_id": course_id, "items": items,
               "course": items[0] if items else None}
    template = "district/_gpb_course.html" if request.htmx else "district/gpb_course_page.html"
    return render(request, template, context)
