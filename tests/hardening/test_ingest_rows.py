"""The ingest stores each object's XML with the keys the typed record gives, reads back the typed record's
fields, and stores each object once."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from conversion.models import SifRecord, Snapshot
from conversion.services.sif_keys import iter_payload_elements, row_values
from conversion.services.sif_store import store_rows
from conversion.services.sifdata import data_of, record_data
from sifclient.errors import SifXmlError
from sifclient.powerschool import PUBLISHED_OBJECTS, District, DistrictSpec
from sifclient.records import RECORD_TYPES, record_from_xml
from sifclient.safexml import SIF_NS, q
from sifclient.zis import iter_response_packets

SPEC = DistrictSpec(
    students=40, schools=2, school_year=2027, seed=5, previous_school_years=True, excluded_schools=True, smp_on=True
)


def typed_keys(record, key):
    """What the typed path says the row's keys are: (object, RefId, LocalId, DCID, school, year, fields)."""
    data = record_data(record)
    extended = data.get("extended_elements") or {}
    year = data.get("school_year")
    return (
        record.OBJECT_NAME,
        data.get("ref_id") or f"{record.OBJECT_NAME}#{key}#0",
        str(data.get("local_id") or "")[:64],
        str(extended.get("DCID") or "")[:32],
        str(data.get("school_ref_id") or "")[:64],
        year if isinstance(year, int) else None,
        data,
    )


def assert_same(element, key="x#1#0"):
    row = row_values(element, key, 0)
    stored = (row.object_name, row.ref_id, row.local_id, row.dcid, row.school_ref_id, row.school_year, data_of(row.xml))
    assert stored == typed_keys(record_from_xml(element), key)
    assert (
        row.extended_names.split("\t") == list(record_data(record_from_xml(element))["extended_elements"])
        or not row.extended_names
    )


@pytest.mark.parametrize("object_name", sorted(set(PUBLISHED_OBJECTS) & set(RECORD_TYPES)))
def test_every_generated_object_gives_the_typed_row(object_name):
    district = District(SPEC)
    for _, record in district.iter_records(object_name):
        assert_same(record.to_xml())


def test_packet_walk_matches_the_typed_stream():
    from sifclient.streaming import iter_payload_records

    for packet in iter_response_packets(SPEC, "StudentPersonal", 64 * 1024):
        fast = [row_values(e, "k", i) for i, e in enumerate(iter_payload_elements(packet.data, max_bytes=1 << 22))]
        slow = [typed_keys(r, "k") for i, r in enumerate(iter_payload_records(packet.data))]
        assert [
            (r.object_name, r.ref_id, r.local_id, r.dcid, r.school_ref_id, r.school_year, data_of(r.xml)) for r in fast
        ] == slow and fast
        assert len({r.digest for r in fast}) == len(fast)  # one digest per distinct object


texts = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from(sorted(RECORD_TYPES)),
    st.lists(st.tuples(st.integers(0, 40), texts), max_size=8),
    st.dictionaries(st.text("ABCDEFXYZ", min_size=1, max_size=5), texts, max_size=3),
)
def test_arbitrary_object_content_gives_the_typed_row_or_the_same_refusal(object_name, edits, extended):
    """Fields filled with arbitrary text (bad ints and dates included): the object is stored, and reading it
    back gives the typed record's fields, or the same refusal the typed record gives."""
    record_type = RECORD_TYPES[object_name]
    element = etree.Element(q(object_name), nsmap={None: SIF_NS}, RefId="A" * 32)
    paths = [path for _, path, _ in record_type.FIELDS if path != "@RefId"]
    for index, text in edits:
        if not paths:
            break
        node = element
        *steps, last = paths[index % len(paths)].split("/")
        for step in steps:
            node = etree.SubElement(node, q(step.split("[")[0].rstrip("*")))
        if last.startswith("@"):
            node.set(last[1:], text.replace("\x00", ""))
        else:
            etree.SubElement(node, q(last.split("[")[0].rstrip("*"))).text = text
    if extended:
        holder = etree.SubElement(element, q("SIF_ExtendedElements"))
        for name, value in extended.items():
            etree.SubElement(holder, q("SIF_ExtendedElement"), Name=name).text = value
    element = etree.fromstring(etree.tostring(element))  # as it would arrive: an empty text is no text
    row = row_values(element, "k", 0)  # storing never types the fields, so it never refuses them
    assert row.object_name == object_name and row.ref_id == "A" * 32
    try:
        record = record_from_xml(element)
    except SifXmlError as exc:
        with pytest.raises(SifXmlError) as fast_error:
            data_of(row.xml)
        assert str(fast_error.value) == str(exc)
        return
    assert (row.local_id, row.dcid, row.school_ref_id, data_of(row.xml)) == typed_keys(record, "k")[2:5] + (
        typed_keys(record, "k")[6],
    )


@pytest.mark.django_db
def test_a_repeated_refid_is_stored_once(conversion):
    snapshot = Snapshot.objects.create(conversion=conversion)
    element = next(District(SPEC).iter_records("StudentPersonal"))[1].to_xml()
    row = row_values(element, "k", 0)
    assert store_rows(snapshot, [row]) == 1
    # A second packet carrying the same object: the COPY conflicts, the staging path skips it.
    other = row_values(next(iter(list(District(SPEC).iter_records("StudentPersonal"))[1:2]))[1].to_xml(), "k2", 0)
    assert store_rows(snapshot, [row, other]) == 2
    assert SifRecord.objects.filter(snapshot=snapshot).count() == 2
    stored = SifRecord.objects.get(snapshot=snapshot, ref_id=row.ref_id)
    assert stored.xml == row.xml and stored.digest == row.digest
    assert data_of(stored.xml)["local_id"] == row.local_id


# ---- payload_rows: one row per object of a packet, in order, whatever else the packet holds ----


def _container(root):
    return next(root.iter(q("SIF_ObjectData")))


def _edited(data: bytes, edit) -> bytes:
    root = etree.fromstring(data)
    edit(_container(root))
    return etree.tostring(root)


def _assert_payload_rows_match(data: bytes) -> list:
    from conversion.services.sif_keys import payload_rows

    one_by_one = [row_values(e, "m", i) for i, e in enumerate(iter_payload_elements(data, max_bytes=1 << 22))]
    at_once = list(payload_rows(data, max_bytes=1 << 22, arrived_in="m"))
    assert at_once == one_by_one
    return at_once


def _drop_first(tag):
    def edit(container):
        node = container[1].find(q(tag))
        node.getparent().remove(node)

    return edit


def _second_holder(container):
    holder = container[0].find(q("SIF_ExtendedElements"))
    extra = etree.SubElement(container[0], q("SIF_ExtendedElements"))
    item = etree.SubElement(extra, q("SIF_ExtendedElement"), Name="DCID")
    item.text = "999"
    container[0].remove(holder)
    container[0].insert(0, holder)  # two holders, and the last child is not the first


def _dcid_with_child_and_spaces(container):
    for item in container[2].iter(q("SIF_ExtendedElement")):
        if item.get("Name") == "DCID":
            item.text = "  12"
            etree.SubElement(item, q("Part")).tail = "34  "


def _comments_and_blank_text(container):
    container.insert(1, etree.Comment("between objects"))
    container[0].tail = "\n  "
    local = container[3].find(q("LocalId"))
    local.text = "  7 7  "


def _mixed_kinds(container):
    container.append(
        etree.fromstring(
            f'<SchoolInfo xmlns="{SIF_NS}" RefId="{"B" * 32}">'
            "<LocalId>5</LocalId><SchoolName>X</SchoolName></SchoolInfo>"
        )
    )


def _no_refid_and_bad_year(container):
    del container[1].attrib["RefId"]
    container[2].set("SchoolYear", "20x7")


def _one_more_extended(container):
    holder = container[1].find(q("SIF_ExtendedElements"))
    etree.SubElement(holder, q("SIF_ExtendedElement"), Name="Extra").text = "x"


def _dcid_renamed_in_one(container):
    for item in container[1].iter(q("SIF_ExtendedElement")):
        item.set("Name", "NotDCID")


def _unnamed_extended(container):
    holder = container[0].find(q("SIF_ExtendedElements"))
    del holder[0].attrib["Name"]


def _emptied_holders(container):
    for holder in container.iter(q("SIF_ExtendedElements")):
        for item in list(holder):
            holder.remove(item)


@pytest.mark.parametrize(
    "object_name, edit",
    [
        ("StudentPersonal", _one_more_extended),
        ("StudentPersonal", _dcid_renamed_in_one),
        ("StudentPersonal", _unnamed_extended),
        ("StudentPersonal", _emptied_holders),
        ("StudentPersonal", _drop_first("LocalId")),
        ("StudentPersonal", _drop_first("SIF_ExtendedElements")),
        ("StudentPersonal", _second_holder),
        ("StudentPersonal", _dcid_with_child_and_spaces),
        ("StudentPersonal", _comments_and_blank_text),
        ("StudentPersonal", _mixed_kinds),
        ("StudentSchoolEnrollment", _no_refid_and_bad_year),
        ("StudentSchoolEnrollment", _drop_first("SIF_ExtendedElements")),
    ],
)
def test_odd_packets_give_the_rows_read_object_by_object(object_name, edit):
    packet = next(iter(iter_response_packets(SPEC, object_name, 64 * 1024)))
    rows = _assert_payload_rows_match(_edited(packet.data, edit))
    assert len(rows) >= 3
