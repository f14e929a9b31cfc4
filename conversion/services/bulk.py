"""Writing many rows at once: PostgreSQL's COPY where the database is PostgreSQL, bulk_create elsewhere.

A pull stores about a million rows for a large district and a mapping diff a few hundred thousand;
bulk_create spends most of that time building model instances and adapting parameters, COPY streams
plain tuples to the server while the caller is still producing them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connection, models


def copy_into(cursor, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> int:
    """COPY `rows` (tuples in `columns` order) into `table` with psycopg's cursor; returns how many."""
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def insert_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Iterable[tuple],
    *,
    batch: int = 2000,
    ignore_conflicts: bool = False,
) -> int:
    """Insert plain tuples (in `columns` order, column names as in the table) into `model`'s table.

    `ignore_conflicts` is for the ORM path only (the embedded SQLite); COPY has no such option.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as wrapper:
            return copy_into(wrapper.cursor, connection.ops.quote_name(model._meta.db_table), columns, rows)
    attnames = {f.column: f.attname for f in model._meta.concrete_fields}
    names = [attnames[c] for c in columns]
    count = 0
    pending: list[models.Model] = []
    for row in rows:
        pending.append(model(**dict(zip(names, row, strict=False))))
        if len(pending) >= batch:
            model._default_manager.bulk_create(pending, ignore_conflicts=ignore_conflicts)
            count += len(pending)
            pending = []
    model._default_manager.bulk_create(pending, ignore_conflicts=ignore_conflicts)
    return count + len(pending)
