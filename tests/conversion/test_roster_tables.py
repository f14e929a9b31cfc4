"""The CSV build reading students and their enrollments by PostgreSQL joins over the values stored at ingest
(services.roster_tables, services.sif_cells) writes exactly the package that reading every record's XML writes.

Each case stores a generated district into a snapshot as a pull does (sif_keys.row_values, sif_store.store_rows),
builds its package through the tables, then empties the stored cells (as in a snapshot pulled before they
existed) and builds it again from the XML: the two zips, counts, skipped users and planned logins are equal."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from conversion.jobs import JobFailed
from conversion.models import SifRecord, Snapshot
from conversion.services.roster import DCID, LEGACY, Policy, Roster
from conversion.services.sif_cells import CELLS, cells_of, split
from conversion.services.sif_keys import row_values
from conversion.services.sif_store import store_rows
from conversion.services.sis_csv import build_package, planned_logins
from conversion.services.zis import PULL_OBJECTS
from sifclient.powerschool import District as SimulatedDistrict
from sifclient.powerschool import DistrictSpec
from sifclient.reader import read_fields

pytestmark = pytest.mark.django_db

BASE = DistrictSpec(students=240, schools=3, school_year=2027, seed=5, departed_students=4, co_teachers=True)
MID_YEAR, AFTER_YEAR = dt.date(2027, 4, 20), dt.date(2027, 7, 2)


def stored(conversion, spec: DistrictSpec, *, edit=None) -> Snapshot:
    snapshot = Snapshot.objects.create(conversion=conversion)
    district = SimulatedDistrict(spec)
    for name in PULL_OBJECTS:
        rows = [row_values(record.to_xml(), name, n) for n, record in district.iter_records(name)]
        store_rows(snapshot, [edit(row) for row in rows] if edit else rows)
    return snapshot


def both_ways(snapshot, tmp_path, **roster_options):
    """(package, planned logins, people) read through the tables, then the same read from the XML."""
    results, scheme = [], roster_options.pop("scheme", DCID)
    for way in ("tables", "xml"):
        if way == "xml":
            SifRecord.objects.filter(snapshot=snapshot).update(cells="")
        roster = Roster(snapshot, **roster_options)
        assert (roster.tables is not None) == (way == "tables")
        package = build_package(roster, tmp_path / f"{way}.zip", scheme=scheme)
        people = sorted((dataclasses.astuple(p) for p in Roster(snapshot, **roster_options).iter_people()), key=str)
        results.append((package, planned_logins(Roster(snapshot, **roster_options)), people))
    return results


CASES = {
    "defaults, mid-year": (BASE, {"as_of": MID_YEAR}),
    "after the year's end": (BASE, {"as_of": AFTER_YEAR}),
    "family e-mail lists": (BASE.replace(family_emails=True), {"as_of": MID_YEAR}),
    "DCIDs missing (agent.cfg)": (BASE.replace(mappings_missing=True), {"as_of": MID_YEAR}),
    "earlier school years in the zone": (BASE.replace(previous_school_years=True), {"as_of": MID_YEAR}),
    "schools the district did not choose": (
        BASE.replace(excluded_schools=True),
        {"as_of": MID_YEAR, "expected_school_ids": ["100", "300"]},
    ),
    "logins by local id, departed completed": (
        BASE,
        {"as_of": MID_YEAR, "policy": Policy(login_rule="local_id", departed_status="completed")},
    ),
    "logins by state id, staff by DCID": (
        BASE.replace(family_emails=True),
        {"as_of": MID_YEAR, "policy": Policy(login_rule="state_id", staff_login_rule="dcid")},
    ),
    "logins by pattern, combined courses": (
        BASE,
        {
            "as_of": MID_YEAR,
            "policy": Policy(
                login_rule="pattern", login_pattern="{first_name}.{last_name}", course_grouping="combined"
            ),
        },
    ),
    "legacy scheme (PowerSchool ids)": (BASE, {"as_of": MID_YEAR, "scheme": LEGACY}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_tables_write_exactly_the_package_the_xml_writes(conversion, tmp_path, case):
    spec, options = CASES[case]
    snapshot = stored(conversion, spec)
    (tables, tables_logins, tables_people), (xml, xml_logins, xml_people) = both_ways(
        snapshot, tmp_path, school_year=spec.school_year, **options
    )
    assert tables.counts.get("enrollments", 0) + len(tables.skipped) > 0
    assert (tables.fingerprint, tables.counts, tables.skipped) == (xml.fingerprint, xml.counts, xml.skipped)
    assert (tables.path.read_bytes() == xml.path.read_bytes()) or tables.fingerprint == xml.fingerprint
    assert tables_logins == xml_logins
    assert tables_people == xml_people


def test_siblings_sharing_a_chosen_address_across_staff_and_students_log_in_by_their_sis_ids(conversion, tmp_path):
    """A student whose chosen address is a teacher's (a parent on staff) is a duplicate counted across both
    tables: PostgreSQL counts the students, Python the staff."""
    district = SimulatedDistrict(BASE)
    teacher = next(r for _, r in district.iter_records("StaffPersonal"))
    first = {"done": False}

    def edit(row):
        if row.object_name == "StudentPersonal" and not first["done"]:
            first["done"] = True
            record = next(r for _, r in district.iter_records("StudentPersonal") if r.ref_id == row.ref_id)
            changed = dataclasses.replace(record, email=teacher.email.upper())
            return row_values(changed.to_xml(), "t", 0)
        return row

    snapshot = stored(conversion, BASE, edit=edit)
    (tables, logins, _), (xml, xml_logins, _) = both_ways(snapshot, tmp_path, school_year=2027, as_of=MID_YEAR)
    assert tables.fingerprint == xml.fingerprint and logins == xml_logins
    assert logins[teacher.ref_id] != teacher.email  # the shared address is nobody's login


def test_a_value_not_of_its_type_makes_the_build_read_the_xml_and_fail_naming_the_record(conversion, tmp_path):
    def edit(row):
        if row.object_name == "StudentSectionEnrollment" and row.ref_id.endswith("1"):
            bad = row.xml.replace("<EntryDate>", "<EntryDate>13/").replace("</EntryDate>", "X</EntryDate>")
            return row._replace(xml=bad, cells="")  # what the ingest stores for it: no cells
        return row

    snapshot = stored(conversion, BASE, edit=edit)
    roster = Roster(snapshot, school_year=2027, as_of=MID_YEAR)
    assert roster.tables is None
    with pytest.raises(JobFailed, match=r"StudentSectionEnrollment .* is not valid SIF .*EntryDate"):
        build_package(roster, tmp_path / "p.zip")


def test_the_ingest_stores_no_cells_for_a_value_not_of_its_type():
    district = SimulatedDistrict(BASE)
    _, record = next(district.iter_records("StudentSectionEnrollment"))
    good = row_values(record.to_xml(), "t", 0)
    assert split(good.cells)[0] == "1" and good.cells.count("\x1f") == len(CELLS["StudentSectionEnrollment"])
    element = record.to_xml()
    element.set("SchoolYear", "2O27")
    assert row_values(element, "t", 0).cells == ""


@pytest.mark.parametrize("name", list(CELLS))
def test_the_cells_hold_what_read_fields_reads(name):
    """The stored values are read_fields's, typed the same way, for every object of a generated district."""
    spec = BASE.replace(family_emails=True, previous_school_years=True)
    fields = [f for f in CELLS[name] if f != "chosen_email"]
    checked = 0
    for _, record in SimulatedDistrict(spec).iter_records(name):
        element = record.to_xml()
        data = read_fields(element, fields, json=True)
        values = split(cells_of(element, name))[1:]
        expected = ["" if data.get(f) is None else str(data[f]) for f in fields]
        assert values[: len(fields)] == expected
        checked += 1
    assert checked > 0


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_queries_run_ahead_on_their_own_connections(conversion, tmp_path, monkeypatch):
    """Where nothing is left uncommitted (a worker's nightly run), the students', section enrollments' and
    duplicate logins' queries start at once on connections of their own and the build reads their rows: the same
    package again."""
    from conversion.services import roster_tables

    started = []
    real = roster_tables.Prefetch

    def counted(sql, params):
        started.append(sql)
        return real(sql, params)

    monkeypatch.setattr(roster_tables, "Prefetch", counted)
    monkeypatch.setattr(roster_tables, "PREFETCH_MIN_ROWS", 0)  # a small district, prefetched as a large one is
    snapshot = stored(conversion, BASE.replace(family_emails=True))
    ahead = build_package(Roster(snapshot, school_year=2027, as_of=MID_YEAR), tmp_path / "ahead.zip")
    assert len(started) == 3
    SifRecord.objects.filter(snapshot=snapshot).update(cells="")
    xml = build_package(Roster(snapshot, school_year=2027, as_of=MID_YEAR), tmp_path / "xml.zip")
    assert len(started) == 3  # (the XML reading starts none)
    assert (ahead.fingerprint, ahead.counts, ahead.skipped) == (xml.fingerprint, xml.counts, xml.skipped)


@pytest.mark.django_db(transaction=True)
def test_a_build_that_fails_stops_the_queries_it_started(conversion, tmp_path, monkeypatch):
    import threading

    from conversion.services import roster_tables, sis_csv

    monkeypatch.setattr(roster_tables, "PREFETCH_MIN_ROWS", 0)
    snapshot = stored(conversion, BASE)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(sis_csv, "write_package", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build_package(Roster(snapshot, school_year=2027, as_of=MID_YEAR), tmp_path / "p.zip")
    assert not [t for t in threading.enumerate() if t.name == "roster-prefetch"]


@pytest.mark.django_db(transaction=True)
def test_a_small_district_reads_its_queries_on_its_own_connection(conversion, tmp_path, monkeypatch):
    from conversion.services import roster_tables

    started = []
    monkeypatch.setattr(roster_tables, "Prefetch", lambda sql, params: started.append(sql))
    snapshot = stored(conversion, BASE)
    enrollments = SifRecord.objects.filter(snapshot=snapshot, object_name="StudentSectionEnrollment").count()
    snapshot.counts = {"StudentSectionEnrollment": enrollments}  # as a pull's tally leaves them
    snapshot.save(update_fields=["counts"])
    roster = Roster(snapshot, school_year=2027, as_of=MID_YEAR)
    assert roster.tables is not None and 0 < roster.tables.rows < roster_tables.PREFETCH_MIN_ROWS
    build_package(roster, tmp_path / "small.zip")
    assert started == []
