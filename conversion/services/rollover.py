"""School-year rollover of a live district: the same conversion moves on to the next school year.

No new conversion from step 1: the conversion's school year becomes the next one, so the next nightly pull
takes the new year's TermInfo, courses, sections and enrollments (the Roster keeps one year), the new terms and
courses are created in Canvas, and the nightly import starts a new diffing data set (sync.diffing_data_set names
the year): Canvas diffs an import only against the previous import of the same data set (the sis_imports API's
diffing_data_set_identifier), so the old year's courses and enrollments are not dropped but stay, concluded by
their terms' end dates (terms.csv end_date). The first night of the new year is not held by the deletion check:
there is nothing of the new year's data set to have lost (sync: no hold across school years).
"""
from __future__ import annotations

from django.db import transaction

from conversion import audit
from conversion.models import Conversion, ConversionState


class RolloverRefused(Exception):
    pass


def roll_over(conversion: Conversion, *, user) -> int:
    """Move a live conversion to the next school year; returns the new year."""
    with transaction.atomic():
        conversion = Conversion.objects.select_for_update().get(pk=conversion.pk)
        if conversion.state != ConversionState.LIVE:
            raise RolloverRefused("Only a live district moves to the next school year.")
        new_year = conversion.school_year + 1
        if conversion.district.conversions.filter(school_year=new_year).exists():
            raise RolloverRefused(f"{conversion.district} already has a conversion for {new_year - 1}-{new_year}.")
        old_year = conversion.school_year
        conversion.school_year = new_year
        conversion.save(update_fields=["school_year"])
        audit.record(district=conversion.district, conversion=conversion, user=user, action="rollover",
                     summary=f"Moved on to the {new_year - 1}-{new_year} school year",
                     detail={"from": old_year, "to": new_year})
    return new_year


def crosses_school_years(previous_run, snapshot) -> bool:
    """Whether the last successful sync was of another school year than this snapshot (the rollover night)."""
    before = getattr(previous_run.snapshot, "school_year", None) if previous_run else None
    return bool(before and snapshot.school_year and before != snapshot.school_year)
