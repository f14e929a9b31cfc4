"""A snapshot's counts, school years and fingerprint, tallied as its packets are stored, equal what its rows say."""

from __future__ import annotations

from collections import Counter

import pytest

from conversion.models import JobKind, SifRecord, Snapshot
from conversion.services import pull
from conversion.services.sif_keys import row_values
from conversion.services.sif_store import store_rows
from conversion.services.sif_tally import Tally, tally_of_rows
from sifclient.powerschool import District, DistrictSpec
from sifclient.zis import ZisSimulator
from tests.conversion.jobhelpers import run

SPEC = DistrictSpec(students=60, schools=2, school_year=2027, seed=9, previous_school_years=True)


def _rows(object_name: str, start: int = 0, stop: int | None = None):
    records = list(District(SPEC).iter_records(object_name))[start:stop]
    return [row_values(record.to_xml(), "m", n) for n, (_, record) in enumerate(records)]


def _stored(snapshot: Snapshot) -> Tally:
    return tally_of_rows(
        SifRecord.objects.filter(snapshot=snapshot).values_list("object_name", "digest", "school_year")
    )


def test_the_fingerprint_is_order_free_and_follows_every_row():
    rows = [(r.object_name, r.digest, r.school_year) for r in _rows("StudentSchoolEnrollment")]
    forward, backward = tally_of_rows(rows), tally_of_rows(reversed(rows))
    assert forward.fingerprint == backward.fingerprint and forward.to_json() == backward.to_json()
    halves = tally_of_rows(rows[: len(rows) // 2])
    halves.merge(tally_of_rows(rows[len(rows) // 2 :]))
    assert halves.fingerprint == forward.fingerprint
    assert Tally.from_json(forward.to_json()).fingerprint == forward.fingerprint
    in_bulk = Tally()
    in_bulk.add_many([(n, y) for n, _, y in rows], [d for _, d, _ in rows])
    assert in_bulk.to_json() == forward.to_json()
    name, _, year = rows[0]
    assert tally_of_rows([(name, "0" * 32, year), *rows[1:]]).fingerprint != forward.fingerprint  # changed
    assert tally_of_rows(rows[1:]).fingerprint != forward.fingerprint  # removed
    years = Counter(str(r[2]) for r in rows if r[2])
    assert forward.school_years == {"StudentSchoolEnrollment": dict(years)} and len(years) > 1


@pytest.mark.django_db
def test_a_repeated_packet_is_tallied_once(conversion):
    snapshot = Snapshot.objects.create(conversion=conversion)
    first, second = _rows("StudentPersonal", 0, 10), _rows("StudentPersonal", 5, 15)
    tally = Tally()
    store_rows(snapshot, first, tally)
    store_rows(snapshot, second, tally)  # five of its rows are stored already: the staging path skips them
    assert SifRecord.objects.filter(snapshot=snapshot).count() == 15
    assert tally.complete and tally.objects == {"StudentPersonal": 15}
    assert tally.fingerprint == _stored(snapshot).fingerprint


@pytest.mark.django_db(transaction=True)
def test_a_pull_tallies_what_it_stores(conversion):
    with ZisSimulator(SPEC, zone_id="ALPHA") as zis:
        conversion.zis_url, conversion.zone_id = zis.base_url + "/zones", "ALPHA"
        conversion.save()
        job = run(conversion, JobKind.PULL, pull.run_pull, expect_success=True)
    snapshot = job.snapshots.get()
    assert all(info["tally"]["objects"] for info in snapshot.requests.values() if info["records"])
    stored = _stored(snapshot)
    assert snapshot.fingerprint == stored.fingerprint
    assert snapshot.counts == dict(stored.objects) == District(SPEC).counts()
    assert snapshot.summary["school_years"] == stored.school_years and len(stored.school_years["TermInfo"]) > 1

    # A snapshot whose rows were not all tallied is counted from its rows, to the same figures.
    for info in snapshot.requests.values():
        del info["tally"]
    counted = Snapshot.objects.get(pk=snapshot.pk)
    counted.requests = snapshot.requests
    counted.fingerprint, counted.counts = "", {}
    pull.finish_snapshot(counted)
    assert (counted.fingerprint, counted.counts) == (snapshot.fingerprint, snapshot.counts)
    assert counted.summary["school_years"] == snapshot.summary["school_years"]
