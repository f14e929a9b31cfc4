"""Storing SifRecord rows: COPY into PostgreSQL while the packet is parsed, bulk_create elsewhere."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from conversion.models import SifRecord, Snapshot
from conversion.services import bulk
from conversion.services.sif_keys import RowValues
from conversion.services.sif_tally import Tally, tally_of_rows


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while a packet is stored.

    Storing a packet makes and drops a few hundred thousand tuples and strings, all freed by reference
    counting; the collector ran over them every 700 allocations regardless (a few percent of the ingest).
    A packet is bounded (the agent refuses one over its size limit), so what is deferred is bounded too.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_COLUMNS = (
    "snapshot_id",
    "object_name",
    "ref_id",
    "local_id",
    "dcid",
    "school_ref_id",
    "school_year",
    "extended_names",
    "xml",
    "digest",
    "cells",
)
_STAGING = "sifrecord_incoming"

Rows = Iterable[RowValues] | Callable[[], Iterable[RowValues]]


def store_rows(snapshot: Snapshot, rows: Rows, tally: Tally | None = None) -> int:
    """Store rows into the snapshot, skipping a (object, RefId) it already holds; returns rows offered.

    `rows` is a sequence, or a function giving the rows afresh each time it is called (a packet's parse):
    on PostgreSQL they are COPYed into the table while they are produced, so the server stores one part of
    a packet while this process parses the next (bulk_create's parameter adaptation cost more than
    everything else in a pull). A packet repeating a RefId the snapshot holds breaks the unique
    constraint: the COPY is rolled back and the rows, produced again, go through a staging table and one
    INSERT … ON CONFLICT DO NOTHING. Other databases (the embedded SQLite) take the ORM's bulk_create.

    With `tally`, the rows actually added are tallied into it (sif_tally). Where the database cannot say which
    rows were added (bulk_create skipping conflicts), `tally.complete` is set False instead.
    """
    from django.db import IntegrityError, connection, transaction

    produce = rows if callable(rows) else (lambda: rows)
    if connection.vendor != "postgresql":
        if tally is not None:
            tally.complete = False
        key = (snapshot.pk,)
        return bulk.insert_rows(SifRecord, _COLUMNS, (key + row for row in produce()), ignore_conflicts=True)
    import psycopg

    table = connection.ops.quote_name(SifRecord._meta.db_table)
    columns = ", ".join(_COLUMNS)  # for the staging path

    def copy_into(cursor: psycopg.Cursor[Any], target: str, counted: Tally | None) -> int:
        key = (snapshot.pk,)
        if counted is None:
            return bulk.copy_into(cursor, target, _COLUMNS, (key + row for row in produce()))
        keys: list[tuple[str, int | None]] = []
        digests: list[str] = []
        key_of, digest_of = keys.append, digests.append

        def tallied() -> Iterator[tuple[Any, ...]]:
            for row in produce():
                key_of((row.object_name, row.school_year))
                digest_of(row.digest)
                yield key + row

        count = bulk.copy_into(cursor, target, _COLUMNS, tallied())
        counted.add_many(keys, digests)  # (in bulk: 0.6–0.7 µs a row, three quarters of Tally.add row by row)
        return count

    added = Tally() if tally is not None else None  # merged only once the COPY has succeeded
    try:
        with transaction.atomic(), connection.cursor() as wrapper:
            count = copy_into(wrapper.cursor, table, added)  # psycopg's own cursor, for COPY
    except (IntegrityError, psycopg.IntegrityError):  # raw COPY errors come unwrapped by Django
        with connection.cursor() as wrapper:
            cursor = wrapper.cursor
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE {table} INCLUDING IDENTITY) ON COMMIT DELETE ROWS"
            )
            cursor.execute(f"TRUNCATE {_STAGING}")
            count = copy_into(cursor, _STAGING, None)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_STAGING} "
                "ON CONFLICT (snapshot_id, object_name, ref_id) DO NOTHING "
                "RETURNING object_name, digest, school_year"
            )
            inserted = cursor.fetchall()
            cursor.execute(f"TRUNCATE {_STAGING}")
        if tally is not None:
            tally.merge(tally_of_rows(inserted))
        return count
    if tally is not None and added is not None:
        tally.merge(added)
    return count
