"""Forms for the step data people type in. Validation of *values* lives here; rules live in workflow."""

from __future__ import annotations

from typing import Any

from django import forms

from conversion import peers
from conversion.models import AGENT_CHECKLIST, Conversion, Gradebook, SifVersion
from conversion.models.conversion import NOTE_MAX_LENGTH, check_step_date


class ZisSettingsForm(forms.ModelForm):
    instance: Conversion

    zis_url = forms.URLField(
        label="ZIS URL", required=False, assume_scheme="https", validators=[peers.PeerURLValidator("ZIS URL")]
    )
    zis_password = forms.CharField(
        label="ZIS password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted. Leave blank to keep the current one.",
    )
    sif_version = forms.ChoiceField(
        label="Zone's SIF version",
        choices=SifVersion.choices,
        required=False,
        help_text=Conversion._meta.get_field("sif_version").help_text,
    )

    class Meta:
        model = Conversion
        fields = [
            "zis_url",
            "zone_id",
            "sif_version",
            "zis_username",
            "zis_password",
            "agent_source_id",
            "hosting",
            "zis_ca_bundle",
        ]
        widgets = {"zis_ca_bundle": forms.Textarea(attrs={"rows": 3})}

    def clean_zone_id(self) -> str:
        return self.cleaned_data["zone_id"].strip()  # then the model's validate_zone_id

    def clean_sif_version(self) -> str:
        # Absent from a post (an older page, a script): the zone's version stays what it was.
        return self.cleaned_data["sif_version"] or self.instance.sif_version

    def clean_zis_password(self) -> str:
        # Blank means "unchanged": the page never shows the stored password back.
        return self.cleaned_data["zis_password"] or self.instance.zis_password

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        url = cleaned.get("zis_url")
        if url is not None and peers.origin(url) != peers.origin(self.instance.zis_url) and self.instance.zis_url:
            # The stored password was given for the old host: it never follows the URL to another one.
            if not self.data.get(self.add_prefix("zis_password")):
                cleaned["zis_password"] = ""
                if cleaned.get("zis_username"):
                    self.add_error("zis_password", "The ZIS address changed: enter the password for the new ZIS.")
        return cleaned


class AgentChecklistForm(forms.ModelForm):
    class Meta:
        model = Conversion
        fields = [f for f, _, _ in AGENT_CHECKLIST]
        labels = {f: label for f, label, _ in AGENT_CHECKLIST}
        help_texts = {f: where for f, _, where in AGENT_CHECKLIST}


class DateInput(forms.DateInput):
    input_type = "date"


class StepDateRange(forms.ModelForm):
    """Pause and go-live dates within two years of the conversion's school year (models.check_step_date).

    A ModelForm without a Meta (as ModelForm itself): the forms below name the model and the field."""

    instance: Conversion

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        for name in ("pause_date", "go_live_date"):
            if name in self.fields and cleaned.get(name):
                problem = check_step_date(cleaned[name], self.instance.school_year)
                if problem:
                    self.add_error(name, problem)
        return cleaned


class PauseDateForm(StepDateRange):
    class Meta:
        model = Conversion
        fields = ["pause_date"]
        widgets = {"pause_date": DateInput()}
        labels = {"pause_date": "Pause date"}


class GoLiveDateForm(StepDateRange):
    class Meta:
        model = Conversion
        fields = ["go_live_date"]
        widgets = {"go_live_date": DateInput()}
        labels = {"go_live_date": "Go-live date"}


class GradebookForm(forms.ModelForm):
    class Meta:
        model = Conversion
        fields = ["gradebook"]

    def clean_gradebook(self) -> str:
        value = self.cleaned_data["gradebook"]
        if value not in (Gradebook.LEGACY, Gradebook.PTP):
            raise forms.ValidationError("Choose the legacy gradebook or PowerTeacher Pro.")
        return value


class ReasonForm(forms.Form):
    reason = forms.CharField(required=False, max_length=NOTE_MAX_LENGTH, widget=forms.Textarea(attrs={"rows": 2}))
