"""Typed SIF 2.x data objects (the ones a PowerSchool -> Canvas conversion needs).

Each record is a dataclass; ``FIELDS`` maps each attribute to its place in the XML with a small
path language, listed in the schema's element order so ``to_xml`` emits schema-valid objects:

* ``@RefId``                         attribute of the object element
* ``LocalId``                        child element text
* ``Name[@Type=04]/LastName``        nested; ``[@A=v]`` is a fixed attribute set when created
* ``ScheduleInfoList/ScheduleInfo/@TermInfoRefId``  attribute of a nested element
* ``GradeLevels/GradeLevel*/Code``   ``*`` marks the repeating element of a list field
* ``ScheduleInfoList/ScheduleInfo*`` with a group class as its kind (``ScheduleInfo``): a list of
  structured parts, each read and written with the group's own FIELDS, relative to its element

Reading: a ``[@A=v]`` segment prefers the children carrying that attribute value and falls back to the
first child (an ``EmailList`` whose only address is ``Alternate1`` still gives an address). A value that
does not hold its type (``<PointsPossible>ten</PointsPossible>``, ``<StartDate>08/26/2009</StartDate>``)
is a ``SifXmlError`` naming the object and the element, never a bare ``ValueError``.

Every field is optional (``None`` = absent), so partial objects of Change events round-trip.
A data-model library (e.g. generated bindings) was not used: none is maintained for SIF 2.x US
in Python, and the conversion needs a dozen objects, not the whole model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Self

from lxml import etree

from .errors import SifXmlError
from .safexml import SIF_NS, q

Kind = str  # "str" | "int" | "date" | "decimal"


@dataclass(frozen=True)
class _Segment:
    tag: str
    fixed_attrs: tuple[tuple[str, str], ...] = ()
    repeats: bool = False


def _parse_path(path: str) -> tuple[list[_Segment], str | None]:
    """Split a field path into element segments and an optional final attribute name."""
    parts = path.split("/")
    attribute = None
    if parts[-1].startswith("@"):
        attribute = parts.pop()[1:]
    segments = []
    for part in parts:
        repeats = part.endswith("*")
        part = part.rstrip("*")
        fixed: list[tuple[str, str]] = []
        if "[" in part:
            tag, rest = part.split("[", 1)
            for pred in rest.rstrip("]").split("]["):
                name, value = pred.lstrip("@").split("=", 1)
                fixed.append((name, value))
            part = tag
        segments.append(_Segment(part, tuple(fixed), repeats))
    return segments, attribute


def _version_key(version: str) -> tuple[int, int, int]:
    major, _, rest = version.partition(".")
    minor, _, revision = rest.partition("r")
    return int(major), int(minor or 0), int(revision or 0)


def _to_text(value: Any, kind: Kind) -> str:
    if kind == "date":
        return str(value.isoformat())
    if kind == "decimal":
        return format(Decimal(value), "f")
    return str(value)


# The lexical forms of xs:int / xs:unsignedInt, xs:decimal and xs:date (SIF 2.x uses these three). Python's
# int(), Decimal() and date.fromisoformat() accept more ("1_000", "NaN", "20090826", "2009-W35-3"), which
# a schema-valid SIF document never holds: such a value is refused, not read as something else.
_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"(-?[0-9]{4,})-([0-9]{2})-([0-9]{2})(Z|[+-](?:0[0-9]|1[0-4]):[0-5][0-9])?")


def _from_text(text: str, kind: Kind, where: str) -> Any:
    text = text.strip()
    if kind == "str":
        return text
    try:
        if kind == "int":
            if not _INT.fullmatch(text):
                raise ValueError
            return int(text)
        if kind == "date":
            # xs:date may carry a time zone ("2009-08-26-05:00", "2009-08-26Z"): the day is what counts.
            match = _DATE.fullmatch(text)
            if not match:
                raise ValueError
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        if kind == "decimal":
            if not _DECIMAL.fullmatch(text):
                raise ValueError
            return Decimal(text)
    except (ValueError, ArithmeticError) as exc:
        raise SifXmlError(f"{where}: {text!r} is not a valid {kind}") from exc
    return text


def _select(children: list[etree._Element], segment: _Segment) -> list[etree._Element]:
    """The children a non-repeating segment reads: those with its fixed attributes, else the first."""
    if segment.fixed_attrs and len(children) > 1:
        preferred = [c for c in children if all(c.get(a) == v for a, v in segment.fixed_attrs)]
        return preferred[:1] or children[:1]
    return children[:1]


def typed_from_text(text: str, kind: Kind, where: str) -> Any:
    """A field's text typed as the records type it (``kind``); SifXmlError naming ``where`` when it does not hold
    its type. (sifclient.reader.typed_value is the public way to use this.)"""
    return _from_text(text, kind, where)


def path_steps(path: str) -> tuple[list[tuple[str, tuple[tuple[str, str], ...]]], str | None]:
    """([(qualified tag, fixed attributes)] of each step, final attribute) of a single-valued field's path."""
    segments, attribute = _parse_path(path)
    if any(s.repeats for s in segments):
        raise ValueError(f"{path} repeats")
    return [(q(s.tag), s.fixed_attrs) for s in segments], attribute


def text_reader(where: str, path: str) -> FieldRead:
    """The reader of a single-valued field's text, stripped and untyped (sifclient.reader.read_texts)."""
    return _field_reader(where, path, "str", _same)


def _tag_text(tag: object) -> str:
    """An element's tag as error text (a str for elements; comments and PIs have a function as their tag)."""
    return tag if isinstance(tag, str) else repr(tag)


def _is_group(kind: Any) -> bool:
    return isinstance(kind, type)


def plain(value: Any) -> Any:
    """A typed value as a JSON-ready one: dates as ISO text, decimals as text, groups as dicts of set fields."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a group (ScheduleInfo): set fields only
        return {
            f.name: plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) not in (None, [], {})
        }
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _same(value: Any) -> Any:
    return value


# A field's reader takes the object (or group) element and gives the field's value: None when the element
# lacks it, a list for a repeating field.
FieldRead = Callable[[etree._Element], Any]


def _field_reader(where: str, path: str, kind: Any, finish: Callable[[Any], Any]) -> FieldRead:
    """The reader of one field, its path parsed once: `finish` turns each typed value into what is returned."""
    segments, attribute = _parse_path(path)
    tags = [q(s.tag) for s in segments]
    repeats = any(s.repeats for s in segments)
    if not repeats and not _is_group(kind):  # (iterchildren(tag) finds a child in half the time find(tag) takes)
        # Most fields are text, which _from_text only strips.
        convert: Callable[[str], Any] = (
            str.strip if kind == "str" else (lambda raw: finish(_from_text(raw, kind, where)))
        )
        steps = [(tag, segment.fixed_attrs) for tag, segment in zip(tags, segments, strict=True)]

        def read_one(element: etree._Element) -> Any:
            node = element
            for tag, fixed in steps:
                child = next(node.iterchildren(tag), None)
                if child is None:
                    return None
                if fixed and not all(child.get(a) == v for a, v in fixed):
                    # as _select: the first child with the fixed attributes ([@Type=Primary]), else the first
                    child = next((c for c in node.iterchildren(tag) if all(c.get(a) == v for a, v in fixed)), child)
                node = child
            raw = node.get(attribute) if attribute else node.text
            return None if raw is None else convert(raw)

        return read_one

    def read_many(element: etree._Element) -> Any:
        nodes = [element]
        for segment, tag in zip(segments, tags, strict=True):
            found: list[etree._Element] = []
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
            return [finish(kind.from_element(node, where)) for node in nodes]
        values = []
        for node in nodes:
            raw = node.get(attribute) if attribute else node.text
            if raw is not None:
                values.append(finish(_from_text(raw, kind, where)))
        if not repeats:
            return values[0] if values else None
        return values

    return read_many


_FIELD_READERS: dict[tuple[type[Any], str, bool], tuple[tuple[str, FieldRead], ...]] = {}


def field_readers(cls: type[Any], where: str, json: bool = False) -> tuple[tuple[str, FieldRead], ...]:
    """(field name, reader) for each of `cls`'s FIELDS, compiled once; errors name "<where>/<path>".

    With `json`, values come as ``plain`` gives them. (sifclient.reader is the public way to use these.)
    """
    key = (cls, where, json)
    readers = _FIELD_READERS.get(key)
    if readers is None:
        finish = plain if json else _same
        readers = _FIELD_READERS[key] = tuple(
            (name, _field_reader(f"{where}/{path}", path, kind, finish)) for name, path, kind in cls.FIELDS
        )
    return readers


def _read_fields(cls: Any, element: etree._Element, where: str) -> dict[str, Any]:
    """Every field of `cls` (its FIELDS) read from `element`; group fields give lists of group objects."""
    return {name: read(element) for name, read in field_readers(cls, where)}


def _write_fields(obj: Any, root: etree._Element, version: str) -> None:
    for name, path, kind in obj.FIELDS:
        value = getattr(obj, name)
        if value is None or (isinstance(value, list) and not value):
            continue
        since = getattr(obj, "SINCE", {})
        if name in since and _version_key(version) < _version_key(since[name]):
            continue
        segments, attribute = _parse_path(path)
        if _is_group(kind):
            _put_many(root, segments, None, value, lambda node, part: _write_fields(part, node, version))
        elif isinstance(value, list):
            _put_many(root, segments, attribute, [_to_text(v, kind) for v in value], _set_text(attribute))
        else:
            _put_one(root, segments, attribute, _to_text(value, kind))


def _child(parent: etree._Element, segment: _Segment, *, new: bool = False) -> etree._Element:
    last: etree._Element | None = parent[-1] if len(parent) else None
    if not new and last is not None and last.tag == q(segment.tag):
        return last
    child: etree._Element = etree.SubElement(parent, q(segment.tag))
    for attr_name, attr_value in segment.fixed_attrs:
        child.set(attr_name, attr_value)
    return child


def _set_text(attribute: str | None) -> Callable[[etree._Element, str], None]:
    def put(node: etree._Element, text: str) -> None:
        if attribute:
            node.set(attribute, text)
        else:
            node.text = text

    return put


def _put_one(root: etree._Element, segments: list[_Segment], attribute: str | None, text: str) -> None:
    node = root
    for segment in segments:
        node = _child(node, segment)
    _set_text(attribute)(node, text)


def _put_many(
    root: etree._Element,
    segments: list[_Segment],
    attribute: str | None,
    items: list[Any],
    fill: Callable[[etree._Element, Any], None],
) -> None:
    split = next(i for i, s in enumerate(segments) if s.repeats)
    parent = root
    for segment in segments[:split]:
        parent = _child(parent, segment)
    for item in items:
        node = _child(parent, segments[split], new=True)
        for segment in segments[split + 1 :]:
            node = _child(node, segment)
        fill(node, item)


class SifRecord:
    """Base of every typed SIF object; subclasses are dataclasses with FIELDS."""

    OBJECT_NAME: ClassVar[str]
    # (field name, path, kind): a Kind, or a group class (ScheduleInfo) read and written with its own FIELDS.
    FIELDS: ClassVar[tuple[tuple[str, str, Kind | type[Any]], ...]]
    # Fields added after SIF 2.0r1: field name -> first version that has it.
    SINCE: ClassVar[dict[str, str]] = {}
    extended_elements: dict[str, str]

    # --- XML out -------------------------------------------------------------------
    def to_xml(self, version: str = "2.4") -> etree._Element:
        """The object as an element; fields the target SIF version lacks are left out."""
        root = etree.Element(q(self.OBJECT_NAME), nsmap={None: SIF_NS})
        _write_fields(self, root, version)
        if self.extended_elements:
            holder = etree.SubElement(root, q("SIF_ExtendedElements"))
            for ext_name, ext_value in self.extended_elements.items():
                item = etree.SubElement(holder, q("SIF_ExtendedElement"), Name=ext_name)
                item.text = str(ext_value)
        return root

    def to_bytes(self, version: str = "2.4") -> bytes:
        return etree.tostring(self.to_xml(version), encoding="UTF-8")

    # --- XML in --------------------------------------------------------------------
    @classmethod
    def from_xml(cls, element: etree._Element) -> Self:
        if element.tag != q(cls.OBJECT_NAME):
            raise SifXmlError(f"expected {cls.OBJECT_NAME}, got {_tag_text(element.tag)}")
        values = _read_fields(cls, element, cls.OBJECT_NAME)
        extended: dict[str, str] = {}
        holder = element.find(q("SIF_ExtendedElements"))
        if holder is not None:
            for item in holder.findall(q("SIF_ExtendedElement")):
                extended[item.get("Name", "")] = "".join(item.itertext()).strip()
        make: Callable[..., Self] = cls  # every record type is a dataclass taking its fields as keywords
        return make(**values, extended_elements=extended)

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        from .safexml import new_parser

        try:
            return cls.from_xml(etree.fromstring(data, new_parser()))
        except etree.XMLSyntaxError as exc:
            raise SifXmlError(f"malformed XML: {exc}") from exc

    @property
    def dcid(self) -> int | None:
        """PowerSchool DCID from the agent.cfg mapping (extended element "DCID"), if present."""
        raw = self.extended_elements.get("DCID")
        text = (raw or "").strip()
        return int(text) if text.isascii() and text.isdigit() else None  # ("¹".isdigit(), but int("¹") fails)

    def changed_fields(self) -> dict[str, Any]:
        """The fields that are set (what a partial Change object carries)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if getattr(self, f.name) not in (None, [], {})
        }


def _ext() -> dict[str, str]:
    return field(default_factory=dict)


@dataclass
class LEAInfo(SifRecord):
    OBJECT_NAME: ClassVar[str] = "LEAInfo"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("local_id", "LocalId", "str"),
        ("state_province_id", "StateProvinceId", "str"),
        ("name", "LEAName", "str"),
        ("url", "LEAURL", "str"),
    )
    ref_id: str | None = None
    local_id: str | None = None
    state_province_id: str | None = None
    name: str | None = None
    url: str | None = None
    extended_elements: dict[str, str] = _ext()


@dataclass
class SchoolInfo(SifRecord):
    OBJECT_NAME: ClassVar[str] = "SchoolInfo"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("local_id", "LocalId", "str"),
        ("state_province_id", "StateProvinceId", "str"),
        ("name", "SchoolName", "str"),
        ("lea_ref_id", "LEAInfoRefId", "str"),
        ("grade_levels", "GradeLevels/GradeLevel*/Code", "str"),
    )
    ref_id: str | None = None
    local_id: str | None = None
    state_province_id: str | None = None
    name: str | None = None
    lea_ref_id: str | None = None
    grade_levels: list[str] = field(default_factory=list)
    extended_elements: dict[str, str] = _ext()


@dataclass
class TermInfo(SifRecord):
    OBJECT_NAME: ClassVar[str] = "TermInfo"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("school_ref_id", "@SchoolInfoRefId", "str"),
        ("school_year", "@SchoolYear", "int"),
        ("start_date", "StartDate", "date"),
        ("end_date", "EndDate", "date"),
        ("description", "Description", "str"),
        ("term_code", "TermCode", "str"),
    )
    ref_id: str | None = None
    school_ref_id: str | None = None
    school_year: int | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    description: str | None = None
    term_code: str | None = None
    extended_elements: dict[str, str] = _ext()


@dataclass
class SchoolCourseInfo(SifRecord):
    OBJECT_NAME: ClassVar[str] = "SchoolCourseInfo"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("school_ref_id", "@SchoolInfoRefId", "str"),
        ("school_year", "@SchoolYear", "int"),
        ("course_code", "CourseCode", "str"),
        ("state_course_code", "StateCourseCode", "str"),
        ("title", "CourseTitle", "str"),
        ("description", "Description", "str"),
        ("department", "Department", "str"),
    )
    ref_id: str | None = None
    school_ref_id: str | None = None
    school_year: int | None = None
    course_code: str | None = None
    state_course_code: str | None = None
    title: str | None = None
    description: str | None = None
    department: str | None = None
    extended_elements: dict[str, str] = _ext()


@dataclass
class ScheduleInfo:
    """One ScheduleInfo of a SectionInfo: a term and the teachers who teach the section in it.

    A PowerSchool section taught in two terms, or by different teachers in each, carries several.
    """

    FIELDS: ClassVar = (
        ("term_ref_id", "@TermInfoRefId", "str"),
        ("teacher_ref_ids", "TeacherList/StaffPersonalRefId*", "str"),
    )
    term_ref_id: str | None = None
    teacher_ref_ids: list[str] = field(default_factory=list)

    @classmethod
    def from_element(cls, element: etree._Element, where: str) -> ScheduleInfo:
        return cls(**_read_fields(cls, element, where))


@dataclass
class SectionInfo(SifRecord):
    """A section with every ScheduleInfo it carries (term + teachers), in document order."""

    OBJECT_NAME: ClassVar[str] = "SectionInfo"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("course_ref_id", "@SchoolCourseInfoRefId", "str"),
        ("school_year", "@SchoolYear", "int"),
        ("local_id", "LocalId", "str"),
        ("description", "Description", "str"),
        ("schedules", "ScheduleInfoList/ScheduleInfo*", ScheduleInfo),
        ("course_section_code", "CourseSectionCode", "str"),
        ("section_code", "SectionCode", "str"),
    )
    SINCE: ClassVar = {"course_section_code": "2.1", "section_code": "2.1"}
    ref_id: str | None = None
    course_ref_id: str | None = None
    school_year: int | None = None
    local_id: str | None = None
    description: str | None = None
    schedules: list[ScheduleInfo] = field(default_factory=list)
    course_section_code: str | None = None
    section_code: str | None = None
    extended_elements: dict[str, str] = _ext()

    @property
    def term_ref_id(self) -> str | None:
        """The term of the first ScheduleInfo (the one term a single-term section has)."""
        return next(iter(self.term_ref_ids), None)

    @property
    def term_ref_ids(self) -> list[str]:
        """The terms of every ScheduleInfo, each once, in document order."""
        return _unique(s.term_ref_id for s in self.schedules if s.term_ref_id)

    @property
    def teacher_ref_ids(self) -> list[str]:
        """The teachers of every ScheduleInfo, each once, in document order."""
        return _unique(t for s in self.schedules for t in s.teacher_ref_ids)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# ---- e-mail addresses ----------------------------------------------------------------------------------
# PowerSchool fills the primary Email of a student from its family e-mail field, which schools often use for
# several addresses joined by commas ("mum@example.org, dad@example.org"). Canvas takes one address and
# one login per user, so one is chosen by a rule the district sees in the mapping and the diagnostics.
EMAIL_RULE = (
    "the first well-formed address of PowerSchool's primary Email; the list is split at commas, semicolons and spaces"
)
_EMAIL = re.compile(
    r"[^@\s,;<>()\[\]\\\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_EMAIL_SEPARATORS = re.compile(r"[,;\s]+")


@dataclass(frozen=True)
class EmailChoice:
    """The address chosen from a primary Email, and what was left: other addresses, and parts that are none."""

    chosen: str | None
    others: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()

    @property
    def several(self) -> bool:
        """True when the Email held more than the chosen address (the district should hear of it)."""
        return bool(self.others or self.invalid)

    def describe(self) -> str:
        if not self.several:
            return f"e-mail {self.chosen}" if self.chosen else "no e-mail"
        parts = [
            f"e-mail {self.chosen} chosen (first well-formed address)"
            if self.chosen
            else "no well-formed e-mail address"
        ]
        if self.others:
            parts.append("not used: " + ", ".join(self.others))
        if self.invalid:
            parts.append("not an address: " + ", ".join(self.invalid))
        return "; ".join(parts)


def choose_email(raw: str | None) -> EmailChoice:
    """Apply EMAIL_RULE to the text of a primary Email (None or empty: no address)."""
    if raw and _EMAIL.fullmatch(raw):  # one address and nothing else, as most are: the rule's answer, five times faster
        return EmailChoice(raw)
    # "<mum@example.org>" (an address in angle brackets, as mail programs write it) is the address inside.
    parts = [p.strip("<>") for p in _EMAIL_SEPARATORS.split(raw or "") if p.strip("<>")]
    valid = _unique(p for p in parts if _EMAIL.fullmatch(p))
    invalid = tuple(_unique(p for p in parts if not _EMAIL.fullmatch(p)))
    if not valid:
        return EmailChoice(None, (), invalid)
    return EmailChoice(valid[0], tuple(valid[1:]), invalid)


@dataclass
class StaffPersonal(SifRecord):
    OBJECT_NAME: ClassVar[str] = "StaffPersonal"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("local_id", "LocalId", "str"),
        ("state_province_id", "StateProvinceId", "str"),
        ("last_name", "Name[@Type=04]/LastName", "str"),
        ("first_name", "Name[@Type=04]/FirstName", "str"),
        ("middle_name", "Name[@Type=04]/MiddleName", "str"),
        ("title", "Title", "str"),
        ("email", "EmailList/Email[@Type=Primary]", "str"),
    )
    ref_id: str | None = None
    local_id: str | None = None
    state_province_id: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    title: str | None = None
    email: str | None = None  # as PowerSchool sent it; see email_choice
    extended_elements: dict[str, str] = _ext()

    @property
    def email_choice(self) -> EmailChoice:
        return choose_email(self.email)


@dataclass
class StaffAssignment(SifRecord):
    OBJECT_NAME: ClassVar[str] = "StaffAssignment"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("school_ref_id", "@SchoolInfoRefId", "str"),
        ("school_year", "@SchoolYear", "int"),
        ("staff_ref_id", "@StaffPersonalRefId", "str"),
        ("description", "Description", "str"),
        ("primary_assignment", "PrimaryAssignment", "str"),
        ("job_start_date", "JobStartDate", "date"),
        ("job_end_date", "JobEndDate", "date"),
        ("job_function_code", "JobFunction/Code", "str"),
    )
    ref_id: str | None = None
    school_ref_id: str | None = None
    school_year: int | None = None
    staff_ref_id: str | None = None
    description: str | None = None
    primary_assignment: str | None = None  # "Yes" | "No"
    job_start_date: dt.date | None = None
    job_end_date: dt.date | None = None
    job_function_code: str | None = None  # NCES 0568, e.g. "1000" instruction, "2400" school admin
    extended_elements: dict[str, str] = _ext()


@dataclass
class StudentPersonal(SifRecord):
    OBJECT_NAME: ClassVar[str] = "StudentPersonal"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("local_id", "LocalId", "str"),
        ("state_province_id", "StateProvinceId", "str"),
        ("last_name", "Name[@Type=04]/LastName", "str"),
        ("first_name", "Name[@Type=04]/FirstName", "str"),
        ("middle_name", "Name[@Type=04]/MiddleName", "str"),
        ("preferred_name", "Name[@Type=04]/PreferredName", "str"),
        ("gender", "Demographics/Gender", "str"),
        ("birth_date", "Demographics/BirthDate", "date"),
        ("email", "EmailList/Email[@Type=Primary]", "str"),
        ("projected_graduation_year", "ProjectedGraduationYear", "int"),
        ("school_local_id", "MostRecent/SchoolLocalId", "str"),
        ("grade_level", "MostRecent/GradeLevel/Code", "str"),
    )
    ref_id: str | None = None
    local_id: str | None = None  # PowerSchool student number ("PowerSchool ID")
    state_province_id: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    preferred_name: str | None = None
    gender: str | None = None
    birth_date: dt.date | None = None
    email: str | None = None  # as PowerSchool sent it, often several family addresses; see email_choice
    projected_graduation_year: int | None = None
    school_local_id: str | None = None
    grade_level: str | None = None
    extended_elements: dict[str, str] = _ext()

    @property
    def email_choice(self) -> EmailChoice:
        return choose_email(self.email)


@dataclass
class StudentSchoolEnrollment(SifRecord):
    OBJECT_NAME: ClassVar[str] = "StudentSchoolEnrollment"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("student_ref_id", "@StudentPersonalRefId", "str"),
        ("school_ref_id", "@SchoolInfoRefId", "str"),
        ("membership_type", "@MembershipType", "str"),
        ("time_frame", "@TimeFrame", "str"),
        ("school_year", "@SchoolYear", "int"),
        ("entry_date", "EntryDate", "date"),
        ("grade_level", "GradeLevel/Code", "str"),
        ("exit_date", "ExitDate", "date"),
    )
    ref_id: str | None = None
    student_ref_id: str | None = None
    school_ref_id: str | None = None
    membership_type: str | None = None  # Home | Concurrent | Summer
    time_frame: str | None = None  # Current | Historical | Future
    school_year: int | None = None
    entry_date: dt.date | None = None
    grade_level: str | None = None
    exit_date: dt.date | None = None
    extended_elements: dict[str, str] = _ext()


@dataclass
class StudentSectionEnrollment(SifRecord):
    OBJECT_NAME: ClassVar[str] = "StudentSectionEnrollment"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("student_ref_id", "@StudentPersonalRefId", "str"),
        ("section_ref_id", "@SectionInfoRefId", "str"),
        ("school_year", "@SchoolYear", "int"),
        ("entry_date", "EntryDate", "date"),
        ("exit_date", "ExitDate", "date"),
    )
    ref_id: str | None = None
    student_ref_id: str | None = None
    section_ref_id: str | None = None
    school_year: int | None = None
    entry_date: dt.date | None = None
    exit_date: dt.date | None = None
    extended_elements: dict[str, str] = _ext()


@dataclass
class GradingCategory(SifRecord):
    OBJECT_NAME: ClassVar[str] = "GradingCategory"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("section_ref_id", "@SectionInfoRefId", "str"),
        ("term_ref_id", "@TermInfoRefId", "str"),
        ("school_ref_id", "@SchoolInfoRefId", "str"),
        ("description", "Description", "str"),
    )
    ref_id: str | None = None
    section_ref_id: str | None = None
    term_ref_id: str | None = None
    school_ref_id: str | None = None
    description: str | None = None
    extended_elements: dict[str, str] = _ext()


@dataclass
class GradingAssignment(SifRecord):
    OBJECT_NAME: ClassVar[str] = "GradingAssignment"
    FIELDS: ClassVar = (
        ("ref_id", "@RefId", "str"),
        ("section_ref_id", "@SectionInfoRefId", "str"),
        ("term_ref_id", "@TermInfoRefId", "str"),
        ("school_ref_id", "@SchoolInfoRefId", "str"),
        ("category_ref_id", "@GradingCategoryRefId", "str"),
        ("description", "Description", "str"),
        ("points_possible", "PointsPossible", "int"),
        ("create_date", "CreateDate", "date"),
        ("due_date", "DueDate", "date"),
        ("weight", "Weight", "decimal"),
    )
    ref_id: str | None = None
    section_ref_id: str | None = None
    term_ref_id: str | None = None
    school_ref_id: str | None = None
    category_ref_id: str | None = None
    description: str | None = None
    points_possible: int | None = None  # xs:unsignedInt: whole points only
    create_date: dt.date | None = None
    due_date: dt.date | None = None
    weight: Decimal | None = None
    extended_elements: dict[str, str] = _ext()


@dataclass
class GradingAssignmentScore(SifRecord):
    """No RefId in SIF 2.x: identified by student + assignment."""

    OBJECT_NAME: ClassVar[str] = "GradingAssignmentScore"
    FIELDS: ClassVar = (
        ("student_ref_id", "@StudentPersonalRefId", "str"),
        ("section_ref_id", "@SectionInfoRefId", "str"),
        ("school_ref_id", "@SchoolInfoRefId", "str"),
        ("assignment_ref_id", "@GradingAssignmentRefId", "str"),
        ("score_points", "ScorePoints", "int"),
        ("score_percent", "ScorePercent", "decimal"),
        ("score_letter", "ScoreLetter", "str"),
        ("score_description", "ScoreDescription", "str"),
    )
    student_ref_id: str | None = None
    section_ref_id: str | None = None
    school_ref_id: str | None = None
    assignment_ref_id: str | None = None
    score_points: int | None = None  # xs:unsignedInt: fractional Canvas scores go as score_percent
    score_percent: Decimal | None = None
    score_letter: str | None = None
    score_description: str | None = None
    extended_elements: dict[str, str] = _ext()


@dataclass
class StudentDailyAttendance(SifRecord):
    """Not needed by the conversion; typed so state-reporting (SMP) events are recognisable."""

    OBJECT_NAME: ClassVar[str] = "StudentDailyAttendance"
    FIELDS: ClassVar = (
        ("student_ref_id", "@StudentPersonalRefId", "str"),
        ("school_ref_id", "@SchoolInfoRefId", "str"),
        ("date", "@Date", "date"),
        ("school_year", "@SchoolYear", "int"),
    )
    student_ref_id: str | None = None
    school_ref_id: str | None = None
    date: dt.date | None = None
    school_year: int | None = None
    extended_elements: dict[str, str] = _ext()


RECORD_TYPES: dict[str, type[SifRecord]] = {
    cls.OBJECT_NAME: cls
    for cls in (
        LEAInfo,
        SchoolInfo,
        TermInfo,
        SchoolCourseInfo,
        SectionInfo,
        StaffPersonal,
        StaffAssignment,
        StudentPersonal,
        StudentSchoolEnrollment,
        StudentSectionEnrollment,
        GradingCategory,
        GradingAssignment,
        GradingAssignmentScore,
        StudentDailyAttendance,
    )
}


@dataclass
class UnknownRecord:
    """An object this package has no type for (e.g. state-reporting extras): kept, never dropped."""

    object_name: str
    xml: bytes
    ref_id: str | None = None


@dataclass(frozen=True)
class UnreadableRecord:
    """An object of a delivered packet that could not be typed (a value not of its schema type, say): kept, with
    its XML as delivered and the error naming the element, so the packet's other objects are not lost with it."""

    object_name: str
    xml: bytes
    ref_id: str | None
    error: str


def record_from_xml(element: etree._Element) -> SifRecord | UnknownRecord:
    name = etree.QName(element).localname
    if etree.QName(element).namespace != SIF_NS:
        raise SifXmlError(f"object {_tag_text(element.tag)} is not in the SIF namespace")
    record_type = RECORD_TYPES.get(name)
    if record_type is None:
        return UnknownRecord(name, etree.tostring(element), element.get("RefId"))
    return record_type.from_xml(element)
