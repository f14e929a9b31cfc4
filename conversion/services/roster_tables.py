"""The roster's large tables (students, their school and section enrollments) read by PostgreSQL joins over the
values stored at ingest (SifRecord.cells, services.sif_cells), streamed through a server-side cursor.

The CSV build of a 500,000-student district writes about 2.5 million rows. Read object by object from their
XML, with every person held in a dict to join enrollments to, it ran at about 20,000 rows a CPU-second and its
memory grew with the district. Here PostgreSQL joins section enrollments to students and to their school
enrollments, and the build holds only the small tables (schools, terms, sections, staff).

Used only where it reads what the XML would give: on PostgreSQL, for a stored snapshot whose rows of these kinds
all carry cells of the current format (`SnapshotTables.open` says None otherwise, and the roster reads the XML).
Rows come in the order the XML reader gives them (LocalId, then RefId, sorted by PostgreSQL byte by byte), so
both readings write the same package; tests hold them equal. Section enrollments have no LocalId (sif_keys
stores ""), so they are sorted by RefId alone: a sort on one key took a third of the time of the sort on two.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections

from conversion.models import SifRecord
from conversion.models.snapshot import CELL_KINDS
from conversion.services.sif_cells import CELLS, SEPARATOR, position

STUDENT = "StudentPersonal"
SCHOOL_ENROLLMENT, SECTION_ENROLLMENT = "StudentSchoolEnrollment", "StudentSectionEnrollment"
KINDS = (STUDENT, SCHOOL_ENROLLMENT, SECTION_ENROLLMENT)
assert list(KINDS) == CELL_KINDS  # the partial index of rows without cells covers these
_FETCH = 5000


def _cell(alias: str, object_name: str, field: str) -> str:
    return f"split_part({alias}.cells, %(sep)s, {position(object_name, field)})"


# Students enrolled this year in a school in scope, with the exit date of that enrollment (the latest, and only
# when none is open): Roster._school_enrollments's rule, in SQL.
_ENROLLED = f"""
    SELECT {_cell("x", SCHOOL_ENROLLMENT, "student_ref_id")} AS student_ref,
           CASE WHEN bool_or({_cell("x", SCHOOL_ENROLLMENT, "exit_date")} = '') THEN NULL
                ELSE max({_cell("x", SCHOOL_ENROLLMENT, "exit_date")}) END AS school_exit
    FROM {{table}} x
    WHERE x.snapshot_id = %(snapshot)s AND x.object_name = '{SCHOOL_ENROLLMENT}'
      AND (x.school_year IS NULL OR x.school_year = %(year)s)
      AND x.school_ref_id = ANY(%(schools)s)
    GROUP BY 1
"""

_STUDENTS = f"""
    SELECT p.ref_id, p.local_id, p.dcid, p.cells
    FROM {{table}} p JOIN ({_ENROLLED}) en ON en.student_ref = p.ref_id
    WHERE p.snapshot_id = %(snapshot)s AND p.object_name = '{STUDENT}'
    ORDER BY p.local_id COLLATE "C", p.ref_id COLLATE "C"
"""

_SECTION_ENROLLMENTS = f"""
    SELECT {_cell("e", SECTION_ENROLLMENT, "section_ref_id")}, {_cell("e", SECTION_ENROLLMENT, "entry_date")},
           {_cell("e", SECTION_ENROLLMENT, "exit_date")}, en.school_exit, p.ref_id, p.local_id, p.dcid
    FROM {{table}} e
    JOIN {{table}} p ON p.snapshot_id = %(snapshot)s AND p.object_name = '{STUDENT}'
                    AND p.ref_id = {_cell("e", SECTION_ENROLLMENT, "student_ref_id")}
    JOIN ({_ENROLLED}) en ON en.student_ref = p.ref_id
    WHERE e.snapshot_id = %(snapshot)s AND e.object_name = '{SECTION_ENROLLMENT}'
      AND (e.school_year IS NULL OR e.school_year = %(year)s)
    ORDER BY e.ref_id COLLATE "C"
"""

_QUERIES = {"students": _STUDENTS, "section_enrollments": _SECTION_ENROLLMENTS}

# Right after a pull the table's statistics do not know the snapshot's rows yet (autovacuum analyses later): the
# planner took every input for one row and joined by nested loops, and a 50k district's query ran for over ten
# minutes. These joins are whole-snapshot by nature: hash them, over bitmap scans that read each heap page once (an
# index scan in RefId order read them at random), with the memory to hold a large district's students. The plan is
# fixed when a cursor is declared, so the settings are reset straight after.
_PLANNER = ("SET enable_nestloop = off", "SET enable_indexscan = off", "SET work_mem = '64MB'")
_PLANNER_RESET = ("RESET enable_nestloop", "RESET enable_indexscan", "RESET work_mem")
_DONE = object()


class Prefetch:
    """One query's rows read on a connection of its own, in a thread, and handed over in batches (a few batches
    ahead at most, so memory stays flat). Iterate it once; close() stops it early."""

    def __init__(self, sql: str, params: dict[str, Any]):
        self.sql, self.params = sql, params
        self._batches: queue.Queue = queue.Queue(maxsize=4)
        self._stop = threading.Event()
        self._raw: Any = None
        self._thread = threading.Thread(target=self._run, args=(sql, params), name="roster-prefetch", daemon=True)
        self._thread.start()

    def _run(self, sql: str, params: dict[str, Any]) -> None:
        wrapper = connections.create_connection(DEFAULT_DB_ALIAS)
        try:
            wrapper.ensure_connection()
            self._raw = raw = wrapper.connection
            with raw.transaction():
                with raw.cursor() as settings:
                    for statement in _PLANNER:
                        settings.execute(statement)
                with raw.cursor(name="roster_prefetch") as cursor:
                    cursor.execute(sql, params)
                    while rows := cursor.fetchmany(_FETCH):
                        if not self._put(rows):
                            return
            self._put(_DONE)
        except BaseException as exc:  # handed to the reader, which raises it
            self._put(exc)
        finally:
            wrapper.close()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._batches.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple]:
        try:
            while (batch := self._batches.get()) is not _DONE:
                if isinstance(batch, BaseException):
                    raise batch
                yield from batch
        finally:
            self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            raw = self._raw
            if raw is not None:
                with contextlib.suppress(Exception):
                    raw.cancel()  # a query still running ends now, not when it would have
            self._thread.join()


# The values the login rules read, per rule (roster_rules.Policy.login_for): the columns or cells holding them.
LOGIN_VALUES = {
    "email": _cell("p", STUDENT, "chosen_email"),
    "local_id": "p.local_id",
    "dcid": "p.dcid",
    "state_id": _cell("p", STUDENT, "state_province_id"),
}


# Section enrollments below which a build reads its queries on its own connection, one after the other: a small
# district's queries take milliseconds, and three more connections per build would crowd PostgreSQL's
# max_connections in a fleet of workers running many small districts' builds at once.
PREFETCH_MIN_ROWS = 20_000


class SnapshotTables:
    """SQL reads of one snapshot's students and their enrollments, for the roster's scope."""

    def __init__(self, snapshot_id: int, *, school_year: int, school_refs: Iterable[str], rows: int = 0):
        self.params: dict[str, Any] = {
            "snapshot": snapshot_id,
            "year": school_year,
            "schools": sorted(school_refs),
            "sep": SEPARATOR,
        }
        self.table = connection.ops.quote_name(SifRecord._meta.db_table)
        self.rows = rows  # the snapshot's section enrollments, which decide whether prefetching pays
        self._prefetched: dict[str, Prefetch] = {}

    @classmethod
    def open(
        cls, snapshot_id: int, *, school_year: int, school_refs: Iterable[str], rows: int = 0
    ) -> SnapshotTables | None:
        """The tables, or None when they cannot give what the XML gives (another database, rows without cells).
        `rows`: the snapshot's section enrollments (its counts)."""
        if connection.vendor != "postgresql":
            return None
        # Along the partial index of the rows without cells (SifRecord.Meta): cells of an older FORMAT are emptied
        # by the migration that brings the new one (sif_cells).
        unread = SifRecord.objects.filter(snapshot_id=snapshot_id, object_name__in=CELL_KINDS, cells="")
        if unread.exists():
            return None
        return cls(snapshot_id, school_year=school_year, school_refs=school_refs, rows=rows)

    def _stream(self, sql: str, params: dict[str, Any] | None = None) -> Iterator[tuple]:
        # A server-side cursor: a 500k district's enrollments never sit in this process at once.
        with connection.chunked_cursor() as cursor:
            with connection.cursor() as settings:
                for statement in _PLANNER:
                    settings.execute(statement)
                try:
                    cursor.execute(sql.format(table=self.table), {**self.params, **(params or {})})
                finally:
                    for statement in _PLANNER_RESET:
                        settings.execute(statement)
            while rows := cursor.fetchmany(_FETCH):
                yield from rows

    def prefetch(self, duplicates: tuple[str, Iterable[str]] | None = None) -> None:
        """Start the students' and the section enrollments' queries now, each on a connection of its own, so
        PostgreSQL joins and sorts them on the other core while this process writes the small files and the users
        (students, section_enrollments and duplicate_logins then read their rows).

        Only outside a transaction: a second connection does not see what an open transaction of this one wrote
        (a test's, or a caller's atomic block), and then the rows are read on this connection when asked for.
        Only for a district of PREFETCH_MIN_ROWS section enrollments or more, too."""
        if connection.in_atomic_block or self.rows < PREFETCH_MIN_ROWS:
            return
        queries = {name: (sql, self.params) for name, sql in _QUERIES.items()}
        if duplicates is not None:  # duplicate_logins's arguments
            queries["duplicates"] = self._duplicates_query(*duplicates)
        for name, (sql, params) in queries.items():
            if name not in self._prefetched:
                self._prefetched[name] = Prefetch(sql.format(table=self.table), params)

    def _rows(self, name: str) -> Iterator[tuple]:
        prefetched = self._prefetched.pop(name, None)
        return iter(prefetched) if prefetched is not None else self._stream(_QUERIES[name])

    def close(self) -> None:
        """Stop the prefetches still running (a build that failed before reading them)."""
        for prefetched in self._prefetched.values():
            prefetched.close()
        self._prefetched.clear()

    def students(self) -> Iterator[tuple[str, str, str, list[str]]]:
        """(RefId, LocalId, DCID, cell values) of every enrolled student, in the XML reader's order."""
        for ref_id, local_id, dcid, cells in self._rows("students"):
            yield ref_id, local_id, dcid, cells.split(SEPARATOR)

    def section_enrollments(self) -> Iterator[tuple[str, str, str, str | None, str, str, str]]:
        """(section RefId, entry, exit, school exit, student RefId, LocalId, DCID) of each section enrollment of an
        enrolled student this year, in the XML reader's order ("" for a date not given, None for no school exit)."""
        return self._rows("section_enrollments")

    def duplicate_logins(self, rule: str, others: Iterable[str] = ()) -> set[str]:
        """Lower-cased values of `rule` that more than one enrolled student has, or that a student shares with
        one of `others` (the staff's, lower-cased)."""
        sql, params = self._duplicates_query(rule, others)
        prefetched = self._prefetched.pop("duplicates", None)
        if prefetched is not None and prefetched.sql == sql.format(table=self.table) and prefetched.params == params:
            return {v for (v,) in prefetched}
        if prefetched is not None:
            prefetched.close()
        return {v for (v,) in self._stream(sql, params)}

    def _duplicates_query(self, rule: str, others: Iterable[str]) -> tuple[str, dict[str, Any]]:
        value = f"lower({LOGIN_VALUES[rule]})"
        sql = f"""
            SELECT v FROM (
                SELECT {value} AS v, count(*) AS n FROM {{table}} p JOIN ({_ENROLLED}) en ON en.student_ref = p.ref_id
                WHERE p.snapshot_id = %(snapshot)s AND p.object_name = '{STUDENT}' GROUP BY 1
            ) counted
            WHERE v <> '' AND (n > 1 OR v = ANY(%(others)s))
        """
        return sql, {**self.params, "others": sorted(set(others))}


assert set(KINDS) <= set(CELLS)
