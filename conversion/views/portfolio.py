"""The portfolio: every district a user may see, with its step, next date and last job."""

from __future__ import annotations

import hashlib
import time
from typing import cast

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from conversion.models import ConversionState
from conversion.services import portfolio as portfolio_service
from conversion.spreadsheet import SafeWriter
from conversion.views.types import Request

PAGE_SIZE = 50


def _page_number(raw: str | None) -> int:
    return min(int(raw), 100_000) if raw and raw.isascii() and raw.isdigit() and int(raw) > 0 else 1


def _render(user, query: str, state: str, page_number: int) -> tuple[str, str]:
    """The timeline and table, and the counts with the filter form, as HTML. Rendered without the request:
    they hold nothing of the session (no CSRF token, no user name), only rows the user's audience may see
    (and counts for its role), so they can be shared by that audience."""
    counts = portfolio_service.state_counts(user)
    paginator = Paginator(portfolio_service.portfolio(user, query=query, state=state), PAGE_SIZE)
    if not query:  # the counts already say how many rows there are: no COUNT query
        paginator.count = counts[state] if state else sum(counts.values())
    page = paginator.get_page(page_number)
    conversions = list(page.object_list)
    now = timezone.now()
    timeline_rows = portfolio_service.timeline_rows(conversions, now)
    every_row = portfolio_service.timeline_rows(portfolio_service.portfolio(user, last_job=False), now)
    table = render_to_string(
        "portfolio/_table.html",
        {
            "rows": portfolio_service.rows(conversions),
            "page": page,
            "query": query,
            "state": state,
            "timeline": portfolio_service.timeline(timeline_rows, timezone.localdate(now)),
        },
    )
    filters = render_to_string(
        "portfolio/_filters.html",
        {
            "step_counts": [(value, label, counts.get(value, 0)) for value, label in ConversionState.choices],
            "attention": portfolio_service.attention(user, every_row),
            "query": query,
            "state": state,
        },
    )
    return table, filters


def render_key(user, query: str, state: str, page_number: int) -> str:
    digest = hashlib.sha256(query.encode()).hexdigest()[:16]
    return f"portfolio:{portfolio_service.audience(user)}:{state}:{page_number}:{digest}"


def _cached_render(user, query: str, state: str, page_number: int) -> tuple[str, str]:
    """`_render`, kept PORTFOLIO_CACHE_SECONDS in the default cache (this process's memory, or Redis when
    CACHE_URL is set), keyed by audience (all consultants see the same rows; anyone else only their own),
    filter and page.

    Stale while one request renders anew: a render costs ~150 ms of CPU over 1,000 districts, so when a copy ages
    out only the request that wins `cache.add` of the key's lock renders; the others answer with the copy a few
    seconds old, instead of every concurrent request rendering at once when the copy ages out."""
    window = settings.PORTFOLIO_CACHE_SECONDS
    if window <= 0:
        return _render(user, query, state, page_number)
    key = render_key(user, query, state, page_number)
    held = cache.get(key)
    now = time.time()  # wall clock: the copy may come from another process (Redis)
    if held is not None:
        fresh_until, rendered = held
        if now < fresh_until or not cache.add(f"{key}:rendering", 1, timeout=30):
            return cast(tuple[str, str], rendered)
    try:
        rendered = _render(user, query, state, page_number)
        # Kept well past its window so that a stale copy is there to serve while the next render runs.
        cache.set(key, (time.time() + window, rendered), timeout=window * 30)
    finally:
        if held is not None:
            cache.delete(f"{key}:rendering")
    return rendered


def _filters(request: Request) -> tuple[str, str]:
    query = request.GET.get("q", "").strip()[:100]
    state = request.GET.get("state", "")
    return query, state if state in ConversionState.values else ""


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
def portfolio_csv(request: Request) -> StreamingHttpResponse:
    """The timeline's data for every district the filter keeps (not only one page), as CSV."""
    query, state = _filters(request)
    rows = portfolio_service.timeline_rows(
        portfolio_service.portfolio(request.user, query=query, state=state, last_job=False)
    )
    writer = SafeWriter(_Echo())  # opened in a spreadsheet: a district name must not start a formula
    lines = (writer.writerow(line) for line in [portfolio_service.CSV_HEADER, *portfolio_service.csv_rows(rows)])
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="districts.csv"'
    return response


@require_GET
def portfolio(request: Request) -> HttpResponse:
    query, state = _filters(request)
    table, filters = _cached_render(request.user, query, state, _page_number(request.GET.get("page")))
    table = mark_safe(table)  # our own templates' output, escaped when it was rendered
    if request.htmx and not request.htmx.boosted:
        return HttpResponse(table)
    context = {"table": table, "filters": mark_safe(filters), "notes": portfolio_service.unread_notes(request.user)}
    return render(request, "portfolio/portfolio.html", context)
