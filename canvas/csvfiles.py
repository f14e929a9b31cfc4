"""Writing SIS import CSVs: streaming writers, zipping, and a content fingerprint.

Writers stream rows straight into a file-like object (or a zip entry) so a district with 200k
users never needs the whole file as one string. The csv module does all quoting.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import BinaryIO, TextIO

from canvas.csv_formats import FORMATS, CsvFormat, detect_kind
from canvas.csv_rows import (  # noqa: F401  (re-exported: the writers' public surface)
    ROW_TYPES,
    AccountRow,
    ChangeSisIdRow,
    CourseRow,
    EnrollmentRow,
    SectionRow,
    SisRow,
    TermRow,
    UserRow,
)

# What build_zip and fingerprint accept for one file: rows to write, or a finished CSV.
FileSource = Iterable[SisRow] | bytes | str | Path


def write_csv(kind: str, rows: Iterable[SisRow], fileobj: TextIO, *, columns: Iterable[str] | None = None) -> int:
    """Write a header and `rows` of one kind to a text file object; return the number of rows.

    By default the file has the required columns and each other column that holds a value in at least
    one row, in documented order: a column no row fills is left out, because to Canvas an empty cell is
    not "no opinion" for every column (canvas.csv_formats.BLANK_CELLS says, column by column, what an
    empty cell does in canvas-lms's importers). Rows are spooled to a temporary file (in memory up to
    8 MB) so the header can be chosen after every row was seen. Pass `columns` to choose them yourself;
    a row with a value in a left-out column is refused either way. Open files with newline=''.
    """
    fmt = FORMATS.get(kind)
    if fmt is None:
        raise ValueError(f"unknown SIS CSV kind {kind!r}; expected one of {', '.join(FORMATS)}")
    if columns is None and kind == "change_sis_id":
        # Every column, always: a rename row names both sides, and the importer reads old/new pairs by name
        # (lib/sis/change_sis_id_importer.rb), so a constant header keeps remap and rollback files alike.
        columns = fmt.columns
    if columns is not None:
        chosen = tuple(columns)
        unknown = [c for c in chosen if c not in fmt.columns]
        if unknown:
            raise ValueError(f"{fmt.file_name}: unknown column(s) {', '.join(unknown)}")
        missing = [c for c in fmt.columns if c in fmt.required and c not in chosen]
        if missing:
            raise ValueError(f"{fmt.file_name}: required column(s) {', '.join(missing)} left out")
        return _write_rows(fmt, rows, fileobj, chosen)
    # Pass 1: every documented column to a spool, noting which columns some row fills.
    filled: set[str] = set()
    count = 0
    with tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", newline="", encoding="utf-8") as spool:
        writer = csv.writer(spool)
        row_type = ROW_TYPES[kind]
        for row in rows:
            if not isinstance(row, row_type):
                raise ValueError(f"{fmt.file_name}: expected {row_type.__name__}, got {type(row).__name__}")
            cells = row.cells(fmt.columns)
            filled.update(c for c, v in zip(fmt.columns, cells, strict=False) if v != "")
            writer.writerow(cells)
            count += 1
        if count == 0:
            chosen = fmt.columns  # no rows: the full header, so Canvas can still tell the file's kind
        else:
            chosen = tuple(c for c in fmt.columns if c in fmt.required or c in filled)
        keep = [fmt.columns.index(c) for c in chosen]
        # Pass 2: the header, then each spooled row cut to the chosen columns.
        spool.seek(0)
        out = csv.writer(fileobj)
        out.writerow(chosen)
        for cells in csv.reader(spool):
            out.writerow([cells[i] for i in keep])
    return count


def _write_rows(fmt: CsvFormat, rows: Iterable[SisRow], fileobj: TextIO, chosen: tuple[str, ...]) -> int:
    row_type = ROW_TYPES[fmt.kind]
    # The default \r\n terminator matters: the csv module quotes a value only when it holds a
    # character of the terminator, so with "\n" alone a bare \r in a name would split the row.
    writer = csv.writer(fileobj)
    writer.writerow(chosen)
    count = 0
    for row in rows:
        if not isinstance(row, row_type):
            raise ValueError(f"{fmt.file_name}: expected {row_type.__name__}, got {type(row).__name__}")
        dropped = [c for c in fmt.columns if c not in chosen and getattr(row, c)]
        if dropped:
            raise ValueError(f"{fmt.file_name}: row has values in left-out column(s) {', '.join(dropped)}")
        writer.writerow(row.cells(chosen))
        count += 1
    return count


def _kind_of_rows(name: str, rows: Iterable[SisRow]) -> tuple[str, Iterable[SisRow]]:
    """Work out the kind from the first row, without losing it from a one-shot iterator."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        raise ValueError(f"{name}: no rows, so its kind cannot be told; leave the file out instead")
    if not isinstance(first, SisRow):
        raise ValueError(f"{name}: expected SIS row objects, got {type(first).__name__}")

    def chained() -> Iterable[SisRow]:
        yield first
        yield from iterator

    return first.FORMAT.kind, chained()


def build_zip(files: Mapping[str, FileSource], dest: BinaryIO | Path | None = None) -> bytes | None:
    """Zip several CSVs together; return the bytes, or write to `dest` and return None.

    Each value is either an iterable of rows (streamed into the zip entry as it is written) or an
    already-written CSV (bytes, text, or a path).
    """
    target: BinaryIO | Path | io.BytesIO = io.BytesIO() if dest is None else dest
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, source in files.items():
            if isinstance(source, Path):
                archive.write(source, arcname=name)
            elif isinstance(source, bytes):
                archive.writestr(name, source)
            elif isinstance(source, str):
                archive.writestr(name, source.encode("utf-8"))
            else:
                kind, rows = _kind_of_rows(name, source)
                with archive.open(name, "w") as entry, io.TextIOWrapper(entry, encoding="utf-8", newline="") as text:
                    write_csv(kind, rows, text)
    if isinstance(target, io.BytesIO):
        return target.getvalue()
    return None


def csv_bytes(kind: str, rows: Iterable[SisRow], *, columns: Iterable[str] | None = None) -> bytes:
    """One CSV as UTF-8 bytes (for small files and tests; use write_csv to stream big ones)."""
    buffer = io.StringIO(newline="")
    write_csv(kind, rows, buffer, columns=columns)
    return buffer.getvalue().encode("utf-8")


def _csv_texts(sources: Mapping[str, bytes | str | Path] | bytes) -> Iterable[tuple[str, str]]:
    if isinstance(sources, bytes):
        with zipfile.ZipFile(io.BytesIO(sources)) as archive:
            for info in archive.infolist():
                if not info.is_dir() and info.filename.lower().endswith(".csv"):
                    yield info.filename, archive.read(info).decode("utf-8")
        return
    for name, source in sources.items():
        if isinstance(source, Path):
            yield name, source.read_text(encoding="utf-8")
        elif isinstance(source, bytes):
            yield name, source.decode("utf-8")
        else:
            yield name, source


def fingerprint(sources: Mapping[str, bytes | str | Path] | bytes) -> str:
    """sha256 of the data a set of CSVs holds, independent of row, column and file order.

    Canvas ignores file names and column order, strips cells and downcases headers, so the
    canonical form does too: each row becomes its sorted (column, value) pairs with blanks left
    out, rows are grouped by detected kind and sorted. Equal fingerprints mean "no new data, no
    sync". `sources` is {name: csv} or the bytes of a zip.
    """
    canonical: dict[str, list[str]] = {}
    for name, text in _csv_texts(sources):
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            continue
        header = [h.strip().lower() for h in header]
        kind = detect_kind(header) or f"unknown:{name}"
        bucket = canonical.setdefault(kind, [])
        for record in reader:
            pairs = sorted(
                (column, value.strip()) for column, value in zip(header, record, strict=False) if value.strip()
            )
            if pairs:
                # JSON keeps any character in a value from being confused with a separator.
                bucket.append(json.dumps(pairs, ensure_ascii=False))
    digest = hashlib.sha256()
    for kind in sorted(canonical):
        digest.update(json.dumps(["kind", kind]).encode() + b"\n")
        for row in sorted(canonical[kind]):
            digest.update(row.encode("utf-8"))
            digest.update(b"\n")
    return digest.hexdigest()
