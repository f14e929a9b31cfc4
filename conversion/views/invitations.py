"""District admins: the list, invitations by e-mail, removal (consultants only), and accepting a link."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import SetPasswordForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from conversion.onboarding_forms import InviteForm
from conversion.rules import get_district_for_user, require_consultant
from conversion.services import invitations


def _district(request: HttpRequest, slug: str):
    district = get_district_for_user(request.user, slug)  # 404 first: a district the user may not see
    require_consultant(request.user, "Only an implementation consultant can add or remove a district's admins.")
    return district


def _page(request, district, form=None, status=200) -> HttpResponse:
    admins = district.admins.order_by("email", "username")
    return render(
        request,
        "invitations/admins.html",
        {"district": district, "admins": admins, "form": form or InviteForm()},
        status=status,
    )


def admins_page(request: HttpRequest, slug: str) -> HttpResponse:
    return _page(request, _district(request, slug))


@require_POST
def invite(request: HttpRequest, slug: str) -> HttpResponse:
    district = _district(request, slug)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _page(request, district, form, status=422)
    try:
        user = invitations.invite_admin(
            district, form.cleaned_data["email"], by=request.user, site_url=request.build_absolute_uri("/")
        )
    except invitations.InvitationRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Invitation sent to {user.email}.")
    return redirect("district_admins", slug=district.slug)


@require_POST
def remove(request: HttpRequest, slug: str, user_id: int) -> HttpResponse:
    district = _district(request, slug)
    user = get_object_or_404(get_user_model(), pk=user_id)
    try:
        invitations.remove_admin(district, user, by=request.user)
    except invitations.InvitationRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Removed {user.email or user.get_username()}.")
    return redirect("district_admins", slug=district.slug)


SESSION_TOKEN = "_invitation_token"
TOKEN_IN_SESSION = "set-password"


@login_not_required
@never_cache
@require_http_methods(["GET", "POST"])
def accept_invitation(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """As Django's password reset does: the link's token moves into the session at once and the browser
    goes on to a URL without it, so it never shows in the address bar, the history or a Referer."""
    if token != TOKEN_IN_SESSION:
        if invitations.user_for_link(uidb64, token) is None:
            return render(request, "invitations/accept.html", {"invalid": True}, status=404)
        request.session[SESSION_TOKEN] = token
        return redirect("accept_invitation", uidb64=uidb64, token=TOKEN_IN_SESSION)
    user = invitations.user_for_link(uidb64, request.session.get(SESSION_TOKEN, ""))
    if user is None:
        return render(request, "invitations/accept.html", {"invalid": True}, status=404)
    form = SetPasswordForm(user, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        invitations.accept(user, form)
        del request.session[SESSION_TOKEN]
        login(request, user, backend="conversion.authcache.CachedModelBackend")
        messages.success(request, "Your password is set. Welcome.")
        return redirect("portfolio")
    return render(
        request,
        "invitations/accept.html",
        {"form": form, "invited": user},
        status=422 if request.method == "POST" else 200,
    )
