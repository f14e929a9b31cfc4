"""Onboarding without a shell: a consultant adds a district and its conversion, and keeps its details and
Canvas connection (checked live against Canvas) up to date. Consultants only."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from conversion import crypto
from conversion.forms import ZisSettingsForm
from conversion.models import Conversion
from conversion.onboarding_forms import CanvasForm, DistrictForm, NewDistrictForm
from conversion.rules import get_district_for_user, require_consultant
from conversion.services import onboarding, step_data


class OnboardingZisForm(ZisSettingsForm):
    """Step 1's ZIS details without the hosting (told from the PowerSchool URL) and the agent's source id.

    The zone's SIF version is asked here (issue 15's onboarding): a new district has no stored version to keep."""

    class Meta(ZisSettingsForm.Meta):
        fields = ["zis_url", "zone_id", "sif_version", "zis_username", "zis_password", "zis_ca_bundle"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sif_version"].required = True


def _consultant_only(request: HttpRequest) -> None:
    require_consultant(request.user, "Only an implementation consultant can add or configure districts.")


@require_http_methods(["GET", "POST"])
def new_district(request: HttpRequest) -> HttpResponse:
    _consultant_only(request)
    data = request.POST if request.method == "POST" else None
    district_form = NewDistrictForm(data, prefix="district")
    canvas_form = CanvasForm(data, prefix="canvas")
    zis_form = OnboardingZisForm(data, prefix="zis", instance=Conversion())
    forms = (district_form, canvas_form, zis_form)
    if request.method == "POST":
        if all(form.is_valid() for form in forms):
            with transaction.atomic():
                d = district_form.cleaned_data
                conversion = onboarding.create_district(
                    user=request.user,
                    name=d["name"],
                    powerschool_url=d["powerschool_url"],
                    time_zone=d["time_zone"],
                    school_year=d["school_year"],
                )
                c = canvas_form.cleaned_data
                onboarding.save_canvas(
                    conversion.district,
                    user=request.user,
                    canvas_url=c["canvas_url"],
                    account_id=c["canvas_account_id"],
                    token=c["canvas_token"],
                )
                zis = OnboardingZisForm(request.POST, prefix="zis", instance=conversion)
                zis.is_valid()
                step_data.save_part(conversion, "zis", zis, request.user)
            check = onboarding.check_canvas(conversion.district, user=request.user)
            messages.success(request, f"Added {conversion.district.name}.")
            (messages.success if check.ok else messages.warning)(request, _check_message(check))
            return redirect("district_settings", slug=conversion.district.slug)
        messages.error(request, "Please correct the errors below.")
    return render(
        request,
        "onboarding/new_district.html",
        {"district_form": district_form, "canvas_form": canvas_form, "zis_form": zis_form},
        status=422 if request.method == "POST" else 200,
    )


def _check_message(check: onboarding.CanvasCheck) -> str:
    if check.ok:
        return f"Canvas answered: {check.account_name}; the token holds every permission the conversion needs."
    return f"Canvas check: {check.error}"


def _settings_context(district, *, district_form=None, canvas_form=None) -> dict:
    latest = onboarding.latest_canvas_check(district)
    return {
        "district": district,
        "conversion": district.conversions.order_by("-school_year").first(),
        "district_form": district_form
        or DistrictForm(
            prefix="district",
            initial={
                "name": district.name,
                "powerschool_url": district.powerschool_url,
                "time_zone": district.time_zone,
            },
        ),
        "canvas_form": canvas_form
        or CanvasForm(
            prefix="canvas",
            has_token=bool(district.canvas_token),
            initial={"canvas_url": district.canvas_url, "canvas_account_id": district.canvas_account_id},
        ),
        "token_masked": crypto.masked(district.canvas_token),
        "check": latest[0] if latest else None,
        "check_event": latest[1] if latest else None,
        "audit_events": district.audit_events.filter(conversion__isnull=True)[:30],
    }


def _district(request: HttpRequest, slug: str):
    district = get_district_for_user(request.user, slug)  # 404 for districts the user may not see
    _consultant_only(request)
    return district


def district_settings(request: HttpRequest, slug: str) -> HttpResponse:
    district = _district(request, slug)
    return render(request, "onboarding/settings.html", _settings_context(district))


@require_POST
def save_district(request: HttpRequest, slug: str) -> HttpResponse:
    district = _district(request, slug)
    form = DistrictForm(request.POST, prefix="district")
    if not form.is_valid():
        messages.error(request, "Please correct the errors below.")
        return render(request, "onboarding/settings.html", _settings_context(district, district_form=form), status=422)
    changed = onboarding.update_district(district, user=request.user, **form.cleaned_data)
    messages.success(request, "Saved." if changed else "Nothing changed.")
    return redirect("district_settings", slug=district.slug)


@require_POST
def save_canvas(request: HttpRequest, slug: str) -> HttpResponse:
    district = _district(request, slug)
    form = CanvasForm(
        request.POST, prefix="canvas", has_token=bool(district.canvas_token), current_url=district.canvas_url
    )
    if not form.is_valid():
        messages.error(request, "Please correct the errors below.")
        return render(request, "onboarding/settings.html", _settings_context(district, canvas_form=form), status=422)
    c = form.cleaned_data
    onboarding.save_canvas(
        district,
        user=request.user,
        canvas_url=c["canvas_url"],
        account_id=c["canvas_account_id"],
        token=c["canvas_token"],
    )
    check = onboarding.check_canvas(district, user=request.user)
    (messages.success if check.ok else messages.warning)(request, _check_message(check))
    return redirect("district_settings", slug=district.slug)


@require_POST
def check_canvas(request: HttpRequest, slug: str) -> HttpResponse:
    district = _district(request, slug)
    check = onboarding.check_canvas(district, user=request.user)
    (messages.success if check.ok else messages.warning)(request, _check_message(check))
    return redirect("district_settings", slug=district.slug)
