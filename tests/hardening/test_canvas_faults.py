"""Canvas throttling, errors and hangs through a product job: bounded retries, clear job errors, and
nothing half-applied."""

from __future__ import annotations

import pytest

from canvas.client import CanvasClient
from conversion.models import ConversionState, JobKind, JobState, MappingDiff, SyncRun, SyncState
from conversion.services import mapping, pull, sync
from sifclient.powerschool import DistrictSpec
from tests.conversion.jobhelpers import run
from tests.conversion.simulators import TOKEN, simulated_district

pytestmark = pytest.mark.django_db(transaction=True)
SPEC = DistrictSpec(students=60, schools=2, school_year=2027, seed=31)


@pytest.fixture(autouse=True)
def quick_backoff(settings):
    settings.CANVAS_CLIENT_OPTIONS = {"max_retries": 3, "backoff_base": 0.01, "backoff_cap": 0.05, "timeout": 1.0}


def test_a_canvas_that_keeps_answering_503_fails_the_mapping_cleanly(conversion):
    with simulated_district(conversion, SPEC) as (zis, canvas_sim):
        conversion.state = ConversionState.MAPPING
        conversion.save()
        assert run(conversion, JobKind.PULL, pull.run_pull).state == JobState.SUCCEEDED
        canvas_sim.inject_faults(status=503, count=50)
        job = run(conversion, JobKind.MAPPING, mapping.run_mapping)
        assert job.state == JobState.FAILED
        assert "Canvas kept failing or throttling after every retry" in job.error
        assert not MappingDiff.objects.exists()  # nothing half-written


@pytest.mark.parametrize(
    "fault", [{"status": 500, "count": 2}, {"status": 503, "count": 2}, {"hang_seconds": 2.0, "count": 1}]
)
def test_passing_canvas_faults_are_retried_and_the_sync_completes(conversion, fault):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        conversion.state = ConversionState.LIVE
        conversion.save()
        canvas_sim.inject_faults(**fault)
        job = run(conversion, JobKind.SYNC, sync.run_sync)
        assert job.state == JobState.SUCCEEDED, job.error
        assert SyncRun.objects.get(job=job).state == SyncState.IMPORTED
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            mine = [
                i
                for i in client.iter_sis_imports("self")
                if any("sync-job" in (a.get("display_name") or "") for a in i.raw.get("csv_attachments") or [])
            ]
        assert len(mine) == 1  # a failed or timed-out upload that Canvas did take is not sent again


def test_a_throttled_canvas_still_gets_the_sync(conversion, settings):
    settings.CANVAS_CLIENT_OPTIONS = {"max_retries": 8, "backoff_base": 0.2, "backoff_cap": 1.0, "timeout": 5.0}
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        conversion.state = ConversionState.LIVE
        conversion.save()
        canvas_sim.set_throttle(
            enabled=True, model="harsh", mode="429", capacity=200, drain_per_second=100, request_cost=60
        )
        job = run(conversion, JobKind.SYNC, sync.run_sync)
        assert job.state == JobState.SUCCEEDED, job.error
        assert SyncRun.objects.get(job=job).state == SyncState.IMPORTED
