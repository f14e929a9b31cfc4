"""Forms of the onboarding pages: a new district, its own details, its Canvas connection, an invitation."""

from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms

from conversion import peers
from conversion.models import District
from conversion.peers import PeerURLValidator
from conversion.services.demo import current_school_year

# The US zones first (where the districts are), then every other IANA zone.
_US = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
]
TIME_ZONE_CHOICES = [(z, z) for z in _US] + [(z, z) for z in sorted(zoneinfo.available_timezones()) if z not in _US]


class DistrictForm(forms.Form):
    name = forms.CharField(max_length=200)
    powerschool_url = forms.URLField(
        label="PowerSchool URL",
        assume_scheme="https",
        help_text="Hosting is told from it: an address under powerschool.com is PowerSchool-hosted.",
    )
    time_zone = forms.ChoiceField(choices=TIME_ZONE_CHOICES, initial="America/Denver")


class NewDistrictForm(DistrictForm):
    school_year = forms.IntegerField(
        label="School year (the year it ends)",
        min_value=2000,
        max_value=2100,
        help_text="SIF's SchoolYear: 2027 for 2026–27.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["school_year"].initial = current_school_year()

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if District.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError("A district of that name exists already.")
        return name


class CanvasForm(forms.Form):
    canvas_url = forms.URLField(label="Canvas URL", assume_scheme="https", validators=[PeerURLValidator("Canvas URL")])
    canvas_account_id = forms.CharField(label="Canvas root account id", max_length=64, initial="1")
    canvas_token = forms.CharField(
        label="Canvas API token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave blank to keep the current one.",
    )

    def __init__(self, *args, has_token: bool = False, current_url: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.has_token = has_token
        self.current_url = current_url

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        url = data.get("canvas_url")
        # A token follows its Canvas: a new scheme, host or port asks for it again (as the ZIS password does).
        moved = bool(url and self.current_url and peers.origin(url) != peers.origin(self.current_url))
        if not data.get("canvas_token") and (not self.has_token or moved):
            self.add_error(
                "canvas_token",
                "The Canvas address changed: give the API token again for the new address."
                if moved
                else "Give the API token of a Canvas admin of the root account.",
            )
        return data


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address")
