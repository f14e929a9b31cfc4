"""The keys of delivered SIF objects: what a SifRecord row holds besides the object's XML.

A pull stores every object whole, as its own XML, and reads only the handful of keys the conversion looks
records up by (RefId, LocalId, SchoolInfoRefId, SchoolYear, the DCID extended element, the extended element
names). Turning every field into a typed value at ingest was most of a pull's time; the services type the
fields when they read a record (sifdata.data_of), and only for the objects they read.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from typing import NamedTuple

from lxml import etree

from conversion.services.sif_cells import CELLS, cells_of
from sifclient.errors import SifXmlError
from sifclient.records import RECORD_TYPES
from sifclient.safexml import SIF_NS, parse_message_bytes, q

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
    cells: str  # what the nightly build reads of the object (sif_cells), for the kinds that have them


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


@functools.lru_cache(maxsize=256)  # a pull's objects carry a handful of distinct years
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


def _year_read(school_year: int | None, has_year: bool, element: etree._Element) -> bool:
    """Whether the row's school year key says what the object's SchoolYear does (none given, or read as a year)."""
    return school_year is not None or not has_year or not (element.get("SchoolYear") or "").strip()


def row_values(element: etree._Element, arrived_in: str, ordinal: int) -> RowValues:
    """The stored row of one object element: its XML as delivered, its keys, and a digest of the XML.

    An object without a RefId is keyed by where it arrived: "<object>#<arrived_in>#<ordinal>".
    """
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(_NS_PREFIX):
        raise SifXmlError(f"object {tag if isinstance(tag, str) else repr(tag)} is not in the SIF namespace")
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
    # Serialised once, as UTF-8 bytes: the digest is taken of those, and the text decoded from them (what
    # encoding="unicode" does inside lxml anyway), rather than serialising to text and encoding it again.
    raw = etree.tostring(element, encoding="UTF-8", xml_declaration=False)
    return RowValues(
        object_name,
        (element.get("RefId") or "").strip() or f"{object_name}#{arrived_in}#{ordinal}",
        local_id,
        dcid,
        school_ref_id,
        school_year,
        extended_names,
        raw.decode(),
        hashlib.blake2b(raw, digest_size=16).hexdigest(),
        cells_of(element, object_name) if object_name in CELLS and _year_read(school_year, has_year, element) else "",
    )


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
    body = next((e for e in root.iter(*_BODIES) if getattr(e.getparent(), "tag", None) == _MESSAGE), None)
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
    """The stored rows of a delivered packet's objects, in order.

    (Their keys were once read for the whole packet at once by compiled XPath as well; measured in CPU
    seconds over a whole pull, that reading cost as much as reading each object's keys here, and it was
    dropped: see BENCHMARKS.md.)
    """
    for ordinal, element in enumerate(iter_payload_elements(raw, max_bytes=max_bytes)):
        yield row_values(element, arrived_in, ordinal)
