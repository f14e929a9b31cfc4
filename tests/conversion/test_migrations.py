"""Migration 0004 keeps the records of snapshots stored before it: their dicts come back as the same XML."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from conversion.services.sifdata import data_of, record_data
from sifclient.powerschool import District, DistrictSpec

BEFORE = [("conversion", "0003_diagnostics_gpb_notifications")]
AFTER = [("conversion", "0004_sifrecord_xml")]


@pytest.mark.django_db(transaction=True)
def test_records_stored_as_dicts_become_their_xml():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Conversion, District_, Snapshot, SifRecord = (
        apps.get_model("conversion", n) for n in ("Conversion", "District", "Snapshot", "SifRecord")
    )
    district = District_.objects.create(name="Old", slug="old")
    snapshot = Snapshot.objects.create(conversion=Conversion.objects.create(district=district, school_year=2027))
    generated = District(DistrictSpec(students=12, schools=2, school_year=2027, seed=3))
    records = [
        record for name in ("StudentPersonal", "SectionInfo", "TermInfo") for _, record in generated.iter_records(name)
    ]
    for n, record in enumerate(records):
        SifRecord.objects.create(
            snapshot=snapshot,
            object_name=record.OBJECT_NAME,
            ref_id=record.ref_id,
            data=record_data(record),
            digest=f"old{n}",
        )

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
    xml = migration._xml_of(
        "SectionInfo",
        {"ref_id": "A" * 32, "school_year": 2026, "term_ref_id": "B" * 32, "teacher_ref_ids": ["C" * 32, "D" * 32]},
    )
    section = SectionInfo.from_bytes(xml.encode())
    assert (section.ref_id, section.school_year) == ("A" * 32, 2026)
    assert section.schedules == [ScheduleInfo("B" * 32, ["C" * 32, "D" * 32])]


@pytest.mark.django_db(transaction=True)
def test_a_sync_in_flight_keeps_its_submission_state_on_its_run():
    """Migration 0011: the upload's start and name move from the job's detail to the SyncRun (one place), so a rerun
    after the upgrade still recognises its upload instead of sending it again."""
    try:
        before, after = [("conversion", "0010_canvas_product")], [("conversion", "0011_sync_safety_net")]
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        apps = executor.loader.project_state(before).apps
        district = apps.get_model("conversion", "District").objects.create(name="Old", slug="old")
        conversion = apps.get_model("conversion", "Conversion").objects.create(district=district, school_year=2027)
        Job, SyncRun = apps.get_model("conversion", "Job"), apps.get_model("conversion", "SyncRun")
        detail = {"submitting_at": "2026-06-01T06:00:00+00:00", "file_name": "sifconvert-sync-job1.zip"}
        in_flight = SyncRun.objects.create(
            conversion=conversion,
            trigger="manual",
            state="running",
            job=Job.objects.create(conversion=conversion, kind="sync", detail=detail),
        )
        done = SyncRun.objects.create(
            conversion=conversion,
            trigger="manual",
            state="imported",
            canvas_import_id=7,
            job=Job.objects.create(
                conversion=conversion, kind="sync", state="succeeded", detail={**detail, "import_id": 7}
            ),
        )

        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        runs = executor.loader.project_state(after).apps.get_model("conversion", "SyncRun").objects
        moved = runs.get(pk=in_flight.pk)
        assert moved.submitting_at.isoformat() == "2026-06-01T06:00:00+00:00"
        assert moved.upload_name == "sifconvert-sync-job1.zip" and moved.canvas_import_id is None
        assert runs.get(pk=done.pk).submitting_at is None  # a finished run is left as it was
    finally:  # back to the latest for the tests that follow, whatever happened
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
