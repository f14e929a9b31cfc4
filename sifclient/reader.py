"""Reading the fields of typed SIF objects without building the records: the public reader for stored objects.

``records.SifRecord.from_xml`` builds a whole dataclass from an element. A service that keeps each object
as its XML and reads a few fields of many of them (a roster reads three fields of 200,000 students) wants
the values alone, and often in a form it can store as JSON. This module gives both:

* ``read_fields(element)``: ``{field name: value}`` of the fields the object carries, typed as the record
  types them (``int``, ``datetime.date``, ``Decimal``, group dataclasses such as ``ScheduleInfo``);
* ``read_fields(element, json=True)``: the same values as JSON-ready plain values (dates as ISO text,
  decimals as text, each group as a dict of the fields it carries);
* ``read_fields(element, fields=("first_name", "last_name"))``: only those fields, read without walking
  the others;
* ``record_values(record, json=True)``: the same dict from an already typed record.

A field that is absent (or an empty list) is left out of the dict; ``extended_elements`` is always there,
as a dict of ``SIF_ExtendedElement`` names to their text. The values are exactly those of the typed record
(``record_values(record_from_xml(e), json=True) == read_fields(e, json=True)``), and so are the errors: a
value that does not hold its type raises the same ``SifXmlError``, naming the object and the element.

The readers are those ``from_xml`` uses, compiled once per object kind from each record type's ``FIELDS``
(``records.field_readers``); reading a field costs a few C calls into lxml.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection
from typing import Any

from lxml import etree

from .errors import SifXmlError
from .records import (
    RECORD_TYPES,
    FieldRead,
    SifRecord,
    field_readers,
    path_steps,
    plain,
    text_reader,
    typed_from_text,
)
from .safexml import SIF_NS, q

__all__ = ["object_name", "plain", "read_fields", "read_texts", "record_values", "typed_value"]

_EXTENDED, _EXTENDED_ITEM = q("SIF_ExtendedElements"), q("SIF_ExtendedElement")
_NS_PREFIX = "{" + SIF_NS + "}"
EXTENDED_ELEMENTS = "extended_elements"


def record_values(record: SifRecord, *, json: bool = False) -> dict[str, Any]:
    """The fields a typed record carries (``extended_elements`` always), as ``read_fields`` gives them."""
    convert: Callable[[Any], Any] = plain if json else _same
    return {
        f.name: convert(getattr(record, f.name))
        for f in dataclasses.fields(record)  # type: ignore[arg-type]  # every record type is a dataclass
        if getattr(record, f.name) not in (None, [], {}) or f.name == EXTENDED_ELEMENTS
    }


def object_name(element: etree._Element) -> str:
    """The SIF object name of an element (``StudentPersonal``); SifXmlError if it is not in the SIF namespace."""
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith(_NS_PREFIX):
        raise SifXmlError(f"object {tag if isinstance(tag, str) else repr(tag)} is not in the SIF namespace")
    return tag[len(_NS_PREFIX) :]


def read_fields(
    element: etree._Element, fields: Collection[str] | None = None, *, json: bool = False
) -> dict[str, Any]:
    """The fields (or only ``fields``) an object element carries, typed, or JSON-ready with ``json=True``.

    Raises SifXmlError when the element is not a SIF object of a type ``records.RECORD_TYPES`` knows, or when
    a value does not hold its type (a date that is not a date).
    """
    name = object_name(element)
    if name not in RECORD_TYPES:
        raise SifXmlError(f"no typed record for object {name}")
    readers = _readers(name, json) if fields is None else _subset(name, json, frozenset(fields))
    data: dict[str, Any] = {}
    for field_name, read in readers:
        if read is None:
            data[field_name] = _extended_elements(element)
            continue
        value = read(element)
        if value is not None and value != []:
            data[field_name] = value
    return data


def read_texts(element: etree._Element, object_name: str, fields: tuple[str, ...]) -> tuple[str | None, ...]:
    """The text of each of ``fields`` (single-valued fields only), stripped and not typed: what ``read_fields``
    reads before typing it, for a caller that stores many objects' values and types each distinct value once
    (``typed_value``). None where the object lacks the field. ``object_name`` is the element's (the caller knows
    it); a field that repeats or is a group raises ValueError when the readers are compiled."""
    plan = _text_plan(object_name, fields)
    if plan is None:
        return tuple(read(element) for read in _text_readers(object_name, fields))
    # One pass over the object's children finds every field's first step. (lxml's own tag filters, iterchildren(tag)
    # and find(), cost more than walking the few children of an object and comparing their tags: they build a tag
    # matcher on every call.)
    wanted, steps = plan
    found: dict[Any, list[Any]] = {}
    settled = 0  # tags whose preferred child is found: the walk stops when every one is
    for child in element:
        tag = child.tag
        fixed = wanted.get(tag)
        if fixed is None:
            continue
        pair = found.get(tag)
        if pair is None:  # [the first child of that tag, the first with the step's fixed attributes]
            pair = found[tag] = [child, None]
        if pair[1] is None and (not fixed or _matches(child, fixed)):
            pair[1] = child
            settled += 1
            if settled == len(wanted):
                break
    texts: list[str | None] = []
    for tag, rest, attribute in steps:
        if tag is None:
            raw = element.get(attribute or "")  # (an attribute-only path always names one)
            texts.append(None if raw is None else raw.strip())
            continue
        pair = found.get(tag)
        if pair is None:
            texts.append(None)
            continue
        # As the field readers choose (records._field_reader): the first child with the fixed attributes, else the
        # first child of the tag.
        texts.append(_walk(pair[1] if pair[1] is not None else pair[0], rest, attribute))
    return tuple(texts)


def _matches(child: etree._Element, fixed: tuple[tuple[str, str], ...]) -> bool:
    for name, value in fixed:
        if child.get(name) != value:
            return False
    return True


def _walk(node: etree._Element, rest: tuple[Any, ...], attribute: str | None) -> str | None:
    for tag, fixed in rest:
        first = preferred = None
        for child in node:
            if child.tag != tag:
                continue
            if first is None:
                first = child
            if not fixed or _matches(child, fixed):
                preferred = child
                break
        if first is None:
            return None
        node = preferred if preferred is not None else first
    raw = node.get(attribute) if attribute else node.text
    return None if raw is None else raw.strip()


def typed_value(object_name: str, field_name: str, text: str, *, json: bool = False) -> Any:
    """``text`` (as ``read_texts`` gives it) typed as ``read_fields`` types that field; SifXmlError, naming the
    object and element, when it does not hold its type."""
    path, kind = _field_kinds(object_name)[field_name]
    value = typed_from_text(text, kind, f"{object_name}/{path}")
    return plain(value) if json else value


# ---- compiling the readers ------------------------------------------------------------------------------


def _same(value: Any) -> Any:
    return value


def _extended_elements(element: etree._Element) -> dict[str, str]:
    """As SifRecord.from_xml reads them: the first SIF_ExtendedElements, the last value of a repeated name."""
    extended: dict[str, str] = {}
    holder = element.find(_EXTENDED)
    if holder is not None:
        for item in holder.findall(_EXTENDED_ITEM):
            extended[item.get("Name", "")] = "".join(item.itertext()).strip()
    return extended


@functools.cache
def _readers(object_name: str, json: bool) -> tuple[tuple[str, FieldRead | None], ...]:
    """(field name, reader) in the record's dataclass field order; extended_elements has no reader."""
    record_type = RECORD_TYPES[object_name]
    readers = dict(field_readers(record_type, object_name, json))
    return tuple(
        (f.name, readers.get(f.name))
        for f in dataclasses.fields(record_type)  # type: ignore[arg-type]  # every record type is a dataclass
    )


@functools.cache
def _subset(object_name: str, json: bool, fields: frozenset[str]) -> tuple[tuple[str, FieldRead | None], ...]:
    return tuple((name, read) for name, read in _readers(object_name, json) if name in fields)


@functools.cache
def _field_kinds(object_name: str) -> dict[str, tuple[str, Any]]:
    return {name: (path, kind) for name, path, kind in RECORD_TYPES[object_name].FIELDS}


@functools.cache
def _text_readers(object_name: str, fields: tuple[str, ...]) -> tuple[FieldRead, ...]:
    kinds = _field_kinds(object_name)
    readers = []
    for name in fields:
        path, kind = kinds[name]
        if not isinstance(kind, str) or "*" in path:
            raise ValueError(f"{object_name}.{name} repeats or is a group: read it with read_fields")
        # The same path reader read_fields uses, as text: "str" readers only strip.
        readers.append(text_reader(f"{object_name}/{path}", path))
    return tuple(readers)


_Step = tuple[Any, tuple[Any, ...], str | None]  # (first step's tag or None, the further steps, final attribute)


@functools.cache
def _text_plan(
    object_name: str, fields: tuple[str, ...]
) -> tuple[dict[Any, tuple[Any, ...]], tuple[_Step, ...]] | None:
    """For read_texts: the first steps' tags (with their fixed attributes) and, per field, its first step, further
    steps and final attribute; None when two fields step through the same tag with different fixed attributes
    (read_texts then reads field by field)."""
    _text_readers(object_name, fields)  # the same refusals (repeating fields, groups)
    kinds = _field_kinds(object_name)
    wanted: dict[Any, tuple[Any, ...]] = {}
    steps: list[_Step] = []
    for name in fields:
        path_of_steps, attribute = path_steps(kinds[name][0])
        if not path_of_steps:
            steps.append((None, (), attribute))
            continue
        (tag, fixed), *rest = path_of_steps
        if wanted.setdefault(tag, fixed) != fixed:
            return None
        steps.append((tag, tuple(rest), attribute))
    return wanted, tuple(steps)
