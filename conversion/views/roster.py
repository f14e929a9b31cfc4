"""Posting a district's roster policy (consultants only); the rule and the audit are in services.roster_settings."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from conversion.roster_forms import RosterPolicyForm
from conversion.rules import can_drive, require
from conversion.services import rollover
from conversion.services.roster_settings import policy_row, save_policy
from conversion.views.access import get_conversion_for_user


@require_POST
def save_roster_policy(request: HttpRequest, slug: str, year: int) -> HttpResponse:
    conversion = get_conversion_for_user(request.user, slug, year)
    require(can_drive(request.user, conversion.district), "Only consultants change a district's roster policy.")
    form = RosterPolicyForm(request.POST, instance=policy_row(conversion.district))
    if not form.is_valid():
        errors = "; ".join(
            f"{form.fields[f].label if f in form.fields else ''} {' '.join(str(m) for m in e)}".strip()
            for f, e in form.errors.items()
        )
        messages.error(request, f"The roster policy was not saved: {errors}")
    else:
        changed = save_policy(conversion.district, form, request.user, conversion)
        messages.success(request, "Roster policy saved." if changed else "Nothing changed.")
    return redirect("district_year", slug=slug, year=year)


@require_POST
def roll_over(request: HttpRequest, slug: str, year: int) -> HttpResponse:
    """A consultant moves a live district on to the next school year (services.rollover)."""
    conversion = get_conversion_for_user(request.user, slug, year)
    require(can_drive(request.user, conversion.district), "Only consultants move a district to the next school year.")
    try:
        new_year = rollover.roll_over(conversion, user=request.user)
    except rollover.RolloverRefused as refused:
        messages.error(request, str(refused))
        return redirect("district_year", slug=slug, year=year)
    messages.success(request, f"Moved on to {new_year - 1}-{new_year}: the next night syncs the new year.")
    return redirect("district_year", slug=slug, year=new_year)
