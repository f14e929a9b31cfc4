"""Step 1 aids: the support ticket or checklist, the agent.cfg mappings download, the district's schools."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from conversion.services import setup_aids, step_data
from conversion.services.step_data import EditRefused
from conversion.views.access import get_conversion_for_user
from conversion.views.types import Request


def _mappings_url(request: Request, conversion) -> str:
    return request.build_absolute_uri(
        reverse("setup_mappings", kwargs={"slug": conversion.district.slug, "year": conversion.school_year})
    )


@require_GET
def setup_page(request: Request, slug: str, year: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    context = {
        "conversion": conversion,
        "district": conversion.district,
        "aids": setup_aids.setup_aids(conversion, _mappings_url(request, conversion)),
        "schools": setup_aids.pulled_schools(conversion),
        "can_choose_schools": setup_aids.can_choose_schools(conversion, request.user),
        "can_tick": step_data.can_edit(conversion, request.user, "checklist"),
    }
    template = "district/_setup_aids.html" if request.htmx else "district/setup_page.html"
    return render(request, template, context)


@require_GET
def agent_mappings(request: Request, slug: str, year: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    response = HttpResponse(setup_aids.mappings_document(conversion), content_type="application/xml; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{setup_aids.mappings_filename(conversion)}"'
    return response


@require_GET
def support_ticket(request: Request, slug: str, year: int) -> HttpResponse:
    """The ticket as plain text: what the "copy" button opens when JavaScript is off."""
    conversion = get_conversion_for_user(request.user, slug, year)
    text = setup_aids.support_ticket_text(conversion, _mappings_url(request, conversion))
    return HttpResponse(text, content_type="text/plain; charset=utf-8")


@require_POST
def choose_schools(request: Request, slug: str, year: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    try:
        changed = setup_aids.set_expected_schools(conversion, request.POST.getlist("school"), user=request.user)
    except EditRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, "Schools saved." if changed else "Nothing changed.")
    return redirect("district_year", slug=slug, year=year)
