"""A worker killed while Canvas applies the remap: the rerun finds the upload, does not send it again,
and verifies every user under the DCID."""

from __future__ import annotations

import pytest

from canvas.client import CanvasClient
from conversion import jobs, workflow
from conversion.models import ConversionState, JobKind, JobState
from conversion.services import mapping, pull, remap
from sifclient.powerschool import DistrictSpec
from tests.conversion.jobhelpers import expire_lease, worker_dies_in
from tests.conversion.jobhelpers import run as run_job
from tests.conversion.simulators import TOKEN, simulated_district

pytestmark = pytest.mark.django_db(transaction=True)
SPEC = DistrictSpec(students=80, schools=2, school_year=2027, seed=21)


def run(conversion, kind, runner):
    return run_job(conversion, kind, runner, expect_success=True)


def test_remap_killed_during_the_canvas_import_is_not_sent_twice(conversion, district_admin):
    with simulated_district(conversion, SPEC) as (zis, canvas_sim):
        conversion.state = ConversionState.MAPPING
        conversion.save()
        run(conversion, JobKind.PULL, pull.run_pull)
        run(conversion, JobKind.MAPPING, mapping.run_mapping)
        workflow.perform(conversion, "approve_mapping", user=district_admin)
        planned = remap.plan(conversion).changes

        job, _ = jobs.start_job(conversion, JobKind.REMAP, enqueue=False)
        with worker_dies_in(remap.canvas_import, "wait"), pytest.raises(SystemExit):
            jobs.run_job(job.pk, remap.run_remap)
        job.refresh_from_db()
        assert job.state == JobState.RUNNING and job.detail.get("import_id")

        expire_lease(job)
        jobs.run_job(job.pk, remap.run_remap)
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, job.error
        assert job.detail["unverified"] == 0

        with CanvasClient(canvas_sim.url, TOKEN) as client:
            uploads = [
                i
                for i in client.iter_sis_imports("self")
                if any("remap-job" in (a.get("display_name") or "") for a in i.raw.get("csv_attachments") or [])
            ]
            users = {u.sis_user_id for u in client.iter_users("self")}
        assert len(uploads) == 1
        assert {c.new_id for c in planned} <= users
        assert not {c.old_id for c in planned} & users
