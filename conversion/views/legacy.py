"""Step 3, verified: the SIS imports Canvas received after the pause that the product did not make."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from conversion.jobs import JobFailed
from conversion.rules import can_drive, require
from conversion.services import legacy_watch
from conversion.views.access import get_conversion_for_user


@require_GET
def legacy_imports(request: HttpRequest, slug: str, year: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    seen = legacy_watch.latest(conversion)
    event = conversion.audit_events.filter(action=legacy_watch.CHECK_ACTION).first()
    return render(
        request,
        "legacy/legacy_imports.html",
        {
            "conversion": conversion,
            "district": conversion.district,
            "seen": seen,
            "event": event,
            "pause_moment": legacy_watch.pause_moment(conversion),
            "checklist": legacy_watch.CHECKLIST,
            "still_arriving": legacy_watch.still_arriving(conversion),
            "can_check": can_drive(request.user, conversion.district),
        },
    )


@require_POST
def check_now(request: HttpRequest, slug: str, year: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    require(can_drive(request.user, conversion.district), "Only an implementation consultant can ask Canvas now.")
    try:
        seen = legacy_watch.check(conversion, user=request.user)
    except JobFailed as exc:
        messages.error(request, str(exc))
    else:
        if seen["since"] is None:
            messages.warning(request, "The pause has not come yet: there is nothing to look for.")
        else:
            messages.success(
                request, f"Canvas checked: {seen['count']} import(s) since the pause not made by this product."
            )
    return redirect("legacy_imports", slug=slug, year=year)
