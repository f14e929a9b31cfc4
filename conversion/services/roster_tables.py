"""The roster's large tables (students, their school and section enrollments) read by PostgreSQL joins over the
values stored at ingest (SifRecord.cells, services.sif_cells), streamed through a server-side cursor.

The CSV build of a 500,000-student district writes about 2.5 million rows. Read object by object from their
XML, with every person held in a dict to join enrollments to, it ran at about 20,000 rows a CPU-second and its
memory grew with the district. Here PostgreSQL joins section enrollments to students and to their school
enrollments, and the build holds only the small tables (schools, terms, sections, staff).

Used only where it reads what the XML would give: on PostgreSQL, for a stored snapshot whose rows of these kinds
all carry cells of the current format (`SnapshotTables.open` says None otherwise, and the roster reads the XML).
Rows come in the order the XML reader gives them (LocalId, then RefId, sorted by PostgreSQL), so both readings
write the same package; tests hold them equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.db import connection

from conversion.models import SifRecord
from conversion.services.sif_cells import CELLS, FORMAT, SEPARATOR, position

STUDENT = "StudentPersonal"
SCHOOL_ENROLLMENT, SECTION_ENROLLMENT = "StudentSchoolEnrollment", "StudentSectionEnrollment"
KINDS = (STUDENT, SCHOOL_ENROLLMENT, SECTION_ENROLLMENT)
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
      AND {_cell("x", SCHOOL_ENROLLMENT, "school_ref_id")} = ANY(%(schools)s)
    GROUP BY 1
"""

_STUDENTS = f"""
    SELECT p.ref_id, p.local_id, p.dcid, p.cells
    FROM {{table}} p JOIN ({_ENROLLED}) en ON en.student_ref = p.ref_id
    WHERE p.snapshot_id = %(snapshot)s AND p.object_name = '{STUDENT}'
    ORDER BY p.local_id, p.ref_id
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
    ORDER BY e.local_id, e.ref_id
"""

# The values the login rules read, per rule (roster_rules.Policy.login_for): the columns or cells holding them.
LOGIN_VALUES = {
    "email": _cell("p", STUDENT, "chosen_email"),
    "local_id": "p.local_id",
    "dcid": "p.dcid",
    "state_id": _cell("p", STUDENT, "state_province_id"),
}


class SnapshotTables:
    """SQL reads of one snapshot's students and their enrollments, for the roster's scope."""

    def __init__(self, snapshot_id: int, *, school_year: int, school_refs: Iterable[str]):
        self.params: dict[str, Any] = {
            "snapshot": snapshot_id,
            "year": school_year,
            "schools": sorted(school_refs),
            "sep": SEPARATOR,
        }
        self.table = connection.ops.quote_name(SifRecord._meta.db_table)

    @classmethod
    def open(cls, snapshot_id: int, *, school_year: int, school_refs: Iterable[str]) -> SnapshotTables | None:
        """The tables, or None when they cannot give what the XML gives (another database, rows without cells)."""
        if connection.vendor != "postgresql":
            return None
        unread = SifRecord.objects.filter(snapshot_id=snapshot_id, object_name__in=KINDS).exclude(
            cells__startswith=FORMAT + SEPARATOR
        )
        return None if unread.exists() else cls(snapshot_id, school_year=school_year, school_refs=school_refs)

    def _stream(self, sql: str, params: dict[str, Any] | None = None) -> Iterator[tuple]:
        # A server-side cursor: a 500k district's enrollments never sit in this process at once.
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql.format(table=self.table), {**self.params, **(params or {})})
            while rows := cursor.fetchmany(_FETCH):
                yield from rows

    def students(self) -> Iterator[tuple[str, str, str, list[str]]]:
        """(RefId, LocalId, DCID, cell values) of every enrolled student, in the XML reader's order."""
        for ref_id, local_id, dcid, cells in self._stream(_STUDENTS):
            yield ref_id, local_id, dcid, cells.split(SEPARATOR)

    def section_enrollments(self) -> Iterator[tuple[str, str, str, str | None, str, str, str]]:
        """(section RefId, entry, exit, school exit, student RefId, LocalId, DCID) of each section enrollment of an
        enrolled student this year, in the XML reader's order ("" for a date not given, None for no school exit)."""
        return self._stream(_SECTION_ENROLLMENTS)

    def duplicate_logins(self, rule: str, others: Iterable[str] = ()) -> set[str]:
        """Lower-cased values of `rule` that more than one enrolled student has, or that a student shares with
        one of `others` (the staff's, lower-cased)."""
        value = f"lower({LOGIN_VALUES[rule]})"
        sql = f"""
            SELECT v FROM (
                SELECT {value} AS v, count(*) AS n FROM {{table}} p JOIN ({_ENROLLED}) en ON en.student_ref = p.ref_id
                WHERE p.snapshot_id = %(snapshot)s AND p.object_name = '{STUDENT}' GROUP BY 1
            ) counted
            WHERE v <> '' AND (n > 1 OR v = ANY(%(others)s))
        """
        return {v for (v,) in self._stream(sql, {"others": sorted(set(others))})}


assert set(KINDS) <= set(CELLS)
