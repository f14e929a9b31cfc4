"""Saving the data a step collects (ZIS details, checklist, dates, gradebook), with its audit.

Which role may edit which part is decided here, once, for every view that edits step data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

from django import forms as django_forms
from django.db import models, transaction

from conversion import audit, forms
from conversion.models import Conversion, ConversionState
from conversion.rules import Role, role_in

# Fields whose values never go into the audit trail or a page: only the fact that they changed.
SECRET_FIELDS = {"zis_password", "canvas_token"}


class EditRefused(Exception):
    pass


# The parts of a conversion's step data a page can edit (their names are in URLs and NextStep.part).
Part = Literal["zis", "checklist", "pause_date", "go_live_date", "gradebook"]


@dataclass(frozen=True)
class EditablePart:
    """One part of the step data: the form that edits it, who may, and in which conversion states."""

    form_class: type[django_forms.ModelForm[Conversion]]
    roles: frozenset[Role]
    states: tuple[str, ...] = ()  # empty: in any state


# part name -> what edits it. Keyed by plain names: they come from URLs (`part in EDITABLE_PARTS` checks one).
EDITABLE_PARTS: Final[Mapping[str, EditablePart]] = MappingProxyType(
    {
        "zis": EditablePart(
            forms.ZisSettingsForm,
            frozenset({Role.CONSULTANT}),
            (ConversionState.AGENT_SETUP, ConversionState.CONNECTION),
        ),
        "checklist": EditablePart(
            forms.AgentChecklistForm,
            frozenset({Role.CONSULTANT, Role.DISTRICT_ADMIN}),
            (ConversionState.AGENT_SETUP,),
        ),
        "pause_date": EditablePart(
            forms.PauseDateForm, frozenset({Role.CONSULTANT}), tuple(ConversionState.values[:3])
        ),
        "go_live_date": EditablePart(
            forms.GoLiveDateForm, frozenset({Role.CONSULTANT}), tuple(ConversionState.values[:6])
        ),
        "gradebook": EditablePart(forms.GradebookForm, frozenset({Role.CONSULTANT, Role.DISTRICT_ADMIN})),
    }
)


def can_edit(conversion: Conversion, user: Any, part: str) -> bool:
    editable = EDITABLE_PARTS[part]
    return role_in(user, conversion.district) in editable.roles and (
        not editable.states or conversion.state in editable.states
    )


def form_for(conversion: Conversion, part: str, data: Any = None) -> django_forms.ModelForm[Conversion]:
    return EDITABLE_PARTS[part].form_class(data=data, instance=conversion, prefix=part)


@transaction.atomic
def save_part(conversion: Conversion, part: str, form: django_forms.ModelForm[Conversion], user: Any) -> list[str]:
    """Save a valid form for `part`; returns the names of the fields that changed."""
    if part not in EDITABLE_PARTS or not can_edit(conversion, user, part):
        raise EditRefused("You cannot change this part of the conversion now.")
    before = Conversion.objects.select_for_update().get(pk=conversion.pk)
    changed = [name for name in form._meta.fields or () if getattr(before, name) != form.cleaned_data.get(name)]
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
    labels = ", ".join(_label(name) for name in changed)
    audit.record(
        district=conversion.district,
        conversion=conversion,
        user=user,
        action=f"edit:{part}",
        summary=f"Changed {labels}",
        detail=detail,
    )
    return changed


def _label(name: str) -> str:
    """A conversion field's verbose name, for the audit summary."""
    field = Conversion._meta.get_field(name)
    return str(field.verbose_name) if isinstance(field, models.Field) else name


def _show(value: object) -> str:
    return "" if value is None else str(value)
