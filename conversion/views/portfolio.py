"""The portfolio: every district a user may see, with its step, next date and last job."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import caches
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from conversion.models import ConversionState
from conversion.services import portfolio as portfolio_service
from conversion.spreadsheet import SafeWriter

PAGE_SIZE = 50
# A cached table is re-rendered by one request once it is this part of PORTFOLIO_CACHE_SECONDS old, while
# the others keep answering with it; past the whole window nobody is answered with it any more.
REFRESH_AT = 0.5


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


def _filters(request: HttpRequest) -> tuple[str, str]:
    query = request.GET.get("q", "").strip()[:100]
    state = request.GET.get("state", "")
    return query, state if state in ConversionState.values else ""


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
def portfolio_csv(request: HttpRequest) -> HttpResponse:
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
def portfolio(request: HttpRequest) -> HttpResponse:
    query, state = _filters(request)
    table, filters = _cached_render(request.user, query, state, _page_number(request.GET.get("page")))
    table = mark_safe(table)  # our own templates' output, escaped when it was rendered
    if request.htmx and not request.htmx.boosted:
        return HttpResponse(table)
    context = {"table": table, "filters": mark_safe(filters), "notes": portfolio_service.unread_notes(request.user)}
    return render(request, "portfolio/portfolio.html", context)
