"""Turning sifclient's typed records into SifRecord rows (and back into plain dicts for the services)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from lxml import etree
from sifclient.errors import SifXmlError
from sifclient.records import RECORD_TYPES, _from_text, _parse_path
from sifclient.records import SifRecord as SifObject
from sifclient.records import UnknownRecord
from sifclient.safexml import SIF_NS, iterparse_message, q

from conversion.models import SifRecord, Snapshot


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record_data(record: SifObject | UnknownRecord) -> dict[str, Any]:
    if isinstance(record, UnknownRecord):
        return {"xml": record.xml.decode("utf-8", "replace")}
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)
            if getattr(record, f.name) not in (None, [], {}) or f.name == "extended_elements"}


def row_for(snapshot: Snapshot, record: SifObject | UnknownRecord, fallback_key: str) -> SifRecord:
    """The row for one record; objects without a RefId are keyed by where they arrived (`fallback_key`)."""
    object_name = object_name_of(record)
    data = record_data(record)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    ref_id = getattr(record, "ref_id", None) or fallback_key
    extended = data.get("extended_elements") or {}
    return SifRecord(
        snapshot=snapshot,
        object_name=object_name,
        ref_id=ref_id,
        local_id=str(data.get("local_id") or "")[:64],
        dcid=str(extended.get("DCID") or "")[:32],
        school_ref_id=str(data.get("school_ref_id") or "")[:64],
        school_year=data.get("school_year") if isinstance(data.get("school_year"), int) else None,
        data=data,
        digest=hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest(),
    )


def object_name_of(record: SifObject | UnknownRecord) -> str:
    return record.object_name if isinstance(record, UnknownRecord) else record.OBJECT_NAME


# ---- the ingest's fast path: straight from the XML element to the stored row -------------------------
# Typing every object into a sifclient dataclass and back into a dict was most of a pull's time (about
# 0.4 ms per object). The same dict is built here directly from the element with each class's FIELDS,
# compiled once: the result is identical to record_data(record_from_xml(element)) (tests check it).

_EXTENDED, _EXTENDED_ITEM = q("SIF_ExtendedElements"), q("SIF_ExtendedElement")


@dataclass(frozen=True)
class RowValues:
    """What a SifRecord row holds, without a model instance: `canonical` is `data` as stored JSON."""

    object_name: str
    ref_id: str
    local_id: str
    dcid: str
    school_ref_id: str
    school_year: int | None
    data: dict[str, Any]
    canonical: str
    digest: str


def _field_reader(object_name: str, path: str, kind: str) -> tuple[Callable[[etree._Element], Any], bool]:
    segments, attribute = _parse_path(path)
    tags = [q(s.tag) for s in segments]
    where = f"{object_name}/{path}"
    repeats = any(s.repeats for s in segments)
    if not repeats:
        def read_one(element):
            node = element
            for tag in tags:
                node = node.find(tag)
                if node is None:
                    return None
            raw = node.get(attribute) if attribute else node.text
            return None if raw is None else _plain(_from_text(raw, kind, where))
        return read_one, False

    def read_many(element):  # the general walk of SifRecord.from_xml
        nodes = [element]
        for segment, tag in zip(segments, tags):
            found = []
            for node in nodes:
                children = node.findall(tag)
                found.extend(children if segment.repeats else children[:1])
            nodes = found
        values = []
        for node in nodes:
            raw = node.get(attribute) if attribute else node.text
            if raw is not None:
                values.append(_plain(_from_text(raw, kind, where)))
        return values
    return read_many, True


@functools.cache
def _compiled(object_name: str) -> tuple[tuple[str, Callable | None], ...]:
    """(field name, reader) in dataclass field order; extended_elements has no reader."""
    record_type = RECORD_TYPES[object_name]
    readers = {name: _field_reader(object_name, path, kind)[0] for name, path, kind in record_type.FIELDS}
    return tuple((f.name, readers.get(f.name)) for f in dataclasses.fields(record_type))


def element_data(element: etree._Element) -> tuple[str, dict[str, Any], str | None]:
    """(object name, data as record_data gives it, RefId) of one object element."""
    qname = etree.QName(element)
    if qname.namespace != SIF_NS:
        raise SifXmlError(f"object {element.tag} is not in the SIF namespace")
    name = qname.localname
    if name not in RECORD_TYPES:
        return name, {"xml": etree.tostring(element).decode("utf-8", "replace")}, element.get("RefId")
    data: dict[str, Any] = {}
    for field_name, read in _compiled(name):
        if read is None:
            extended: dict[str, str] = {}
            holder = element.find(_EXTENDED)
            if holder is not None:
                for item in holder.findall(_EXTENDED_ITEM):
                    extended[item.get("Name", "")] = "".join(item.itertext()).strip()
            data[field_name] = extended
            continue
        value = read(element)
        if value is not None and value != []:
            data[field_name] = value
    return name, data, data.get("ref_id")


def row_values(element: etree._Element, fallback_key: str) -> RowValues:
    """The stored row of one object element (the same values row_for gives for its typed record)."""
    object_name, data, ref_id = element_data(element)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    extended = data.get("extended_elements") or {}
    school_year = data.get("school_year")
    return RowValues(
        object_name=object_name,
        ref_id=ref_id or fallback_key,
        local_id=str(data.get("local_id") or "")[:64],
        dcid=str(extended.get("DCID") or "")[:32],
        school_ref_id=str(data.get("school_ref_id") or "")[:64],
        school_year=school_year if isinstance(school_year, int) else None,
        data=data,
        canonical=canonical,
        digest=hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest(),
    )


_MESSAGE = q("SIF_Message")
_BODIES = (q("SIF_Response"), q("SIF_Event"))
_OBJECT_DATA, _EVENT_OBJECT = q("SIF_ObjectData"), q("SIF_EventObject")


def iter_payload_elements(raw: bytes, *, max_bytes: int) -> Iterator[etree._Element]:
    """The object elements of a delivered message, one at a time, each cleared once the caller moves on.

    The same walk as sifclient.streaming.iter_payload_records (through the same safe parser), minus
    the typing: the caller reads each element before asking for the next.
    """
    body = container = None
    for event, element in iterparse_message(raw, max_bytes=max_bytes):
        parent = element.getparent()
        if event == "start":
            if element.tag in _BODIES and parent is not None and parent.tag == _MESSAGE:
                body = element
            elif body is not None and container is None and (
                (element.tag == _OBJECT_DATA and parent is body and body.tag == _BODIES[0])
                or element.tag == _EVENT_OBJECT
            ):
                container = element
            continue
        if container is not None and parent is container:
            yield element
            element.clear()
            while element.getprevious() is not None:
                del container[0]
        elif element is container:
            return


# ---- storing rows ------------------------------------------------------------------------------------
_COLUMNS = ("snapshot_id", "object_name", "ref_id", "local_id", "dcid", "school_ref_id", "school_year", "data",
            "digest")
_STAGING = "sifrecord_incoming"


def store_rows(snapshot: Snapshot, rows: Iterable[RowValues], *, batch: int = 2000) -> int:
    """Store rows into the snapshot, skipping a (object, RefId) it already holds; returns rows offered.

    On PostgreSQL the rows are COPYed straight into the table (bulk_create's parameter adaptation cost
    more than everything else in a pull). A packet repeating a RefId the snapshot holds would break the
    unique constraint: then, inside a savepoint, the rows go through a staging table and one INSERT …
    ON CONFLICT DO NOTHING, as bulk_create(ignore_conflicts=True) did. Other databases (the embedded
    SQLite) take the ORM's bulk_create.
    """
    from django.db import IntegrityError, connection, transaction

    if connection.vendor != "postgresql":
        return _store_with_orm(snapshot, rows, batch)
    import psycopg

    table = connection.ops.quote_name(SifRecord._meta.db_table)
    columns = ", ".join(_COLUMNS)
    values = [(snapshot.pk, row.object_name, row.ref_id, row.local_id, row.dcid, row.school_ref_id,
               row.school_year, row.canonical, row.digest) for row in rows]  # one packet: small
    try:
        with transaction.atomic(), connection.cursor() as wrapper:
            with wrapper.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
    except (IntegrityError, psycopg.IntegrityError):  # raw COPY errors come unwrapped by Django
        with connection.cursor() as wrapper:
            cursor = wrapper.cursor  # psycopg's own cursor, for COPY
            cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE {table} INCLUDING IDENTITY) "
                           "ON COMMIT DELETE ROWS")
            cursor.execute(f"TRUNCATE {_STAGING}")
            with cursor.copy(f"COPY {_STAGING} ({columns}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_STAGING} "
                           "ON CONFLICT (snapshot_id, object_name, ref_id) DO NOTHING")
            cursor.execute(f"TRUNCATE {_STAGING}")
    return len(values)


def _store_with_orm(snapshot: Snapshot, rows: Iterable[RowValues], batch: int) -> int:
    count = 0
    pending: list[SifRecord] = []
    for row in rows:
        pending.append(SifRecord(snapshot=snapshot, object_name=row.object_name, ref_id=row.ref_id,
                                 local_id=row.local_id, dcid=row.dcid, school_ref_id=row.school_ref_id,
                                 school_year=row.school_year, data=row.data, digest=row.digest))
        if len(pending) >= batch:
            SifRecord.objects.bulk_create(pending, ignore_conflicts=True)
            count += len(pending)
            pending = []
    if pending:
        SifRecord.objects.bulk_create(pending, ignore_conflicts=True)
        count += len(pending)
    return count
