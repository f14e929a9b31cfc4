"""The portfolio: every district a user may see, with its step, next date and last job."""
from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import caches
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from conversion.models import ConversionState
from conversion.services import portfolio as portfolio_service

PAGE_SIZE = 50
# A cached table is re-rendered by one request once it is this part of PORTFOLIO_CACHE_SECONDS old, while
# the others keep answering with it; past the whole window nobody is answered with it any more.
REFRESH_AT = 0.5


def _page_number(raw: str | None) -> int:
    return min(int(raw), 100_000) if raw and raw.isascii() and raw.isdigit() and int(raw) > 0 else 1


def _render(user, query: str, state: str, page_number: int) -> tuple[str, str]:
    """The table and the step counts with the filter form, as HTML. Rendered without the request: they hold
    nothing of the session (no CSRF token, no user name), only rows the user's audience may see, so they
    can be shared by that audience."""
    counts = portfolio_service.state_counts(user)
    paginator = Paginator(portfolio_service.portfolio(user, query=query, state=state), PAGE_SIZE)
    if not query:  # the counts already say how many rows there are: no COUNT query
        paginator.count = counts[state] if state else sum(counts.values())
    page = paginator.get_page(page_number)
    table = render_to_string("portfolio/_table.html", {
        "rows": portfolio_service.rows(page.object_list), "page": page, "query": query, "state": state})
    filters = render_to_string("portfolio/_filters.html", {
        "step_counts": [(value, label, counts.get(value, 0)) for value, label in ConversionState.choices],
        "query": query, "state": state})
    return table, filters


def _cached_render(user, query: str, state: str, page_number: int) -> tuple[str, str]:
    """`_render`, from the cache when a render this recent exists.

    Keyed by audience (all consultants see the same rows; anyone else only their own), filter and page.
    A render is served for at most PORTFOLIO_CACHE_SECONDS after its queries ran; from half that age one
    request renders it again (an `add` lock) while the others go on answering with the one they have, so
    an expiring entry does not send every waiting request into the database at once.
    """
    window = settings.PORTFOLIO_CACHE_SECONDS
    if window <= 0:
        return _render(user, query, state, page_number)
    digest = hashlib.sha256(query.encode()).hexdigest()[:16]
    key = f"portfolio:{portfolio_service.audience(user)}:{state}:{page_number}:{digest}"
    cache = caches["local"]  # this process's memory: see CACHES in settings
    cached = cache.get(key)
    if cached is not None:
        rendered_at, table, filters = cached
        age = time.time() - rendered_at
        if 0 <= age < window and (age < window * REFRESH_AT or not cache.add(f"{key}:refresh", 1, window)):
            return table, filters
    started = time.time()
    table, filters = _render(user, query, state, page_number)
    cache.set(key, (started, table, filters), window)
    cache.delete(f"{key}:refresh")
    return table, filters


@require_GET
def portfolio(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    state = request.GET.get("state", "")
    state = state if state in ConversionState.values else ""
    table, filters = _cached_render(request.user, query, state, _page_number(request.GET.get("page")))
    table = mark_safe(table)  # our own templates' output, escaped when it was rendered
    if request.htmx and not request.htmx.boosted:
        return HttpResponse(table)
    context = {"table": table, "filters": mark_safe(filters), "notes": portfolio_service.unread_notes(request.user)}
    return render(request, "portfolio/portfolio.html", context)
