"""sifclient.reader reads a typed object's fields exactly as the typed record holds them, without building it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from lxml import etree

from sifclient.errors import SifXmlError
from sifclient.powerschool import PUBLISHED_OBJECTS, District, DistrictSpec
from sifclient.reader import object_name, plain, read_fields, record_values
from sifclient.records import RECORD_TYPES, GradingAssignment, ScheduleInfo, SectionInfo, record_from_xml
from sifclient.safexml import SIF_NS, q

SPEC = DistrictSpec(students=30, schools=2, school_year=2027, seed=11, previous_school_years=True)


@pytest.mark.parametrize("name", sorted(set(PUBLISHED_OBJECTS) & set(RECORD_TYPES)))
def test_every_generated_object_reads_as_its_typed_record(name):
    for _, record in District(SPEC).iter_records(name):
        element = etree.fromstring(record.to_bytes())
        typed = record_from_xml(element)
        assert read_fields(element) == record_values(typed)
        assert read_fields(element, json=True) == record_values(typed, json=True)


def test_values_are_typed_or_json_ready():
    element = GradingAssignment(
        ref_id="A" * 32, due_date=dt.date(2027, 1, 5), weight=Decimal("1.50"), points_possible=10
    ).to_xml()
    assert read_fields(element) == {
        "ref_id": "A" * 32,
        "points_possible": 10,
        "due_date": dt.date(2027, 1, 5),
        "weight": Decimal("1.50"),
        "extended_elements": {},
    }
    assert read_fields(element, json=True)["due_date"] == "2027-01-05"
    assert read_fields(element, json=True)["weight"] == "1.50"


def test_groups_are_dataclasses_or_dicts_of_their_set_fields():
    section = SectionInfo(ref_id="S" * 32, schedules=[ScheduleInfo("T" * 32, ["P" * 32]), ScheduleInfo("U" * 32)])
    element = section.to_xml()
    assert read_fields(element)["schedules"] == section.schedules
    assert read_fields(element, json=True)["schedules"] == [
        {"term_ref_id": "T" * 32, "teacher_ref_ids": ["P" * 32]},
        {"term_ref_id": "U" * 32},
    ]


def test_a_subset_reads_only_those_fields():
    _, record = next(District(SPEC).iter_records("StudentPersonal"))
    element = record.to_xml()
    assert read_fields(element, ("first_name", "last_name")) == {
        "first_name": record.first_name,
        "last_name": record.last_name,
    }
    assert read_fields(element, ["extended_elements"]) == {"extended_elements": record.extended_elements}


def test_a_bad_value_is_refused_as_the_typed_record_refuses_it():
    element = GradingAssignment(ref_id="A" * 32).to_xml()
    etree.SubElement(element, q("DueDate")).text = "08/26/2009"
    with pytest.raises(SifXmlError) as typed:
        record_from_xml(element)
    with pytest.raises(SifXmlError) as read:
        read_fields(element, json=True)
    assert str(read.value) == str(typed.value)
    assert read_fields(element, ("ref_id",)) == {"ref_id": "A" * 32}  # the bad field not read, not refused


def test_objects_it_cannot_type_are_refused_by_name():
    with pytest.raises(SifXmlError, match="not in the SIF namespace"):
        read_fields(etree.fromstring("<StudentPersonal/>"))
    with pytest.raises(SifXmlError, match="no typed record for object Mystery"):
        read_fields(etree.Element(q("Mystery"), nsmap={None: SIF_NS}))
    assert object_name(etree.Element(q("Mystery"))) == "Mystery"


def test_plain_leaves_plain_values_alone():
    assert plain({"a": [dt.date(2027, 2, 1), Decimal("2"), 3, "x"]}) == {"a": ["2027-02-01", "2", 3, "x"]}


# ---- read_texts: the fields' text in one walk, as read_fields reads it before typing -------------------------------
_SIF = "http://www.sifinfo.org/infrastructure/2.x"


def _person(body: str):
    from lxml import etree

    return etree.fromstring(f'<StudentPersonal xmlns="{_SIF}" RefId=" A1 ">{body}</StudentPersonal>')


@pytest.mark.parametrize(
    "body",
    [
        "<LocalId>1</LocalId><Name Type='04'><LastName> Lee </LastName><FirstName>Al</FirstName></Name>",
        # a name of another type first: the Type 04 one is read, wherever it is
        "<Name Type='02'><LastName>Alias</LastName></Name><Name Type='04'><FirstName>Real</FirstName></Name>",
        # no Type 04 name: the first name element is read, as the typed record does
        "<Name Type='02'><LastName>Only</LastName></Name><Name Type='05'><LastName>Second</LastName></Name>",
        "<EmailList><Email Type='Alternate1'>a@x.org</Email><Email Type='Primary'> p@x.org </Email></EmailList>",
        "<EmailList><Email Type='Alternate1'>a@x.org</Email></EmailList><StateProvinceId>  </StateProvinceId>",
        "<StateProvinceId>S1</StateProvinceId><!-- a comment --><?pi x?><StateProvinceId>S2</StateProvinceId>",
        "<Name Type='04'><LastName/><FirstName>F<!-- c -->G</FirstName></Name>",
        "",
    ],
)
def test_read_texts_reads_what_read_fields_reads(body):
    from sifclient.reader import read_fields, read_texts

    fields = ("ref_id", "first_name", "last_name", "email", "state_province_id")
    element = _person(body)
    typed = read_fields(element, fields)
    assert read_texts(element, "StudentPersonal", fields) == tuple(typed.get(f) for f in fields)
