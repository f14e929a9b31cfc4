"""One helper per kind of object: each returns it only when the user may see it, else 404 (rules.NotVisible)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import Http404
from django.shortcuts import get_object_or_404

from conversion.models import Conversion, Job
from conversion.rules import NotVisible, get_district_for_user, visible_to


def get_conversion_for_user(user, slug: str, year: int | None = None) -> Conversion:
    district = get_district_for_user(user, slug)
    conversions = district.conversions.select_related("district")
    if year is not None:
        return get_object_or_404(conversions, school_year=year)
    conversion = conversions.order_by("-school_year").first()
    if conversion is None:
        raise Http404("This district has no conversion yet.")
    return conversion


# What the job partial (district/_job.html) shows of a job: not its params, and nothing of the conversion or
# district beyond the poll URL's slug and year (no credentials to decrypt on every poll), and of the
# requester only the user name.
JOB_ITEM_FIELDS = (
    "id",
    "conversion",
    "kind",
    "state",
    "current",
    "total",
    "message",
    "detail",
    "error",
    "traceback",
    "requested_by",
    "created_at",
    "started_at",
    "finished_at",
    "cancel_requested_at",
    "conversion__school_year",
    "conversion__district__slug",
)


def get_job_for_user(user, slug: str, year: int, job_id: int) -> Job:
    """The job if it belongs to that district's conversion of that year and the user may see the district,
    else NotVisible (404); one query, with what its item shows of the conversion, district and requester."""
    jobs = (
        Job.objects.select_related("conversion__district", "requested_by")
        .only(*JOB_ITEM_FIELDS, f"requested_by__{get_user_model().USERNAME_FIELD}")
        .filter(visible_to(user, "conversion__district"), conversion__school_year=year, conversion__district__slug=slug)
    )
    try:
        return jobs.get(pk=job_id)
    except Job.DoesNotExist:
        raise NotVisible("No such job.") from None
