"""A consultant's notes about district approvals: the list, and marking them read."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from conversion.services import notifications, portfolio
from conversion.views.types import Request


@require_GET
def notifications_page(request: Request) -> HttpResponse:
    notes = request.user.notifications.select_related("conversion__district")[:200]
    return render(request, "portfolio/notifications_page.html", {"notes": notes})


@require_POST
def mark_read(request: Request) -> HttpResponse:
    """Mark one note (POST `notification`) or all of the user's notes read; only their own are touched."""
    raw = request.POST.get("notification", "")
    if raw and not (raw.isascii() and raw.isdigit() and len(raw) <= 18):  # '²' is a digit to str.isdigit
        return HttpResponseBadRequest("There is no such notification.")
    notifications.mark_read(request.user, int(raw) if raw else None)
    portfolio.forget_notes(request.user)  # the portfolio's cached list, so the next page shows the change
    if request.htmx:
        return render(request, "portfolio/_notifications.html", {"notes": portfolio.unread_notes(request.user)})
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "portfolio"
    return redirect(target)
