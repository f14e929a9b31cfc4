"""Each person's choice: every alert by e-mail as it happens, or one digest a day."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from conversion.models import Delivery
from conversion.services import notifications


class DeliveryForm(forms.Form):
    delivery = forms.ChoiceField(choices=Delivery.choices, widget=forms.RadioSelect, label="Alerts by e-mail")


@require_http_methods(["GET", "POST"])
def alert_settings(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = DeliveryForm(request.POST)
        if form.is_valid():
            notifications.set_delivery(request.user, form.cleaned_data["delivery"])
            messages.success(request, "Saved.")
            return redirect("alert_settings")
    else:
        form = DeliveryForm(initial={"delivery": notifications.delivery_of(request.user)})
    return render(request, "alerts/settings.html", {"form": form})
