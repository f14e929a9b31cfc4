"""Enrollments Canvas holds in the district's sections that the roster no longer has in that form: sent with the
district's drop status in an import of their own, so the legacy integration's rows and a person's old role go.

canvas-lms finds the enrollment an enrollments.csv row names by its user, section, role and associated user
(lib/sis/enrollment_importer.rb#process_batch: the section's enrollments of that user, of the role's type and role
id and associated user), and makes a new one when there is none. A row with another role for the same user and
section therefore adds a second enrollment beside the first, and leaves the first as it was: an aide the legacy
integration enrolled as `teacher` keeps the teacher's rights beside the `ta` enrollment the roster sends.

Two sources, each sent with the district's drop status (the statuses diffing_drop_status allows: deleted,
completed, inactive; lib/sis/csv/diff_generator.rb):
- the first sync after go-live: Canvas's own enrollments in the package's sections that an SIS import made
  (`sis_import_id` set: the legacy integration's; enrollments a person added by hand are left alone) and that the
  package does not hold (by section, user and role);
- a night whose package gives a user another role in a section than the last successful sync's package did: the
  old role's row. Canvas's diffing drops it too when the night is diffed (role is one of the enrollment importer's
  identifying fields, SIS::CSV::EnrollmentImporter.identifying_fields), but not when the night goes whole (a
  remaster, changed headers), so it is sent either way; a second drop of a dropped row changes nothing.

The import goes outside the diffing data set (no diffing_data_set_identifier), like the rollover's concluding
import (services/rollover.py): Canvas neither diffs it nor takes it as the next baseline, and the sync's own
package, fingerprint and removal count stay what the SIS data makes them.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from collections.abc import Iterable

from canvas.client import CanvasClient

# enrollments.csv role names by the API's enrollment type (Enrollment#type, canvas-lms app/models/enrollment.rb).
CSV_ROLE = {
    "StudentEnrollment": "student",
    "TeacherEnrollment": "teacher",
    "TaEnrollment": "ta",
    "ObserverEnrollment": "observer",
    "DesignerEnrollment": "designer",
}
HEADER = ("section_id", "user_id", "role", "status")
Drop = tuple[str, str, str]  # section_id, user_id, role


def canvas_leftovers(
    canvas: CanvasClient,
    account: str,
    *,
    course_ids: Iterable[str],
    section_ids: Iterable[str],
    package: bytes,
    drop_status: str,
) -> list[Drop]:
    """Enrollments an SIS import made in these sections (by SIS id) that the package (the zip's enrollments.csv)
    does not hold. Read course by course (one request per page of a course's enrollments)."""
    held = {(r.get("section_id", ""), r.get("user_id", ""), r.get("role", "")) for r in _enrollments(package)}
    wanted_courses, wanted_sections = set(course_ids), set(section_ids)
    # What is already in the drop status needs no row; "deleted" is gone whatever the district's status.
    states = [s for s in ("active", "invited", "inactive", "completed") if s != drop_status]
    drops: set[Drop] = set()
    for course in canvas.iter_courses(account):
        if course.sis_course_id not in wanted_courses:
            continue
        for e in canvas.iter_enrollments(course_id=course.id, states=states):
            if not (e.sis_user_id and e.sis_section_id in wanted_sections and e.raw.get("sis_import_id")):
                continue
            if e.type == "ObserverEnrollment" and e.raw.get("associated_user_id"):
                continue  # named only with its student's SIS id, which the roster never sends: left as it is
            # A custom role is named by its own name (enrollments.csv `role`), a built-in one by the CSV word.
            role = CSV_ROLE.get(e.role, e.role)
            if e.enrollment_state == drop_status or e.enrollment_state == "deleted":
                continue
            if (e.sis_section_id, e.sis_user_id, role) not in held:
                drops.add((e.sis_section_id, e.sis_user_id, role))
    return sorted(drops)


def _enrollments(package: bytes) -> list[dict[str, str]]:
    with zipfile.ZipFile(io.BytesIO(package)) as archive:
        if "enrollments.csv" not in archive.namelist():
            return []
        return list(csv.DictReader(io.StringIO(archive.read("enrollments.csv").decode("utf-8"), newline="")))


def role_changes(previous: bytes, current: bytes) -> list[Drop]:
    """The rows of the previous package whose user holds another role in the same section in the current one."""
    roles: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in _enrollments(current):
        roles[(row.get("section_id", ""), row.get("user_id", ""))].add(row.get("role", ""))
    drops = set()
    for row in _enrollments(previous):
        key = (row.get("section_id", ""), row.get("user_id", ""))
        if key[0] and key in roles and row.get("role", "") not in roles[key]:
            drops.add((key[0], key[1], row.get("role", "")))
    return sorted(drops)


def drop_package(drops: Iterable[Drop], drop_status: str) -> bytes:
    """A zip of one enrollments.csv sending each drop with `drop_status` (b"" when there is none)."""
    rows = list(drops)
    if not rows:
        return b""
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows((section, user, role, drop_status) for section, user, role in rows)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("enrollments.csv", text.getvalue())
    return out.getvalue()


def send(job, progress, content: bytes) -> int | None:
    """Submit the drop import once (resumable: its state is in the job's detail) and wait for it."""
    from conversion.services import canvas_import

    if not content:
        return None
    return canvas_import.send_side_import(
        job,
        progress,
        content,
        key="enrollment_drops",
        purpose="drops",
        message="Dropping enrollments the roster no longer has",
        label="Dropping old enrollments",
        doing="dropping old enrollments",
    )
