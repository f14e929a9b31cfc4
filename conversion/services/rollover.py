"""School-year rollover of a live district: the same conversion moves on to the next school year.

No new conversion from step 1: the conversion's school year becomes the next one, so the next nightly pull
takes the new year's TermInfo, courses, sections and enrollments (the Roster keeps one year), the new terms and
courses are created in Canvas, and the nightly import starts a new diffing data set (sync.diffing_data_set names
the year): Canvas diffs an import only against the previous import of the same data set (the sis_imports API's
diffing_data_set_identifier), so the old year's courses and enrollments are not dropped but stay; before the new
year's import, the rollover night concludes what the old year's last sync sent (`conclude_year`). The first night
of the new year is not held by the deletion check: there is nothing of the new year's data set to have lost (sync:
no hold across school years).
"""

from __future__ import annotations

import csv
import io
import zipfile

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
        audit.record(
            district=conversion.district,
            conversion=conversion,
            user=user,
            action="rollover",
            summary=f"Moved on to the {new_year - 1}-{new_year} school year",
            detail={"from": old_year, "to": new_year},
        )
    return new_year


def crosses_school_years(previous_run, snapshot=None) -> bool:
    """Whether the conversion moved on to the next school year since `previous_run` (the rollover night)."""
    from conversion.models import AuditEvent

    if previous_run is None or previous_run.finished_at is None:
        return False
    return AuditEvent.objects.filter(
        conversion_id=previous_run.conversion_id, action="rollover", created_at__gt=previous_run.finished_at
    ).exists()


def concluded_package(package: bytes) -> bytes:
    """The enrollments of a sync package, every one `completed` (Canvas concludes an enrollment sent so:
    lib/sis/csv/enrollment_importer.rb), as a zip of one enrollments.csv. A student already inactive or deleted
    (one who left) keeps that status: concluding them would make them visible again."""
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        if "enrollments.csv" not in archive.namelist():
            return b""
        rows = list(csv.DictReader(io.StringIO(archive.read("enrollments.csv").decode("utf-8"), newline="")))
    if not rows:
        return b""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "status": row["status"] if row["status"] in ("inactive", "deleted") else "completed"})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("enrollments.csv", text.getvalue())
    return out.getvalue()


def conclude_year(job, progress, previous_run) -> int | None:
    """On the rollover night, before the new year's import: conclude what the last sync of the old year sent.
    Sent outside the diffing data set (no diffing_data_set_identifier), so it changes nothing Canvas diffs
    against. Returns the Canvas import id, None when there was nothing to conclude."""
    from conversion.models import Artifact
    from conversion.services import canvas_import

    artifact = (
        Artifact.objects.filter(conversion=previous_run.conversion, job=previous_run.job, kind="sync_package")
        .order_by("-id")
        .first()
    )
    content = concluded_package(bytes(artifact.content)) if artifact else b""
    if not content:
        return None
    return canvas_import.send_side_import(
        job,
        progress,
        content,
        key="conclude",
        purpose="conclude",
        message="Concluding last school year's enrollments",
        label="Concluding last year",
        doing="concluding last year",
    )
