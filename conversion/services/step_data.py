"""Saving the data a step collects (ZIS details, checklist, dates, gradebook), with its audit.

Which role may edit which part is decided here, once, for every view that edits step data.
"""

from __future__ import annotations

from django import forms as django_forms
from django.db import transaction

from conversion import audit, forms
from conversion.models import Conversion, ConversionState
from conversion.rules import Role, role_in

# Fields whose values never go into the audit trail or a page: only the fact that they changed.
SECRET_FIELDS = {"zis_password", "canvas_token"}


class EditRefused(Exception):
    pass


# part -> (form class, roles that may edit it, states in which it may be edited (empty: any))
EDITABLE_PARTS: dict[str, tuple[type[django_forms.ModelForm], frozenset[Role], tuple[str, ...]]] = {
    "zis": (
        forms.ZisSettingsForm,
        frozenset({Role.CONSULTANT}),
        (ConversionState.AGENT_SETUP, ConversionState.CONNECTION),
    ),
    "checklist": (
        forms.AgentChecklistForm,
        frozenset({Role.CONSULTANT, Role.DISTRICT_ADMIN}),
        (ConversionState.AGENT_SETUP,),
    ),
    "pause_date": (forms.PauseDateForm, frozenset({Role.CONSULTANT}), tuple(ConversionState.values[:3])),
    "go_live_date": (forms.GoLiveDateForm, frozenset({Role.CONSULTANT}), tuple(ConversionState.values[:6])),
    "gradebook": (forms.GradebookForm, frozenset({Role.CONSULTANT, Role.DISTRICT_ADMIN}), ()),
}


def can_edit(conversion: Conversion, user, part: str) -> bool:
    _, roles, states = EDITABLE_PARTS[part]
    return role_in(user, conversion.district) in roles and (not states or conversion.state in states)


def form_for(conversion: Conversion, part: str, data=None) -> django_forms.ModelForm:
    form_class = EDITABLE_PARTS[part][0]
    return form_class(data=data, instance=conversion, prefix=part)


@transaction.atomic
def save_part(conversion: Conversion, part: str, form: django_forms.ModelForm, user) -> list[str]:
    """Save a valid form for `part`; returns the names of the fields that changed."""
    if part not in EDITABLE_PARTS or not can_edit(conversion, user, part):
        raise EditRefused("You cannot change this part of the conversion now.")
    before = Conversion.objects.select_for_update().get(pk=conversion.pk)
    changed = [name for name in form.Meta.fields if getattr(before, name) != form.cleaned_data.get(name)]
    if not changed:
        return []
    for name in changed:
        setattr(conversion, name, form.cleaned_data[name])
    conversion.save(update_fields=changed)
    detail = {
        name: (
            {"changed": True}
            if name in SECRET_FIELDS
            else {"from": _show(getattr(before, name)), "to": _show(form.cleaned_data[name])}
        )
        for name in changed
    }
    labels = ", ".join(str(conversion._meta.get_field(n).verbose_name) for n in changed)
    audit.record(
        district=conversion.district,
        conversion=conversion,
        user=user,
        action=f"edit:{part}",
        summary=f"Changed {labels}",
        detail=detail,
    )
    return changed


def _show(value) -> str:
    return "" if value is None else str(value)
