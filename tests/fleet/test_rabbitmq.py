"""The product's tasks on RabbitMQ in place of Redis (docs/rabbitmq.md): the nightly beat task and the jobs it starts
go through a real worker with broker amqp://guest:guest@127.0.0.1//, and a ZIS job waits for its slot there too.

Each run uses a virtual host of its own when rabbitmqctl can make one (so parallel runs never take each other's
messages), else the default one. Skipped only when nothing answers on 127.0.0.1:5672.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest

from conversion import tasks
from conversion.bench.fleet_workers import make_live, wait_for_night
from conversion.celery import app as celery_app
from conversion.models import JobState
from conversion.services.schedule import business_date
from sifclient.powerschool import DistrictSpec
from tests.fleet.test_fleet_night import assert_each_district_synced_once

pytestmark = pytest.mark.django_db(transaction=True)
HOST, PORT = "127.0.0.1", 5672


def rabbitmq_reachable() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def amqp_url() -> Iterator[str]:
    if not rabbitmq_reachable():
        pytest.skip(f"RabbitMQ is unreachable on {HOST}:{PORT} (nothing accepts a connection there)")
    vhost = f"sifconvert-test-{os.getpid()}"
    ctl = shutil.which("rabbitmqctl")
    made = False
    if ctl:
        made = subprocess.run([ctl, "add_vhost", vhost], capture_output=True, timeout=60).returncode == 0
        if made:
            subprocess.run([ctl, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True, timeout=60)
    yield f"amqp://guest:guest@{HOST}:{PORT}/{vhost if made else ''}"
    if made:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60)  # type: ignore[list-item]


@pytest.fixture
def on_rabbitmq(amqp_url) -> Iterator[str]:
    """This process sends its messages to RabbitMQ for the test's length."""
    before = celery_app.conf.broker_url, celery_app.conf.broker_write_url, celery_app.conf.broker_read_url
    celery_app.conf.broker_url = celery_app.conf.broker_write_url = celery_app.conf.broker_read_url = amqp_url
    celery_app._after_fork()  # drop the pooled connections to Redis
    yield amqp_url
    celery_app.conf.broker_url, celery_app.conf.broker_write_url, celery_app.conf.broker_read_url = before
    celery_app._after_fork()


def test_the_nightly_beat_and_its_syncs_run_on_rabbitmq_with_the_zis_limit(on_rabbitmq, peers, workers):
    zis = peers.add_zis(delay=0.05)
    conversions = [
        make_live(peers.add_district(f"r{i}", DistrictSpec(students=10, schools=1, seed=300 + i), zis))
        for i in range(4)
    ]
    # One slot for the ZIS and two worker processes: jobs must wait for the slot through RabbitMQ's retries.
    workers("rabbit", concurrency=2, CELERY_BROKER_URL=on_rabbitmq, ZIS_MAX_CONCURRENT_JOBS="1")

    tasks.nightly_syncs.apply_async()
    night = wait_for_night(business_date(), len(conversions), timeout=240)

    assert_each_district_synced_once(peers, night)
    assert {job.state for job in night} == {JobState.SUCCEEDED}
    assert zis.peak_in_flight == 1
