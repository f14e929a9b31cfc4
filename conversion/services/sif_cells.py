"""The few values the nightly CSV build reads of the objects a district has by the hundred thousand, kept
beside each stored object's XML (SifRecord.cells) when it is stored.

Students, their school enrollments and their section enrollments are most of a pull (about six objects per
student). The CSV build once parsed every one of them again from its XML each night: about 40 µs a row, and a
dict of every person in memory. Reading these values while the object is parsed anyway at ingest costs a few
µs; the build then reads them with PostgreSQL joining the tables (services.roster_tables), at a fraction of the
cost and in flat memory.

A row's cells are one text: FORMAT, then the values of its object's CELLS fields, separated by U+001F. XML 1.0
cannot hold that character, so no value contains it. Dates are ISO text and years digits, typed at ingest as
the roster would type them (sifclient.reader.typed_value); a value that does not hold its type, or an object
kind without CELLS, stores no cells (an empty text), and a build over such rows reads the XML instead, failing there
with the record named, as before. Bump FORMAT when a layout or a derived value (the chosen e-mail) changes, with
a migration that empties the cells of the older format (`UPDATE ... SET cells = ''`): the build finds the rows
it cannot read through their cells by an index of the empty ones (SifRecord.Meta), and reads their XML.
"""

from __future__ import annotations

import functools

from lxml import etree

from sifclient.errors import SifXmlError
from sifclient.reader import read_texts, typed_value
from sifclient.records import choose_email

FORMAT = "1"
SEPARATOR = "\x1f"

_PERSON = ("first_name", "last_name", "email", "state_province_id")
# (fields read from the XML, then values derived from them): the layout of each kind's cells after FORMAT.
CELLS: dict[str, tuple[str, ...]] = {
    "StudentPersonal": (*_PERSON, "chosen_email"),
    "StaffPersonal": (*_PERSON, "chosen_email"),
    "StudentSchoolEnrollment": ("student_ref_id", "exit_date"),
    "StudentSectionEnrollment": ("student_ref_id", "section_ref_id", "entry_date", "exit_date"),
}
# (The school and the school year are the row's own keys, SifRecord.school_ref_id and school_year: sif_keys reads
# them for every object, and stores no cells for an object whose SchoolYear it could not read, so that the roster
# reads that object's XML and names the value.)
_READ = {name: tuple(f for f in fields if f != "chosen_email") for name, fields in CELLS.items()}
_TYPED = {"entry_date": "date", "exit_date": "date"}


def position(object_name: str, field: str) -> int:
    """1-based position of a field in the cells text (split_part's), FORMAT being position 1."""
    return CELLS[object_name].index(field) + 2


@functools.lru_cache(maxsize=4096)  # a pull holds a few hundred distinct dates
def _typed(object_name: str, field: str, text: str) -> str:
    return str(typed_value(object_name, field, text, json=True))


def cells_of(element: etree._Element, object_name: str) -> str:
    """The cells text of one object element, or "" (no layout for its kind, or a value not of its type)."""
    fields = _READ.get(object_name)
    if fields is None:
        return ""
    texts = read_texts(element, object_name, fields)
    values = []
    try:
        for field, text in zip(fields, texts, strict=True):
            if not text:
                values.append("")
            elif field in _TYPED:
                values.append(_typed(object_name, field, text))
            else:
                values.append(text)
    except SifXmlError:
        return ""
    if object_name in ("StudentPersonal", "StaffPersonal"):
        values.append(choose_email(texts[2]).chosen or "")
    return SEPARATOR.join((FORMAT, *values))


def split(cells: str) -> list[str]:
    """The values of a cells text, FORMAT first."""
    return cells.split(SEPARATOR)
