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
from typing import Any, NamedTuple

from lxml import etree

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

    @property
    def data(self) -> dict[str, Any]:
        from conversion.services.sifdata import data_of  # (the reading back imports this module)

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
