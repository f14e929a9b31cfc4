"""The ingest's fast path gives exactly the rows the typed path gave, and stores each object once."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from sifclient.errors import SifXmlError
from sifclient.powerschool import PUBLISHED_OBJECTS, District, DistrictSpec
from sifclient.records import RECORD_TYPES, record_from_xml
from sifclient.safexml import SIF_NS, q
from sifclient.zis import iter_response_packets

from conversion.models import SifRecord, Snapshot
from conversion.services.sifdata import iter_payload_elements, row_for, row_values, store_rows

SPEC = DistrictSpec(students=40, schools=2, school_year=2027, seed=5, previous_school_years=True,
                    excluded_schools=True, smp_on=True)


def typed_row(element, key):
    return row_for(Snapshot(pk=1), record_from_xml(element), key)


def assert_same(element, key="x#1#0"):
    fast = row_values(element, key)
    slow = typed_row(element, key)
    assert (fast.object_name, fast.ref_id, fast.local_id, fast.dcid, fast.school_ref_id, fast.school_year,
            fast.data, fast.digest) == (slow.object_name, slow.ref_id, slow.local_id, slow.dcid, slow.school_ref_id,
                                        slow.school_year, slow.data, slow.digest)


@pytest.mark.parametrize("object_name", sorted(set(PUBLISHED_OBJECTS) & set(RECORD_TYPES)))
def test_every_generated_object_gives_the_typed_row(object_name):
    district = District(SPEC)
    for _, record in district.iter_records(object_name):
        assert_same(record.to_xml())


def test_packet_walk_matches_the_typed_stream():
    from sifclient.streaming import iter_payload_records

    for packet in iter_response_packets(SPEC, "StudentPersonal", 64 * 1024):
        fast = [row_values(e, f"k{i}").digest for i, e in enumerate(iter_payload_elements(packet.data, max_bytes=1 << 22))]
        slow = [row_for(Snapshot(pk=1), r, f"k{i}").digest for i, r in enumerate(iter_payload_records(packet.data))]
        assert fast == slow and fast


texts = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(sorted(RECORD_TYPES)), st.lists(st.tuples(st.integers(0, 40), texts), max_size=8),
       st.dictionaries(st.text("ABCDEFXYZ", min_size=1, max_size=5), texts, max_size=3))
def test_arbitrary_object_content_gives_the_typed_row_or_the_same_refusal(object_name, edits, extended):
    """Fields filled with arbitrary text (bad ints and dates included): same row, or both refuse."""
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
    try:
        slow = typed_row(element, "k")
    except SifXmlError as exc:
        with pytest.raises(SifXmlError) as fast_error:
            row_values(element, "k")
        assert str(fast_error.value) == str(exc)
        return
    assert_same(element, "k")
    assert slow.object_name == object_name


@pytest.mark.django_db
def test_a_repeated_refid_is_stored_once(conversion):
    snapshot = Snapshot.objects.create(conversion=conversion)
    element = next(District(SPEC).iter_records("StudentPersonal"))[1].to_xml()
    row = row_values(element, "k")
    assert store_rows(snapshot, [row]) == 1
    # A second packet carrying the same object: the COPY conflicts, the staging path skips it.
    other = row_values(next(iter(list(District(SPEC).iter_records("StudentPersonal"))[1:2]))[1].to_xml(), "k2")
    assert store_rows(snapshot, [row, other]) == 2
    assert SifRecord.objects.filter(snapshot=snapshot).count() == 2
    stored = SifRecord.objects.get(snapshot=snapshot, ref_id=row.ref_id)
    assert stored.data == row.data and stored.digest == row.digest
