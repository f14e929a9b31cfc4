"""Stored SIF objects read back as plain dicts for the services, through sifclient's public reader.

The ingest's two other jobs live beside this one: reading the keys of delivered objects
(services.sif_keys) and storing the rows (services.sif_store).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import Any

from lxml import etree

from conversion.models import SifRecord, Snapshot
from conversion.services.sif_keys import EXTENDED_NAMES_SEPARATOR, row_values
from sifclient.errors import SifXmlError
from sifclient.reader import object_name, read_fields, record_values
from sifclient.records import RECORD_TYPES, UnknownRecord
from sifclient.records import SifRecord as SifObject
from sifclient.safexml import new_parser

__all__ = [
    "EXTENDED_NAMES_SEPARATOR",
    "data_of",
    "element_data",
    "iter_stored_elements",
    "record_data",
    "row_for",
]


def record_data(record: SifObject | UnknownRecord) -> dict[str, Any]:
    """A typed record as the plain dict data_of reads from its stored XML (an unknown object: its XML)."""
    if isinstance(record, UnknownRecord):
        return {"xml": record.xml.decode("utf-8", "replace")}
    return record_values(record, json=True)


def data_of(xml: str, fields: Collection[str] | None = None) -> dict[str, Any]:
    """A stored record's fields (or only `fields`) as plain values (dates as ISO text), the way the
    services read them. Raises SifXmlError when a field does not hold its type (a date that is not a date).
    """
    return element_data(etree.fromstring(xml, new_parser()), fields)[1]


def element_data(
    element: etree._Element, fields: Collection[str] | None = None
) -> tuple[str, dict[str, Any], str | None]:
    """(object name, data as record_data gives it, RefId) of one object element; with `fields`, only those
    fields are read (a caller that needs three fields of a student reads a fifth of them)."""
    name = object_name(element)
    if name not in RECORD_TYPES:
        return name, {"xml": etree.tostring(element).decode("utf-8", "replace")}, element.get("RefId")
    data = read_fields(element, fields, json=True)
    return name, data, data.get("ref_id")


def iter_stored_elements(xmls: Sequence[str]) -> Iterator[etree._Element]:
    """The elements of many stored records, parsed as one document (one parse of 1,000 records costs
    about what ten separate ones do); yields exactly one element per record, in order."""
    document = etree.fromstring("<records>" + "".join(xmls) + "</records>", new_parser())
    if len(document) != len(xmls):
        raise SifXmlError(f"{len(xmls)} stored records parsed as {len(document)} elements")
    yield from document


def row_for(snapshot: Snapshot, record: SifObject | UnknownRecord, arrived_in: str, ordinal: int = 0) -> SifRecord:
    """The model row for one typed record (the naive benchmark and tests); the ingest stores sif_keys rows."""
    element = etree.fromstring(record.xml, new_parser()) if isinstance(record, UnknownRecord) else record.to_xml()
    row = row_values(element, arrived_in, ordinal)
    return SifRecord(snapshot=snapshot, **row._asdict())  # RowValues names the model's fields
