"""The portfolio: every district a user may see, with its step, next date and last job."""
from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from conversion.models import ConversionState, JobKind, JobState
from conversion.services import portfolio as portfolio_service


@require_GET
def portfolio(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    state = request.GET.get("state", "")
    conversions = portfolio_service.portfolio(request.user, query=query, state=state)
    page = Paginator(conversions, 50).get_page(request.GET.get("page"))
    rows = [
        {
            "conversion": c,
            "next": portfolio_service.next_date(c),
            "last_job_label": JobKind(c.last_job_kind).label if c.last_job_kind else "",
            "last_job_state": JobState(c.last_job_state) if c.last_job_state else None,
        }
        for c in page.object_list
    ]
    context = {
        "rows": rows, "page": page, "query": query, "state": state,
        "states": ConversionState.choices, "counts": portfolio_service.state_counts(request.user),
    }
    template = "portfolio/_table.html" if request.htmx and not request.htmx.boosted else "portfolio/portfolio.html"
    return render(request, template, context)
