"""One helper per kind of object: each returns it only when the user may see it, else 404."""
from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404

from conversion.models import Conversion, Job
from conversion.rules import districts_visible_to, get_district_for_user


def get_conversion_for_user(user, slug: str, year: int | None = None) -> Conversion:
    district = get_district_for_user(user, slug)
    conversions = district.conversions.select_related("district")
    if year is not None:
        return get_object_or_404(conversions, school_year=year)
    conversion = conversions.order_by("-school_year").first()
    if conversion is None:
        raise Http404("This district has no conversion yet.")
    return conversion


def get_job_for_user(user, slug: str, year: int, job_id: int) -> Job:
    # One query: progress polls arrive every 2 s from every open page.
    return get_object_or_404(
        Job.objects.select_related("conversion__district"),
        pk=job_id, conversion__school_year=year, conversion__district__slug=slug,
        conversion__district__in=districts_visible_to(user),
    )
