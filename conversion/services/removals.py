"""What a sync package would remove in Canvas compared with the last successful sync's package, per school.

Canvas's diffing sends every row that left a file since the data set's baseline with status `deleted` (enrollments:
`diffing_drop_status`; canvas-lms lib/sis/csv/diff_generator.rb), so the rows of the previous package missing from
this one are exactly what a diffed import removes: users, courses, sections and enrollments. Each is put under a
school (the course's account; a section and an enrollment by their course; a user by the school of their removed or
former enrollments) so the person releasing a held sync sees where it happens, and gets the whole list as a CSV.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import Counter, defaultdict

from canvas.csv_formats import detect_kind
from conversion.services.sync_policy import Removals, SchoolRemovals
from conversion.spreadsheet import SafeWriter

KINDS = ("users", "courses", "sections", "enrollments")
CSV_HEADER = ["school_account_id", "school", "kind", "sis_id", "name", "detail"]


def _read(content: bytes) -> dict[str, list[dict[str, str]]]:
    """{kind: rows} of each CSV in a package zip (the kind told from the header, as Canvas does)."""
    files: dict[str, list[dict[str, str]]] = defaultdict(list)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for name in archive.namelist():
            with archive.open(name) as entry:
                reader = csv.reader(io.TextIOWrapper(entry, encoding="utf-8", newline=""))
                header = [h.strip().lower() for h in next(reader, [])]
                kind = detect_kind(header)
                if kind is None:
                    continue
                files[kind].extend(
                    dict(zip(header, (cell.strip() for cell in row), strict=False)) for row in reader if row
                )
    return files


def compare(previous: bytes, current: bytes) -> tuple[Removals, list[list[str]]]:
    """(the counts, totals and per school; the removal list's rows, CSV_HEADER's columns)."""
    old, new = _read(previous), _read(current)
    school_names = {
        r.get("account_id", ""): r.get("name", "") for r in old.get("accounts", []) + new.get("accounts", [])
    }
    # The previous package's rows last, so they win: a removed section is placed where it was.
    course_school = {
        r["course_id"]: r.get("account_id", "")
        for r in new.get("courses", []) + old.get("courses", [])
        if r.get("course_id")
    }
    section_course = {
        r["section_id"]: r.get("course_id", "")
        for r in new.get("sections", []) + old.get("sections", [])
        if r.get("section_id")
    }

    def enrollment_school(row: dict[str, str]) -> str:
        course = row.get("course_id") or section_course.get(row.get("section_id", ""), "")
        return course_school.get(course, "")

    def key(kind: str, row: dict[str, str]) -> tuple[str, ...]:
        if kind == "enrollments":
            return (row.get("course_id", ""), row.get("section_id", ""), row.get("user_id", ""), row.get("role", ""))
        return (row.get({"users": "user_id", "courses": "course_id", "sections": "section_id"}[kind], ""),)

    rows: list[list[str]] = []
    removed: dict[str, Counter] = {kind: Counter() for kind in KINDS}
    before = Counter(enrollment_school(r) for r in old.get("enrollments", []))
    user_school: dict[str, str] = {}
    for row in old.get("enrollments", []):
        user_school.setdefault(row.get("user_id", ""), enrollment_school(row))
    for kind in KINDS:
        present = {key(kind, r) for r in new.get(kind, [])}
        for row in old.get(kind, []):
            if key(kind, row) in present:
                continue
            if kind == "users":
                school, sis_id = user_school.get(row.get("user_id", ""), ""), row.get("user_id", "")
                name, detail = (
                    " ".join(filter(None, (row.get("first_name"), row.get("last_name")))),
                    row.get("login_id", ""),
                )
            elif kind == "courses":
                school, sis_id, name, detail = (
                    row.get("account_id", ""),
                    row.get("course_id", ""),
                    row.get("long_name", ""),
                    "",
                )
            elif kind == "sections":
                school = course_school.get(row.get("course_id", ""), "")
                sis_id, name, detail = (
                    row.get("section_id", ""),
                    row.get("name", ""),
                    f"course {row.get('course_id', '')}",
                )
            else:
                school = enrollment_school(row)
                sis_id = row.get("user_id", "")
                name = row.get("role", "")
                detail = (
                    f"section {row.get('section_id', '')}"
                    if row.get("section_id")
                    else f"course {row.get('course_id', '')}"
                )
            removed[kind][school] += 1
            rows.append([school, school_names.get(school, ""), kind, sis_id, name, detail])
    schools = sorted({s for counter in removed.values() for s in counter} | set(before))
    per_school = tuple(
        SchoolRemovals(
            account_id=s,
            name=school_names.get(s, ""),
            enrollments_before=before[s],
            **{kind: removed[kind][s] for kind in KINDS},
        )
        for s in schools
        if any(removed[kind][s] for kind in KINDS) or s in before
    )
    totals = {kind: sum(removed[kind].values()) for kind in KINDS}
    rows.sort(key=lambda r: (r[1], r[0], KINDS.index(r[2]), r[3]))
    return Removals(enrollments_before=len(old.get("enrollments", [])), schools=per_school, **totals), rows


def as_json(removals: Removals) -> dict:
    """The summary kept on the SyncRun and drawn on the page: totals and the schools with something removed."""
    return {
        "enrollments_before": removals.enrollments_before,
        "totals": {kind: getattr(removals, kind) for kind in KINDS},
        "schools": [
            {
                "account_id": s.account_id,
                "name": s.name,
                "enrollments_before": s.enrollments_before,
                **{kind: getattr(s, kind) for kind in KINDS},
            }
            for s in removals.schools
            if any(getattr(s, kind) for kind in KINDS)
        ],
    }


def csv_bytes(rows: list[list[str]]) -> bytes:
    """The removal list for people, opened in a spreadsheet: no cell may start a formula (SafeWriter)."""
    out = io.StringIO(newline="")
    writer = SafeWriter(out)
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
