"""A worker process killed with SIGKILL in the middle of a pull; the job rerun loses and doubles nothing."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conversion import jobs
from conversion.models import Job, JobKind, JobState, ReceivedMessage, SifRecord
from conversion.services import pull
from sifclient.powerschool import District as SimDistrict
from sifclient.powerschool import DistrictSpec
from sifclient.zis import ZisSimulator

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]
CHILD = """
import os, sys, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversion.settings")
django.setup()
from conversion import jobs
from conversion.services import pull
jobs.run_job(int(sys.argv[1]), pull.run_pull)
"""


def database_url() -> str:
    """This run's test database, on the server DATABASE_URL names."""
    from urllib.parse import urlsplit, urlunsplit

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (name,) = cursor.fetchone()
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def test_a_pull_killed_with_sigkill_resumes_without_loss_or_duplicates(conversion):
    spec = DistrictSpec(students=1500, schools=2, school_year=2027, seed=9)
    with ZisSimulator(spec, zone_id="ALPHA") as zis:
        conversion.zis_url = zis.base_url + "/zones"
        conversion.zone_id = "ALPHA"
        conversion.save()
        job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
        worker = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(job.pk)], cwd=REPO, env={**os.environ, "DATABASE_URL": database_url()}
        )
        try:
            for _ in range(600):  # bounded: up to ~60 s for the first packets to be stored
                if ReceivedMessage.objects.filter(conversion=conversion, kind="response").count() >= 2:
                    break
                if worker.poll() is not None:
                    pytest.fail(f"the worker ended before it was killed (exit {worker.returncode})")
                time.sleep(0.1)
            else:
                pytest.fail("the worker stored nothing")
            worker.send_signal(signal.SIGKILL)
        finally:
            worker.wait(timeout=30)
        assert worker.returncode == -signal.SIGKILL
        job.refresh_from_db()
        assert job.state == JobState.RUNNING  # the dead worker never finished it
        stored = ReceivedMessage.objects.filter(conversion=conversion).count()
        expected = SimDistrict(spec).counts()
        assert 0 < SifRecord.objects.filter(snapshot__conversion=conversion).count() < sum(expected.values())
        # The lease runs out; the job runs again and resumes the same snapshot.
        Job.objects.filter(pk=job.pk).update(heartbeat_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
        jobs.run_job(job.pk, pull.run_pull)
        job.refresh_from_db()
        assert job.state == JobState.SUCCEEDED, job.error
        snapshot = job.snapshots.get()
        assert snapshot.counts == expected
        assert SifRecord.objects.filter(snapshot=snapshot).count() == sum(expected.values())
        assert ReceivedMessage.objects.filter(conversion=conversion).count() > stored
        assert job.attempts == 2
