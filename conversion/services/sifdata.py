"""SIF objects as SifRecord rows: stored as the XML they arrived in, read back as plain dicts for the services."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from lxml import etree

from conversion.models import SifRecord, Snapshot
from conversion.services import bulk
from sifclient.errors import SifXmlError
from sifclient.records import RECORD_TYPES, UnknownRecord, _from_text, _is_group, _parse_path, _select
from sifclient.records import SifRecord as SifObject
from sifclient.safexml import SIF_NS, new_parser, parse_message_bytes, q


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a group (ScheduleInfo): set fields only
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) not in (None, [], {})
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record_data(record: SifObject | UnknownRecord) -> dict[str, Any]:
    if isinstance(record, UnknownRecord):
        return {"xml": record.xml.decode("utf-8", "replace")}
    return {
        f.name: _plain(getattr(record, f.name))
        for f in dataclasses.fields(record)
        if getattr(record, f.name) not in (None, [], {}) or f.name == "extended_elements"
    }


def row_for(snapshot: Snapshot, record: SifObject | UnknownRecord, arrived_in: str, ordinal: int = 0) -> SifRecord:
    """The model row for one typed record (the naive benchmark and tests); the ingest uses row_values."""
    element = etree.fromstring(record.xml, new_parser()) if isinstance(record, UnknownRecord) else record.to_xml()
    row = row_values(element, arrived_in, ordinal)
    return SifRecord(
        snapshot=snapshot,
        object_name=row.object_name,
        ref_id=row.ref_id,
        local_id=row.local_id,
        dcid=row.dcid,
        school_ref_id=row.school_ref_id,
        school_year=row.school_year,
        extended_names=row.extended_names,
        xml=row.xml,
        digest=row.digest,
    )


def object_name_of(record: SifObject | UnknownRecord) -> str:
    return record.object_name if isinstance(record, UnknownRecord) else record.OBJECT_NAME


# ---- the ingest's path: each object stored as the XML it arrived in, plus its lookup keys ----------
# A pull stores every object whole, as its own XML, and reads only the handful of keys the conversion looks
# records up by (RefId, LocalId, SchoolInfoRefId, SchoolYear, the DCID extended element). Turning every
# field into a typed value at ingest was most of a pull's time; the services type the fields when they
# read a record (data_of), and only for the objects they read.

_EXTENDED, _EXTENDED_ITEM = q("SIF_ExtendedElements"), q("SIF_ExtendedElement")
_NS_PREFIX = "{" + SIF_NS + "}"
_LOCAL_ID = q("LocalId")
# xs:token names cannot hold a tab, so a tab separates the extended element names of a record.
EXTENDED_NAMES_SEPARATOR = "\t"


class RowValues(NamedTuple):
    """What a SifRecord row holds, in the COPY's column order after snapshot_id (a tuple: made per object)."""

    object_name: str
    ref_id: str
    local_id: str
    dcid: str
    school_ref_id: str
    school_year: int | None
    extended_names: str
    xml: str
    digest: str

    @property
    def data(self) -> dict[str, Any]:
        return data_of(self.xml)


@functools.cache
def _key_fields(object_name: str) -> tuple[bool, bool, bool, bool]:
    """Whether objects of this name carry LocalId, @SchoolInfoRefId, @SchoolYear, and have a typed record."""
    record_type = RECORD_TYPES.get(object_name)
    paths = {name: path for name, path, _ in record_type.FIELDS} if record_type else {}
    local, school, year = paths.get("local_id"), paths.get("school_ref_id"), paths.get("school_year")
    # The typed records agree on these paths; a record type that moved one would need a reader here.
    assert local in (None, "LocalId") and school in (None, "@SchoolInfoRefId") and year in (None, "@SchoolYear")
    return local is not None, school is not None, year is not None, record_type is not None


def _local_node(element: etree._Element) -> etree._Element | None:
    # LocalId comes first and SIF_ExtendedElements last in every object the schema defines: look there
    # before searching (a search costs more than everything else here).
    first = element[0] if len(element) else None
    if first is None:
        return None
    return first if first.tag == _LOCAL_ID else next(element.iterchildren(_LOCAL_ID), None)


def _local_id(node: etree._Element | None) -> str:
    text = node.text if node is not None else None
    return text.strip()[:64] if text else ""


def _school_year(value: str | None) -> int | None:
    year = (value or "").strip()
    # isdigit() alone holds for "¹" or "٢٠٢٦", which int() refuses (or reads): ASCII digits only. A bad year is
    # stored as no year, and fails, named, when the roster reads it.
    return int(year) if year.isascii() and year.isdigit() and len(year) <= 4 else None


def _holder(element: etree._Element) -> etree._Element | None:
    if not len(element):
        return None
    last = element[-1]
    return last if last.tag == _EXTENDED else next(element.iterchildren(_EXTENDED), None)


def _extended(holder: etree._Element | None) -> tuple[str, str]:
    """(DCID, tab-joined names) of an object's SIF_ExtendedElements."""
    if holder is None:
        return "", ""
    dcid, names = "", []
    for item in holder:  # (iterating beats iterchildren(tag) and itertext() here, by far)
        if item.tag != _EXTENDED_ITEM:
            continue
        name = item.get("Name", "")
        names.append(name)
        if name == "DCID":  # the last one wins, as in the typed record's dict
            dcid = _dcid_value(item)
    return dcid, EXTENDED_NAMES_SEPARATOR.join(names)


def _dcid_value(item: etree._Element) -> str:
    return ((item.text or "") if not len(item) else "".join(item.itertext())).strip()[:32]


def row_values(element: etree._Element, arrived_in: str, ordinal: int) -> RowValues:
    """The stored row of one object element: its XML as delivered, its keys, and a digest of the XML.

    An object without a RefId is keyed by where it arrived: "<object>#<arrived_in>#<ordinal>".
    """
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(_NS_PREFIX):
        raise SifXmlError(f"object {tag} is not in the SIF namespace")
    object_name = tag[len(_NS_PREFIX) :]
    has_local, has_school, has_year, typed = _key_fields(object_name)
    local_id = school_ref_id = dcid = extended_names = ""
    school_year = None
    if has_local:
        local_id = _local_id(_local_node(element))
    if has_school:
        school_ref_id = (element.get("SchoolInfoRefId") or "").strip()[:64]
    if has_year:
        school_year = _school_year(element.get("SchoolYear"))
    if typed:
        dcid, extended_names = _extended(_holder(element))
    return _row(
        element,
        object_name,
        element.get("RefId"),
        local_id,
        dcid,
        school_ref_id,
        school_year,
        extended_names,
        arrived_in,
        ordinal,
    )


def _row(
    element: etree._Element,
    object_name: str,
    ref_id: str | None,
    local_id: str,
    dcid: str,
    school_ref_id: str,
    school_year: int | None,
    extended_names: str,
    arrived_in: str,
    ordinal: int,
) -> RowValues:
    """The row of an object whose keys are read: its XML as delivered and the digest of that XML."""
    xml = etree.tostring(element, encoding="unicode")
    return RowValues(
        object_name,
        (ref_id or "").strip() or f"{object_name}#{arrived_in}#{ordinal}",
        local_id,
        dcid,
        school_ref_id,
        school_year,
        extended_names,
        xml,
        hashlib.blake2b(xml.encode(), digest_size=16).hexdigest(),
    )


def data_of(xml: str, fields: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A stored record's fields (or only `fields`) as plain values (dates as ISO text), the way the
    services read them. Raises SifXmlError when a field does not hold its type (a date that is not a date).
    """
    return element_data(etree.fromstring(xml, new_parser()), fields)[1]


def iter_stored_elements(xmls: Sequence[str]) -> Iterator[etree._Element]:
    """The elements of many stored records, parsed as one document (one parse of 1,000 records costs
    about what ten separate ones do); yields exactly one element per record, in order."""
    document = etree.fromstring("<records>" + "".join(xmls) + "</records>", new_parser())
    if len(document) != len(xmls):
        raise SifXmlError(f"{len(xmls)} stored records parsed as {len(document)} elements")
    yield from document


# Typing the fields of one element, compiled once per object name from each record class's FIELDS; the
# result is the same as record_data(record_from_xml(element)) (tests check it).


def _field_reader(object_name: str, path: str, kind) -> tuple[Callable[[etree._Element], Any], bool]:
    segments, attribute = _parse_path(path)
    tags = [q(s.tag) for s in segments]
    where = f"{object_name}/{path}"
    repeats = any(s.repeats for s in segments)
    if not repeats and not _is_group(kind):  # (iterchildren(tag) finds a child in half the time find(tag) takes)
        # Most fields are text, which _from_text only strips.
        convert = str.strip if kind == "str" else (lambda raw: _plain(_from_text(raw, kind, where)))
        steps = [(tag, segment.fixed_attrs) for tag, segment in zip(tags, segments, strict=False)]

        def read_one(element):
            node = element
            for tag, fixed in steps:
                child = next(node.iterchildren(tag), None)
                if child is None:
                    return None
                if fixed and not all(child.get(a) == v for a, v in fixed):
                    # as records._select: the first child with the fixed attributes ([@Type=Primary]), else the first
                    child = next((c for c in node.iterchildren(tag) if all(c.get(a) == v for a, v in fixed)), child)
                node = child
            raw = node.get(attribute) if attribute else node.text
            return None if raw is None else convert(raw)

        return read_one, False

    def read_many(element):  # the general walk of SifRecord.from_xml
        nodes = [element]
        for segment, tag in zip(segments, tags, strict=False):
            found = []
            for node in nodes:
                if segment.repeats:
                    found.extend(node.iterchildren(tag))
                elif segment.fixed_attrs:  # the child with the fixed attributes ([@Type=Primary]), else the first
                    found.extend(_select(list(node.iterchildren(tag)), segment))
                else:
                    child = next(node.iterchildren(tag), None)
                    if child is not None:
                        found.append(child)
            nodes = found
        if _is_group(kind):
            return [_plain(kind.from_element(node, where)) for node in nodes]
        values = []
        for node in nodes:
            raw = node.get(attribute) if attribute else node.text
            if raw is not None:
                values.append(_plain(_from_text(raw, kind, where)))
        if not repeats:
            return values[0] if values else None
        return values

    return read_many, repeats


@functools.cache
def _compiled(object_name: str) -> tuple[tuple[str, Callable | None], ...]:
    """(field name, reader) in dataclass field order; extended_elements has no reader."""
    record_type = RECORD_TYPES[object_name]
    readers = {name: _field_reader(object_name, path, kind)[0] for name, path, kind in record_type.FIELDS}
    return tuple((f.name, readers.get(f.name)) for f in dataclasses.fields(record_type))


@functools.cache
def _compiled_subset(object_name: str, fields: tuple[str, ...]) -> tuple[tuple[str, Callable | None], ...]:
    return tuple((name, read) for name, read in _compiled(object_name) if name in fields)


def element_data(
    element: etree._Element, fields: tuple[str, ...] | None = None
) -> tuple[str, dict[str, Any], str | None]:
    """(object name, data as record_data gives it, RefId) of one object element; with `fields`, only those
    fields are read (a caller that needs three fields of a student reads a fifth of them)."""
    qname = etree.QName(element)
    if qname.namespace != SIF_NS:
        raise SifXmlError(f"object {element.tag} is not in the SIF namespace")
    name = qname.localname
    if name not in RECORD_TYPES:
        return name, {"xml": etree.tostring(element).decode("utf-8", "replace")}, element.get("RefId")
    data: dict[str, Any] = {}
    for field_name, read in _compiled(name) if fields is None else _compiled_subset(name, fields):
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


_MESSAGE = q("SIF_Message")
_BODIES = (q("SIF_Response"), q("SIF_Event"))
_OBJECT_DATA, _EVENT_OBJECT = q("SIF_ObjectData"), q("SIF_EventObject")


def _payload_container(raw: bytes, *, max_bytes: int) -> etree._Element | None:
    """The element holding a delivered SIF_Response's or SIF_Event's objects, or None.

    The message is parsed whole, through sifclient's safe parser and checks: the agent refuses any message
    over `max_bytes` (twice the SIF_MaxBufferSize it announces, 4 MiB at least), so one packet's tree
    stays within a few tens of MB, and lxml builds a whole tree about four times faster than it streams
    the same bytes through iterparse events (see BENCHMARKS.md).
    """
    root = parse_message_bytes(raw, max_bytes=max_bytes)
    # In pull mode the message sits inside the SIF_Ack answering SIF_GetMessage (SIF_Status/SIF_Data).
    body = next((e for e in root.iter(*_BODIES) if e.getparent().tag == _MESSAGE), None)
    if body is None:
        return None
    if body.tag == _BODIES[0]:
        return body.find(_OBJECT_DATA)
    return next(body.iter(_EVENT_OBJECT), None)


def iter_payload_elements(raw: bytes, *, max_bytes: int) -> Iterator[etree._Element]:
    """The object elements of a delivered SIF_Response or SIF_Event, in order."""
    container = _payload_container(raw, max_bytes=max_bytes)
    if container is not None:
        yield from _object_elements(container)


def _object_elements(container: etree._Element) -> list[etree._Element]:
    return [element for element in container if isinstance(element.tag, str)]  # not comments or PIs


def payload_rows(raw: bytes, *, max_bytes: int, arrived_in: str) -> Iterator[RowValues]:
    """The stored rows of a delivered packet's objects, in order: what row_values gives for each of them.

    A packet answers one request, so its objects are usually all of one kind; their keys are then read for
    the whole packet at once by compiled XPath (in C) instead of object by object, which was a third of the
    ingest's Python time. Any key that cannot be read that way with certainty (an object without it, two
    SIF_ExtendedElements, mixed kinds) is read object by object, exactly as row_values does.
    """
    container = _payload_container(raw, max_bytes=max_bytes)
    if container is None:
        return
    elements = _object_elements(container)
    keys = _packet_keys(container, elements)
    if keys is None:
        for ordinal, element in enumerate(elements):
            yield row_values(element, arrived_in, ordinal)
        return
    object_name, (has_local, has_school, has_year, typed), refs, locals_, schools, years, holders = keys
    extended = _uniform_extended(container, holders) if holders is not None else None
    year_of = functools.lru_cache(maxsize=64)(_school_year)  # a packet's objects share a year or two
    for ordinal, element in enumerate(elements):
        ref = refs[ordinal] if refs is not None else element.get("RefId")
        local_id = school_ref_id = dcid = extended_names = ""
        school_year = None
        if has_local:
            local_id = _local_id(locals_[ordinal] if locals_ is not None else _local_node(element))
        if has_school:
            school = schools[ordinal] if schools is not None else element.get("SchoolInfoRefId")
            school_ref_id = (school or "").strip()[:64]
        if has_year:
            school_year = year_of(years[ordinal] if years is not None else element.get("SchoolYear"))
        if extended is not None:
            dcid, extended_names = extended[ordinal]
        elif typed:
            dcid, extended_names = _extended(holders[ordinal] if holders is not None else _holder(element))
        yield _row(
            element, object_name, ref, local_id, dcid, school_ref_id, school_year, extended_names, arrived_in, ordinal
        )


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


def _xpath(path: str) -> etree.XPath:
    return etree.XPath(path, namespaces={"s": SIF_NS}, smart_strings=False)


# Each selects at most one node per object, so a result as long as the packet's objects is one per object.
_ALL_OF_KIND = _xpath("count(*[namespace-uri() = $ns and local-name() = $name])")
_REF_IDS, _SCHOOL_REFS, _SCHOOL_YEARS = _xpath("*/@RefId"), _xpath("*/@SchoolInfoRefId"), _xpath("*/@SchoolYear")
_LOCAL_IDS = _xpath("*/s:LocalId[1]")
_HOLDERS, _ALL_HOLDERS = _xpath("*/s:SIF_ExtendedElements[1]"), _xpath("count(*/s:SIF_ExtendedElements)")


def _packet_keys(container: etree._Element, elements: list[etree._Element]):
    """(object name, its _key_fields, then per key a list with one entry per object, or None where that key
    is read object by object); None when the objects are not all of one SIF kind."""
    if not elements:
        return None
    tag = elements[0].tag
    if not tag.startswith(_NS_PREFIX):
        return None
    object_name = tag[len(_NS_PREFIX) :]
    n = len(elements)
    # The XPaths below look at element children only, so comments between objects do not matter.
    if _ALL_OF_KIND(container, ns=SIF_NS, name=object_name) != n:
        return None
    fields = has_local, has_school, has_year, typed = _key_fields(object_name)
    aligned = lambda found: found if len(found) == n else None  # noqa: E731
    holders = None
    if typed and _ALL_HOLDERS(container) == n:  # exactly one SIF_ExtendedElements in every object
        holders = aligned(_HOLDERS(container))
    return (
        object_name,
        fields,
        aligned(_REF_IDS(container)),
        aligned(_LOCAL_IDS(container)) if has_local else None,
        aligned(_SCHOOL_REFS(container)) if has_school else None,
        aligned(_SCHOOL_YEARS(container)) if has_year else None,
        holders,
    )


_HOLDERS_OF_SIZE = _xpath("count(*/s:SIF_ExtendedElements[1][count(*) = $k][count(s:SIF_ExtendedElement) = $k])")
_EXTENDED_NAMES = _xpath("*/s:SIF_ExtendedElements[1]/s:SIF_ExtendedElement/@Name")
_LAST_DCIDS = _xpath("*/s:SIF_ExtendedElements[1]/s:SIF_ExtendedElement[@Name = 'DCID'][last()]")


def _uniform_extended(container: etree._Element, holders: list[etree._Element]) -> list[tuple[str, str]] | None:
    """(DCID, names) per object, as _extended reads them, when every object's one SIF_ExtendedElements holds
    the same number of named SIF_ExtendedElement children and nothing else (PowerSchool sends the same
    mapped fields with every object of a kind); None otherwise."""
    n, k = len(holders), len(holders[0])
    if _HOLDERS_OF_SIZE(container, k=k) != n:
        return None
    names = _EXTENDED_NAMES(container)
    if len(names) != n * k:  # an element without a Name
        return None
    dcids = _LAST_DCIDS(container)
    if len(dcids) not in (0, n):
        return None
    values = [_dcid_value(item) for item in dcids] if dcids else [""] * n
    joined = names if k == 1 else [EXTENDED_NAMES_SEPARATOR.join(names[i * k : (i + 1) * k]) for i in range(n)]
    return list(zip(values, joined, strict=False))


# ---- storing rows ------------------------------------------------------------------------------------
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
)
_STAGING = "sifrecord_incoming"

Rows = Iterable[RowValues] | Callable[[], Iterable[RowValues]]


def store_rows(snapshot: Snapshot, rows: Rows) -> int:
    """Store rows into the snapshot, skipping a (object, RefId) it already holds; returns rows offered.

    `rows` is a sequence, or a function giving the rows afresh each time it is called (a packet's parse):
    on PostgreSQL they are COPYed into the table while they are produced, so the server stores one part of
    a packet while this process parses the next (bulk_create's parameter adaptation cost more than
    everything else in a pull). A packet repeating a RefId the snapshot holds breaks the unique
    constraint: the COPY is rolled back and the rows, produced again, go through a staging table and one
    INSERT … ON CONFLICT DO NOTHING. Other databases (the embedded SQLite) take the ORM's bulk_create.
    """
    from django.db import IntegrityError, connection, transaction

    produce = rows if callable(rows) else (lambda: rows)
    if connection.vendor != "postgresql":
        key = (snapshot.pk,)
        return bulk.insert_rows(SifRecord, _COLUMNS, (key + row for row in produce()), ignore_conflicts=True)
    import psycopg

    table = connection.ops.quote_name(SifRecord._meta.db_table)
    columns = ", ".join(_COLUMNS)  # for the staging path

    def copy_into(cursor, target: str) -> int:
        key = (snapshot.pk,)
        return bulk.copy_into(cursor, target, _COLUMNS, (key + row for row in produce()))

    try:
        with transaction.atomic(), connection.cursor() as wrapper:
            return copy_into(wrapper.cursor, table)  # psycopg's own cursor, for COPY
    except (IntegrityError, psycopg.IntegrityError):  # raw COPY errors come unwrapped by Django
        with connection.cursor() as wrapper:
            cursor = wrapper.cursor
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (LIKE {table} INCLUDING IDENTITY) ON COMMIT DELETE ROWS"
            )
            cursor.execute(f"TRUNCATE {_STAGING}")
            count = copy_into(cursor, _STAGING)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {_STAGING} "
                "ON CONFLICT (snapshot_id, object_name, ref_id) DO NOTHING"
            )
            cursor.execute(f"TRUNCATE {_STAGING}")
            return count
