"""Step 2 against the ZIS simulator over HTTP: connection test and a pull into a snapshot."""

from __future__ import annotations

import pytest

from conversion import jobs
from conversion.models import JobKind, JobState, ReceivedMessage, SifRecord, SnapshotState
from conversion.services import connection, pull
from sifclient.powerschool import District as SimDistrict
from sifclient.powerschool import DistrictSpec
from sifclient.zis import ZisSimulator
from tests.conversion.jobhelpers import expire_lease, run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def zis():
    with ZisSimulator(DistrictSpec(students=120, schools=2, school_year=2027, seed=3), zone_id="ALPHA") as sim:
        yield sim


@pytest.fixture
def zoned(conversion, zis):
    conversion.zis_url = zis.base_url + "/zones"
    conversion.zone_id = "ALPHA"
    conversion.save()
    return conversion


def test_connection_test_reports_what_the_zone_answered(zoned):
    job = run(zoned, JobKind.TEST_CONNECTION, connection.run_test_connection)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.detail["registered"] is True and job.detail["ping"] is True
    assert job.detail["zone"]["ready"] is True
    assert job.detail["zone"]["missing_providers"] == []
    assert "zone ready" in job.message


def test_connection_refused_is_a_clear_failure(conversion):
    conversion.zis_url = "http://127.0.0.1:9/zones"
    conversion.zone_id = "NOPE"
    conversion.save()
    job = run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
    assert job.state == JobState.FAILED
    assert "Could not reach the ZIS at http://127.0.0.1:9/zones/NOPE" in job.error


def test_pull_stores_every_record_once(zoned, zis):
    job = run(zoned, JobKind.PULL, pull.run_pull)
    assert job.state == JobState.SUCCEEDED, job.error
    snapshot = job.snapshots.get()
    assert snapshot.state == SnapshotState.COMPLETE
    expected = SimDistrict(zis.spec).counts()
    assert snapshot.counts == expected
    assert SifRecord.objects.filter(snapshot=snapshot).count() == sum(expected.values())
    students = SifRecord.objects.filter(snapshot=snapshot, object_name="StudentPersonal")
    assert all(s.dcid and s.local_id for s in students)
    assert job.current == job.total == sum(expected.values())  # the progress counts records
    assert {s["students"] for s in snapshot.summary["schools"]} != {0}


def test_a_pull_killed_mid_way_resumes_without_loss_or_duplicates(zoned, zis):
    job, _ = jobs.start_job(zoned, JobKind.PULL, enqueue=False)
    handled = {"n": 0}
    real_handle = pull.Ingest.handle

    def dying_handle(self, delivered):
        handled["n"] += 1
        if handled["n"] == 6:
            raise SystemExit("worker killed")  # not an Exception: like a SIGKILL mid-packet
        return real_handle(self, delivered)

    pull.Ingest.handle = dying_handle
    try:
        with pytest.raises(SystemExit):
            jobs.run_job(job.pk, pull.run_pull)
    finally:
        pull.Ingest.handle = real_handle
    job.refresh_from_db()
    assert job.state == JobState.RUNNING  # the dead worker never finished it
    stored_before = ReceivedMessage.objects.count()
    assert stored_before == 5
    # The lease runs out; the redelivered task claims the job and resumes the same snapshot.
    expire_lease(job)
    jobs.run_job(job.pk, pull.run_pull)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    snapshot = job.snapshots.get()
    assert snapshot.counts == SimDistrict(zis.spec).counts()
    assert job.attempts == 2
