"""Building the Canvas SIS import (a zip of CSVs) for a roster, with a fingerprint of its content."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import functools
import hashlib
import io
import itertools
import operator
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from django.db import transaction

from canvas.csv_formats import ENROLLMENTS, USERS, CsvFormat
from canvas.csv_rows import AccountRow, CourseRow, SectionRow, SisRow, TermRow, UserRow
from canvas.csvfiles import write_csv
from conversion.services.approved_mapping import legacy_course_groups
from conversion.services.roster import DCID, Roster
from conversion.services.roster_tables import LOGIN_VALUES

_T = TypeVar("_T")
USER_COLUMNS = (
    "user_id",
    "login_id",
    "authentication_provider_id",
    "first_name",
    "last_name",
    "email",
    "declared_user_type",
    "status",
)


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value) if value else None


@dataclass
class Package:
    """A written SIS import: where it is, what it holds, and who could not be included and why."""

    path: Path
    counts: dict[str, int]
    fingerprint: str
    skipped: list[dict] = field(default_factory=list)


class _Builder:
    def __init__(
        self,
        roster: Roster,
        scheme: str,
        authentication_provider_id: str | None = None,
        parent_account_id: str | None = None,
    ):
        self.roster = roster
        self.scheme = scheme
        # An empty parent moves a school's account straight under the root account (canvas.csv_formats.BLANK_CELLS).
        self.parent_account_id = parent_account_id or None
        # Canvas unbinds a login from its sign-in provider when this cell is empty, and an omitted column reads
        # as empty (canvas.csv_formats.BLANK_CELLS): the district's provider goes on every user row.
        self.authentication_provider_id = authentication_provider_id or None
        self.skipped: list[dict] = []
        self.skipped_refs: set[str] = set()
        self.counts: Counter = Counter()

    def _user_id(self, person) -> str:
        return person.sis_user_id(self.scheme)

    def accounts(self) -> Iterator[SisRow]:
        for school in self.roster.schools.values():
            self.counts["accounts"] += 1
            yield AccountRow(account_id=school.account_id, parent_account_id=self.parent_account_id, name=school.name)

    def terms(self) -> Iterator[SisRow]:
        seen = set()
        for term in self.roster.terms.values():
            if term.term_id in seen:
                continue
            seen.add(term.term_id)
            self.counts["terms"] += 1
            yield TermRow(
                term_id=term.term_id, name=term.name, start_date=_date(term.start_date), end_date=_date(term.end_date)
            )

    def courses(self) -> Iterator[SisRow]:
        seen = set()
        for section in self.roster.sections.values():
            # With the district's `combined` course policy several sections share a course: it is written once.
            if section.course_id in seen:
                continue
            seen.add(section.course_id)
            self.counts["courses"] += 1
            yield CourseRow(
                course_id=section.course_id,
                short_name=f"{section.course_code or section.course_title} {section.local_id}",
                long_name=section.name,
                account_id=section.school.account_id,
                term_id=section.term.term_id if section.term else None,
                status="active",
            )

    def sections(self) -> Iterator[SisRow]:
        for section in self.roster.sections.values():
            self.counts["sections"] += 1
            yield SectionRow(section_id=section.section_id, course_id=section.course_id, name=section.name)

    def _login_value(self, person) -> str:
        policy = self.roster.policy
        return (person.email if policy.login_rule == "email" else policy.login_for(person)).lower()

    @functools.cached_property
    def student_login_count(self) -> tuple[str, Counter] | None:
        """(the students' rule as roster_tables counts it, the staff's login values counted) where PostgreSQL counts
        the students' logins, else None."""
        policy, tables = self.roster.policy, self.roster.tables
        rule = "email" if policy.login_rule == "email" else policy.login_rule
        if tables is None or rule not in LOGIN_VALUES:
            return None
        staff = Counter(self._login_value(p) for p in self.roster.staff_people)
        staff.pop("", None)
        return rule, staff

    def _duplicate_logins(self) -> set[str]:
        """Logins (lower-cased) the district's rule gives more than one person: with the `email` rule, addresses
        chosen for several people (siblings share PowerSchool's family e-mail list). Counted by PostgreSQL over the
        students where the roster reads them there (roster_tables), over the people read here otherwise."""
        counted = self.student_login_count
        if counted is not None and self.roster.tables is not None:
            rule, staff = counted
            return {v for v, n in staff.items() if n > 1} | self.roster.tables.duplicate_logins(rule, staff)
        counts = Counter(self._login_value(p) for p in self.roster.iter_people(email_choices=False))
        counts.pop("", None)
        return {v for v, n in counts.items() if n > 1}

    def _user_values(self) -> Iterator[tuple]:
        """(person, user id, login) of each person the package holds; people without a user id are skipped."""
        # The login is given by the district's rule unless another person gets the same one: Canvas keeps a login
        # unique (case-insensitively) and skips the second user claiming it, so both log in by their SIS id.
        duplicates = self._duplicate_logins()
        for person in self.roster.iter_people(email_choices=False):
            user_id = self._user_id(person)
            if not user_id:
                self.skipped_refs.add(person.ref_id)
                self.skipped.append(
                    {
                        "local_id": person.local_id,
                        "name": person.name,
                        "reason": "no DCID in the SIF data (agent.cfg mapping missing)",
                    }
                )
                continue
            self.counts["users"] += 1
            yield person, user_id, self.login(person, user_id, duplicates)

    def users(self) -> Iterator[UserRow]:
        for person, user_id, login in self._user_values():
            yield UserRow(
                user_id=user_id,
                login_id=login,
                first_name=person.first_name,
                authentication_provider_id=self.authentication_provider_id,
                last_name=person.last_name,
                email=person.email or None,
                declared_user_type="teacher" if person.kind == "teacher" else "student",
                status="active",
            )

    def user_cells(self) -> CellRows:
        """users() as plain cells, for the package (a UserRow per person cost more than the rest of a user's row):
        the values UserRow holds, in users.csv's documented column order. Names and addresses come from XML text,
        which cannot hold the NUL UserRow refuses; the user id and login are never blank."""
        provider = self.authentication_provider_id or ""

        def cells() -> Iterator[tuple[str, ...]]:
            for person, user_id, login in self._user_values():
                kind = "teacher" if person.kind == "teacher" else "student"
                yield (user_id, login, provider, person.first_name, person.last_name, person.email, kind, "active")

        return CellRows(USERS, USER_COLUMNS, cells())

    def login(self, person, user_id: str, duplicates: set[str]) -> str:
        """The district's login rule (Policy.login_for). Canvas keeps a login unique in its account, case-
        insensitively, and skips the second user claiming one (lib/sis/user_importer.rb): a login the rule gives
        two people, or none at all, falls back to the SIS user id."""
        policy = self.roster.policy
        login = person.email if policy.login_rule == "email" else policy.login_for(person)
        return login if login and login.lower() not in duplicates else user_id

    def files(self, extra_users: Iterable[SisRow] = ()) -> list[tuple[str, str, Iterable[SisRow] | CellRows]]:
        """(file name, kind, rows) of the whole package. Users come before enrollments: the enrollment pass
        skips the people the user pass had to leave out."""
        return [
            ("accounts.csv", "accounts", self.accounts()),
            ("terms.csv", "terms", self.terms()),
            ("courses.csv", "courses", self.courses()),
            ("sections.csv", "sections", self.sections()),
            (
                "users.csv",
                "users",
                self.user_cells() if not extra_users else itertools.chain(self.users(), extra_users),
            ),
            ("enrollments.csv", "enrollments", self.enrollments()),
        ]

    def enrollments(self) -> CellRows:
        """The enrollments file as plain cells (CellRows): most of a package's rows are enrollments, and a SisRow
        per row (a frozen dataclass that normalises and checks its 15 columns) cost more than everything else the
        build does. The values are those EnrollmentRow would hold: ids as text, the status checked against
        enrollments.csv's statuses, dates through date.isoformat."""
        statuses = ENROLLMENTS.statuses
        counts, skipped, scheme = self.counts, self.skipped_refs, self.scheme
        user_id = self._user_id

        def cells() -> Iterator[tuple[str, ...]]:
            for enrollment in self.roster.iter_teacher_enrollments():
                person = enrollment.person
                if person.ref_id in skipped:
                    continue
                counts["enrollments"] += 1
                yield (enrollment.section.section_id, user_id(person), enrollment.role, enrollment.status, "", "")
            for section, ref_id, local_id, dcid, status, start, end in self.roster.student_enrollment_rows():
                student_id = dcid if scheme == DCID else local_id  # Person.sis_user_id
                if not student_id or ref_id in skipped:
                    continue
                if status not in statuses:
                    raise ValueError(f"enrollments.csv: column 'status' is {status!r}")
                counts["enrollments"] += 1
                # Canvas applies enrollment start/end dates only when both are given (enrollment_importer.rb; the
                # SIS CSV document: "both must be set to take effect"): a student's PowerSchool entry and exit dates.
                both = start and end
                yield (
                    section.section_id,
                    student_id,
                    "student",
                    status,
                    _iso(start) if both else "",
                    _iso(end) if both else "",
                )

        return CellRows(ENROLLMENTS, ("section_id", "user_id", "role", "status", "start_date", "end_date"), cells())


@functools.lru_cache(maxsize=4096)
def _iso(value: str) -> str:
    """A date cell as EnrollmentRow writes it (format_date of the parsed date); a district has few distinct dates."""
    return dt.date.fromisoformat(value).isoformat()


@dataclass
class CellRows:
    """The rows of one file as plain cells in `columns` (a subset of the format's columns, in its order), already
    valid: written by `write_cells` as write_csv writes the same rows (required and filled columns only)."""

    fmt: CsvFormat
    columns: tuple[str, ...]
    rows: Iterable[tuple[str, ...]]


def write_cells(source: CellRows, fileobj) -> int:
    """write_csv's output for rows given as cells: the header is the format's required columns and the columns some
    row fills, in documented order.

    The header comes before the rows but depends on all of them, so rows are written to a temporary file first and
    copied after the header. Which columns some row fills is taken from the first thousand rows; a column left out
    that a later row fills (rare: the same columns are filled throughout a district's file) widens what was written
    so far with empty cells. (This replaced spooling every column and cutting the columns on a second pass, which
    cost more than the rest of the build.)
    """
    fmt, columns = source.fmt, source.columns
    rows = iter(source.rows)
    head = list(itertools.islice(rows, _HEAD_ROWS))
    if not head:
        return 0
    keep = [i for i, c in enumerate(columns) if c in fmt.required or any(cells[i] for cells in head)]
    count = 0
    with tempfile.TemporaryFile(mode="w+", newline="", encoding="utf-8") as first:
        spool = first
        chunk = io.StringIO(newline="")  # rows go to the file a chunk at a time: a write per row cost more
        writerow, pick, filled_late = _cells_writer(chunk, columns, keep)
        for cells in itertools.chain(head, rows):
            if filled_late is not None and filled_late(cells):
                spool.write(chunk.getvalue())
                chunk.seek(0)
                chunk.truncate()
                before, keep = keep, sorted({*keep, *(i for i in range(len(columns)) if cells[i])})
                previous, spool = spool, _widened(spool, before, keep)
                if previous is not first:
                    previous.close()
                writerow, pick, filled_late = _cells_writer(chunk, columns, keep)
            writerow(pick(cells))
            count += 1
            if not count % 2000:
                spool.write(chunk.getvalue())
                chunk.seek(0)
                chunk.truncate()
        spool.write(chunk.getvalue())
        csv.writer(fileobj).writerow([columns[i] for i in keep])
        spool.seek(0)
        shutil.copyfileobj(spool, fileobj, 1 << 20)
        if spool is not first:
            spool.close()
    return count


_HEAD_ROWS = 1000


def _cells_writer(out, columns: tuple[str, ...], keep: list[int]):
    """(writerow, the kept cells of a row, whether a row fills a column left out, or None when none is) for rows
    written with the `keep` columns."""
    pick = operator.itemgetter(*keep) if len(keep) > 1 else (lambda cells: (cells[keep[0]],))
    left_out = [i for i in range(len(columns)) if i not in keep]
    filled_late: Callable[[tuple[str, ...]], Any] | None = None
    if len(left_out) == 1:
        filled_late = operator.itemgetter(left_out[0])
    elif left_out:
        probe = operator.itemgetter(*left_out)
        filled_late = lambda cells: any(probe(cells))  # noqa: E731  (a closure over the probe, made once per file)
    return csv.writer(out).writerow, pick, filled_late


def _widened(spool, before: list[int], keep: list[int]):
    """A new temporary file holding `spool`'s rows, written with the `before` columns, with the `keep` columns: those
    added are empty in every earlier row (no earlier row filled them)."""
    spool.seek(0)
    widened = tempfile.TemporaryFile(mode="w+", newline="", encoding="utf-8")
    at = {column: n for n, column in enumerate(before)}
    out = csv.writer(widened)
    for old in csv.reader(spool):
        out.writerow([old[at[i]] if i in at else "" for i in keep])
    return widened


def planned_logins(roster: Roster, scheme: str = DCID) -> dict[str, str]:
    """Person RefId -> the login_id the sync writes for them (the mapping check compares it with Canvas's)."""
    builder = _Builder(roster, scheme)
    return {
        person.ref_id: row.login_id
        for person, row in zip((p for p in roster.iter_people() if builder._user_id(p)), builder.users(), strict=False)
    }


def _non_empty(rows: Iterable[_T]) -> Iterator[_T] | None:
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return None

    def chained():
        yield first
        yield from iterator

    return chained()


def write_package(dest: Path, files: Iterable[tuple[str, str, Iterable[SisRow] | CellRows]]) -> None:
    """Stream (file name, kind, rows) into one zip, one file after the other; empty files are left out."""
    # Level 1: a third of level 6's CPU for a zip about a fifth larger (the fingerprint is of the CSVs, not the zip).
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, kind, source in files:
            if isinstance(source, CellRows):
                cells = _non_empty(source.rows)
                if cells is not None:
                    with (
                        archive.open(name, "w") as entry,
                        io.TextIOWrapper(entry, encoding="utf-8", newline="") as text,
                    ):
                        write_cells(dataclasses.replace(source, rows=cells), text)
                continue
            rows = _non_empty(source)
            if rows is None:
                continue
            with archive.open(name, "w") as entry, io.TextIOWrapper(entry, encoding="utf-8", newline="") as text:
                write_csv(kind, rows, text)


def build_package(
    roster: Roster,
    dest: Path,
    *,
    scheme: str = DCID,
    authentication_provider_id: str | None = None,
    parent_account_id: str | None = None,
    keep=None,
) -> Package:
    """Write accounts, terms, courses, sections, users and enrollments CSVs into the zip at `dest`.

    Each CSV carries its required columns and the columns the roster fills (canvas.csvfiles.write_csv).
    `keep` (canvas_keep.Kept) writes what Canvas holds into columns its importers would erase, out of the
    fingerprint."""
    builder = _Builder(roster, scheme, authentication_provider_id, parent_account_id)
    # Read in one transaction where PostgreSQL joins the large tables (roster.tables): its server-side cursors then
    # stream rows as the build takes them, instead of copying each whole result aside first (what a cursor kept
    # open outside a transaction needs).
    tables = roster.tables
    if tables is not None:
        tables.prefetch(duplicates=builder.student_login_count)
    try:
        with transaction.atomic() if tables is not None else contextlib.nullcontext():
            write_package(dest, keep.fill(builder.files()) if keep else builder.files())
    finally:
        if tables is not None:
            tables.close()
    fingerprint = keep.fingerprint(dest) if keep else zip_fingerprint(dest)
    return Package(dest, dict(builder.counts), fingerprint, builder.skipped)


def zip_fingerprint(path: Path) -> str:
    """sha256 over the CSVs' content in name order: the same roster always gives the same value."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(path) as archive:
        for name in sorted(archive.namelist()):
            digest.update(f"\0{name}\0".encode())
            with archive.open(name) as entry:
                while chunk := entry.read(1 << 20):
                    digest.update(chunk)
    return digest.hexdigest()


# ---- the nightly "no new data" decision without rebuilding the package --------------------------------
# Building the package of a 200k-student district reads every record (a minute or more); the nightly
# check only needs its fingerprint. The package is a function of the snapshot's records (which the
# snapshot fingerprint covers), the conversion's scope and the scheme, so its fingerprint, counts and
# skipped users are remembered on the snapshot under that key and found again for any later snapshot
# of the same conversion with the same fingerprint.
PACKAGE_FORMAT = 3  # bump when the CSVs' content changes for the same records


def package_key(snapshot, scheme: str) -> str:
    conversion = snapshot.conversion
    district = conversion.district
    provider = f"{district.canvas_authentication_provider_id}|{district.canvas_parent_account_id}"
    from conversion.models import RosterPolicy
    from conversion.workflow import local_today

    # Statuses follow the calendar (an exit date passes): the day is part of what the package is.
    policy = f"{RosterPolicy.for_district(district).key()}|{local_today(conversion).isoformat()}"
    groups = legacy_course_groups(conversion)
    if groups:  # the legacy integration's course grouping is part of what the package is
        policy += "|" + hashlib.sha256(repr(sorted(groups.items())).encode()).hexdigest()[:16]
    schools = ",".join(sorted(map(str, conversion.expected_school_ids or ())))
    scope = f"{PACKAGE_FORMAT}|{scheme}|{provider}|{policy}|{conversion.school_year}|{schools}"
    return hashlib.sha256(f"{snapshot.fingerprint}|{scope}".encode()).hexdigest()[:32]


def remember_package(snapshot, package: Package, *, scheme: str = DCID) -> None:
    """Keep the package's fingerprint, counts and skipped users on its snapshot (for cached_package)."""
    from conversion.models import Snapshot

    if not snapshot.fingerprint:
        return
    facts = {"fingerprint": package.fingerprint, "counts": package.counts, "skipped": package.skipped[:200]}
    snapshot.summary = {**snapshot.summary, "sis_packages": {package_key(snapshot, scheme): facts}}
    Snapshot.objects.filter(pk=snapshot.pk).update(summary=snapshot.summary)


def cached_package(snapshot, *, scheme: str = DCID) -> dict | None:
    """The remembered facts of the package this snapshot would give, if an identical snapshot had one."""
    from conversion.models import Snapshot, SnapshotState

    if not snapshot.fingerprint:
        return None
    key = package_key(snapshot, scheme)
    summary = (
        Snapshot.objects.filter(
            conversion_id=snapshot.conversion_id,
            fingerprint=snapshot.fingerprint,
            state=SnapshotState.COMPLETE,
            summary__sis_packages__has_key=key,
        )
        .order_by("-id")
        .values_list("summary", flat=True)
        .first()
    )
    return summary["sis_packages"][key] if summary else None
