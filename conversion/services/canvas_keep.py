"""Send back what Canvas holds in the columns the SIS import would otherwise erase.

canvas-lms's account, course and section importers assign the row's `integration_id` whatever it holds
(lib/sis/account_importer.rb#add_account, lib/sis/course_importer.rb#add_course, lib/sis/section_importer.rb
#add_section: `<object>.integration_id = integration_id`), so a row without one erases the integration id a district
set in Canvas (for another integration: a library system, an LTI tool keyed on it). The product has no value of its
own for that column, so before a package is built it reads, through the Canvas API, the integration ids of the
accounts, courses and sections the package names by SIS id, and writes them into those rows.

Not kept, and why:
- terms: term_importer.rb#add_term erases them too, but the terms API does not show a term's integration_id
  (lib/api/v1/enrollment_term.rb#enrollment_term_json writes id, name, dates, workflow_state and sis_term_id), so
  the product cannot read it back;
- users: user_importer.rb sets a login's integration_id only when the row has one, so a blank cell keeps it;
- course `abstract_course_id` (course_importer.rb: `course.abstract_course = abstract_course`, nil without the
  column) and enrollment `temporary_enrollment_source_user_id`: Canvas's course and enrollment JSON do not name them
  by SIS id, and no district this product serves uses abstract courses or SIS-made temporary enrollments.

The package's fingerprint leaves the values read from Canvas out (`fingerprint`): the nightly "no new data" decision
is about the SIS's data, so an integration id edited in Canvas neither makes an unchanged night send (nothing sent
erases nothing) nor hides a change of the SIS's data.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import logging
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from canvas.client import CanvasClient, sis_ref
from canvas.csv_formats import detect_kind
from canvas.csv_rows import AccountRow, CourseRow, SectionRow, SisRow
from canvas.errors import CanvasNotFoundError

log = logging.getLogger(__name__)

# The file kinds whose integration_id the product sends back from Canvas, and each one's SIS id column.
KEPT_KINDS = {"accounts": "account_id", "courses": "course_id", "sections": "section_id"}
COLUMN = "integration_id"
# The rows of those kinds (each has an integration_id column).
KeptRow = AccountRow | CourseRow | SectionRow


@dataclass
class Kept:
    """Integration ids Canvas holds, by kind and SIS id; `unread` counts the objects the read bound left out."""

    accounts: dict[str, str] = field(default_factory=dict)
    courses: dict[str, str] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    unread: int = 0
    # The SIS ids whose rows got a value from Canvas, by file kind (what `fingerprint` takes out again).
    filled: dict[str, set[str]] = field(default_factory=lambda: {kind: set() for kind in KEPT_KINDS})

    def _value(self, row: KeptRow) -> tuple[str, str, str | None]:
        if isinstance(row, AccountRow):
            return "accounts", row.account_id, self.accounts.get(row.account_id)
        if isinstance(row, CourseRow):
            return "courses", row.course_id, self.courses.get(row.course_id)
        return "sections", row.section_id, self.sections.get(row.section_id)

    def _rows(self, rows: Iterable[SisRow]) -> Iterator[SisRow]:
        for row in rows:
            if not isinstance(row, KeptRow) or row.integration_id:
                yield row  # the product's own value, if it ever has one, wins
                continue
            kind, sis_id, value = self._value(row)
            if not value:
                yield row
                continue
            self.filled[kind].add(sis_id)
            yield dataclasses.replace(row, integration_id=value)

    def fill(self, files: Iterable[tuple[str, str, Iterable[SisRow]]]) -> list[tuple[str, str, Iterable[SisRow]]]:
        """The package's (file name, kind, rows) with Canvas's integration ids written into the rows."""
        return [(name, kind, self._rows(rows) if kind in KEPT_KINDS else rows) for name, kind, rows in files]

    def fingerprint(self, path: Path) -> str:
        """The fingerprint (sis_csv.zip_fingerprint's digest) of the package as it would be without the values read
        from Canvas: in the accounts, courses and sections files the cells `fill` wrote are emptied again, and the
        column left out when no row then fills it, as write_csv would have written it (the csv module writes the
        rest byte for byte as it did)."""
        digest = hashlib.sha256()
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                digest.update(f"\0{name}\0".encode())
                with archive.open(name) as entry:
                    first = entry.readline()
                    header = next(csv.reader([first.decode("utf-8")]), [])
                    kind = detect_kind(header) if header else None
                    if kind not in KEPT_KINDS or COLUMN not in header or not self.filled[kind]:
                        digest.update(first)
                        while chunk := entry.read(1 << 20):
                            digest.update(chunk)
                        continue
                    column, key, filled = header.index(COLUMN), header.index(KEPT_KINDS[kind]), self.filled[kind]
                    rows = list(csv.reader(io.TextIOWrapper(entry, encoding="utf-8", newline="")))
                    for cells in rows:
                        if cells[key] in filled:
                            cells[column] = ""
                    drop = not any(cells[column] for cells in rows)
                    out = io.StringIO(newline="")
                    writer = csv.writer(out)
                    for cells in [header, *rows]:
                        writer.writerow(cells[:column] + cells[column + 1 :] if drop else cells)
                    digest.update(out.getvalue().encode())
        return digest.hexdigest()


def read(
    canvas: CanvasClient,
    account: str,
    *,
    account_ids: Iterable[str],
    course_ids: Iterable[str],
    section_ids: Iterable[str],
    max_requests: int | None = None,
) -> Kept:
    """Read from Canvas the integration ids of these accounts, courses and sections (SIS ids).

    Courses come from the account's course list (paginated, sub-accounts included; Api::V1::Course shows
    integration_id to a token that may read SIS data); sections from each existing course's section list (one
    request per course: Canvas has no account-wide section list); accounts one by one (a district has a few
    schools). At most `max_requests` (settings.CANVAS_KEEP_MAX_REQUESTS) section and account reads are made; what
    the bound leaves out is counted in `unread` and logged."""
    budget = getattr(settings, "CANVAS_KEEP_MAX_REQUESTS", 5000) if max_requests is None else max_requests
    kept = Kept()
    before = canvas.stats.requests
    wanted_courses, wanted_sections = set(course_ids), set(section_ids)
    canvas_courses: list[int] = []
    for course in canvas.iter_courses(account):
        if course.sis_course_id in wanted_courses:
            canvas_courses.append(course.id)
            if course.integration_id:
                kept.courses[course.sis_course_id] = course.integration_id
    spent = 0
    for course_id in sorted(canvas_courses):
        if spent >= budget:
            kept.unread += 1
            continue
        spent += 1
        for section in canvas.iter_sections(course_id):
            if section.sis_section_id in wanted_sections and section.integration_id:
                kept.sections[section.sis_section_id] = section.integration_id
    for account_id in sorted(set(account_ids)):
        if spent >= budget:
            kept.unread += 1
            continue
        spent += 1
        try:
            found = canvas.get_account(sis_ref("account", account_id))
        except CanvasNotFoundError:
            continue  # not in Canvas yet: the import creates it
        if found.get("integration_id"):
            kept.accounts[account_id] = found["integration_id"]
    kept.requests = canvas.stats.requests - before
    if kept.unread:
        log.warning(
            "canvas_keep: %d courses' sections and accounts were not read (bound of %d reads); their "
            "integration ids in Canvas are erased if their rows are sent",
            kept.unread,
            budget,
        )
    return kept


def read_for(district, roster) -> Kept:
    """`read` for the package of this roster, through the district's Canvas client (errors come out as JobFailed:
    a package sent without the values would erase them, so the sync stops and the next one tries again)."""
    from conversion.services.canvas_api import canvas_for

    sections = list(roster.sections.values())
    with canvas_for(district) as canvas:
        return read(
            canvas,
            district.canvas_account_id or "1",
            account_ids=[school.account_id for school in roster.schools.values()],
            course_ids=[s.course_id for s in sections],
            section_ids=[s.section_id for s in sections],
        )
