"""The portfolio: every district a user may see, with its step, next date and last job."""
from __future__ import annotations

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from conversion.models import ConversionState, JobKind, JobState
from conversion.services import portfolio as portfolio_service


def _table(request: HttpRequest, query: str, state: str, page_number: str | None) -> tuple[str, dict]:
    """The rendered table and the step counts, from the cache when a render this recent exists."""
    key = f"portfolio:{request.user.pk}:{state}:{page_number}:{query}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    conversions = portfolio_service.portfolio(request.user, query=query, state=state)
    page = Paginator(conversions, 50).get_page(page_number)
    rows = [
        {
            "conversion": c,
            "next": portfolio_service.next_date(c),
            "last_job_label": JobKind(c.last_job_kind).label if c.last_job_kind else "",
            "last_job_state": JobState(c.last_job_state) if c.last_job_state else None,
        }
        for c in page.object_list
    ]
    html = render_to_string("portfolio/_table.html", {"rows": rows, "page": page, "query": query, "state": state},
                            request)
    result = (html, portfolio_service.state_counts(request.user))
    cache.set(key, result, settings.PORTFOLIO_CACHE_SECONDS)
    return result


@require_GET
def portfolio(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    state = request.GET.get("state", "")
    table, counts = _table(request, query, state, request.GET.get("page"))
    table = mark_safe(table)  # our own template's output, escaped when it was rendered
    if request.htmx and not request.htmx.boosted:
        return HttpResponse(table)
    context = {"table": table, "query": query, "state": state, "states": ConversionState.choices, "counts": counts}
    return render(request, "portfolio/portfolio.html", context)
