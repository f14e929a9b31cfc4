"""The form consultants use to change a district's roster policy (conversion.models.RosterPolicy)."""

from __future__ import annotations

from typing import Any

from django import forms

from conversion.models import RosterPolicy
from conversion.roster_rules import CANVAS_ROLES, DEFAULT_ROLE_MAP, TEACHER_ROLES

ROLE_LABELS = {
    "lead": "Lead teacher",
    "co_teacher": "Co-teacher",
    "job_share": "Job-share teacher",
    "aide": "Aide",
    "observer": "Observer",
}


class RosterPolicyForm(forms.ModelForm):
    instance: RosterPolicy

    class Meta:
        model = RosterPolicy
        fields = [
            "departed_status",
            "drop_status",
            "course_grouping",
            "course_id_pattern",
            "login_rule",
            "login_pattern",
            "staff_login_rule",
        ]
        labels = {
            "departed_status": "A student who left becomes",
            "drop_status": "A dropped enrollment becomes",
            "course_grouping": "Courses",
            "course_id_pattern": "Course SIS id",
            "login_rule": "Students' login",
            "login_pattern": "Students' login pattern",
            "staff_login_rule": "Teachers' login",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = {**DEFAULT_ROLE_MAP, **(self.instance.role_map or {})}
        for role in TEACHER_ROLES:
            self.fields[f"role_{role}"] = forms.ChoiceField(
                label=f"{ROLE_LABELS[role]} → Canvas role",
                choices=[(c, c) for c in CANVAS_ROLES],
                initial=current[role],
            )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        self.instance.role_map = {role: data[f"role_{role}"] for role in TEACHER_ROLES if data.get(f"role_{role}")}
        return data
