"""CSV files a person opens in a spreadsheet: no cell may start a formula.

A spreadsheet reads a cell that begins with =, +, - or @ (or a tab or carriage return before one) as a formula,
so a SIF name or a Canvas error text such as `=HYPERLINK(...)` would run when the download is opened (CSV
injection, OWASP). Such cells are written with a leading apostrophe, which spreadsheets take as "text"; plain
numbers such as -12 stay as they are. Only for downloads people read: the SIS import CSVs that Canvas reads carry
the data unchanged (canvas.csvfiles).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z")


def safe_cell(value: object) -> object:
    if not isinstance(value, str) or not value.startswith(_TRIGGERS) or _NUMBER.match(value):
        return value
    return "'" + value


def safe_row(row: Iterable[object]) -> list[object]:
    return [safe_cell(value) for value in row]


class Writable(Protocol):
    """Where csv.writer writes: a file, a StringIO, or a streaming response's echo."""

    def write(self, text: str, /) -> object: ...


class SafeWriter:
    """csv.writer whose every cell goes through safe_cell."""

    def __init__(self, stream: Writable, **kwargs: Any) -> None:
        self._writer = csv.writer(stream, **kwargs)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow(safe_row(row))

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self._writer.writerow(safe_row(row))


def neutralise_csv(content: str) -> str:
    """A CSV text with every cell made safe (for a file made by another writer, e.g. a preview)."""
    import io

    out = io.StringIO(newline="")
    SafeWriter(out).writerows(csv.reader(io.StringIO(content, newline="")))
    return out.getvalue()
