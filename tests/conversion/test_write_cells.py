"""sis_csv.write_cells writes, for rows given as plain cells, exactly what canvas.csvfiles.write_csv writes for the
same rows as EnrollmentRow: the required columns and those some row fills, whichever row first fills them."""

from __future__ import annotations

import io

import pytest

from canvas.csv_formats import ENROLLMENTS
from canvas.csvfiles import EnrollmentRow, write_csv
from conversion.services.sis_csv import CellRows, write_cells

COLUMNS = ("section_id", "user_id", "role", "status", "start_date", "end_date")


def rows(count: int, dated: set[int]) -> list[tuple[str, ...]]:
    return [
        (f"sec_{n % 7}", f"u{n}", "student", "active", *(("2026-08-15", "2027-05-29") if n in dated else ("", "")))
        for n in range(count)
    ]


def both(cells: list[tuple[str, ...]]) -> tuple[str, str]:
    ours, theirs = io.StringIO(newline=""), io.StringIO(newline="")
    assert write_cells(CellRows(ENROLLMENTS, COLUMNS, iter(cells)), ours) == len(cells)
    typed = [EnrollmentRow(**{c: v or None for c, v in zip(COLUMNS, row, strict=True)}) for row in cells]
    write_csv("enrollments", typed, theirs)
    return ours.getvalue(), theirs.getvalue()


@pytest.mark.parametrize(
    ("count", "dated"),
    [
        (50, set()),  # never filled: left out
        (50, {3}),  # filled within the first rows
        (5000, {4321}),  # filled first long after the first thousand rows: what was written is widened
        (5000, {1500, 2500, 4999}),
        (2100, {2000}),  # filled right at a chunk's end
    ],
)
def test_write_cells_writes_what_write_csv_writes(count, dated):
    ours, theirs = both(rows(count, dated))
    assert ours == theirs
    assert ("start_date" in ours.splitlines()[0]) == bool(dated)


def test_no_rows_write_nothing():
    out = io.StringIO()
    assert write_cells(CellRows(ENROLLMENTS, COLUMNS, iter(())), out) == 0
    assert out.getvalue() == ""
