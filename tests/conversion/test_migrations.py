"""Migration 0004 keeps the records of snapshots stored before it: their dicts come back as the same XML."""
from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from sifclient.powerschool import District, DistrictSpec

from conversion.services.sifdata import data_of, record_data

BEFORE = [("conversion", "0003_diagnostics_gpb_notifications")]
AFTER = [("conversion", "0004_sifrecord_xml")]


@pytest.mark.django_db(transaction=True)
def test_records_stored_as_dicts_become_their_xml():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Conversion, District_, Snapshot, SifRecord = (apps.get_model("conversion", n) for n in
                                                  ("Conversion", "District", "Snapshot", "SifRecord"))
    district = District_.objects.create(name="Old", slug="old")
    snapshot = Snapshot.objects.create(conversion=Conversion.objects.create(district=district, school_year=2027))
    generated = District(DistrictSpec(students=12, schools=2, school_year=2027, seed=3))
    records = [record for name in ("StudentPersonal", "SectionInfo", "TermInfo")
               for _, record in generated.iter_records(name)]
    for n, record in enumerate(records):
        SifRecord.objects.create(snapshot=snapshot, object_name=record.OBJECT_NAME, ref_id=record.ref_id,
                                 data=record_data(record), digest=f"old{n}")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    apps = executor.loader.project_state(AFTER).apps
    stored = {r.ref_id: r for r in apps.get_model("conversion", "SifRecord").objects.all()}
    assert len(stored) == len(records)
    for record in records:
        row = stored[record.ref_id]
        assert data_of(row.xml) == record_data(record)  # nothing lost, dates included
        assert row.extended_names.split("\t") == list(record.extended_elements)
        assert len(row.digest) == 32 and not row.digest.startswith("old")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest for the tests that follow


def test_a_section_stored_with_its_one_schedule_becomes_the_xml_of_that_schedule():
    """Rows stored before SectionInfo kept every ScheduleInfo held term_ref_id and teacher_ref_ids."""
    import importlib

    from sifclient.records import ScheduleInfo, SectionInfo

    migration = importlib.import_module("conversion.migrations.0004_sifrecord_xml")
    xml = migration._xml_of("SectionInfo", {"ref_id": "A" * 32, "school_year": 2026, "term_ref_id": "B" * 32,
                                            "teacher_ref_ids": ["C" * 32, "D" * 32]})
    section = SectionInfo.from_bytes(xml.encode())
    assert (section.ref_id, section.school_year) == ("A" * 32, 2026)
    assert section.schedules == [ScheduleInfo("B" * 32, ["C" * 32, "D" * 32])]
