"""Fleet tests run real `celery worker` processes against this run's test database and its own broker queues.

The workers inherit the test process's environment (CELERY_BROKER_URL and this run's CELERY_KEY_PREFIX, from
conversion/settings_test.py), with DATABASE_URL pointed at this run's test database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from conversion.bench.fleet_peers import Peers
from conversion.bench.fleet_workers import Worker, start_worker


def run_database_url() -> str:
    """This run's test database, on the server DATABASE_URL names."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        (name,) = cursor.fetchone()
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


@pytest.fixture
def peers() -> Iterator[Peers]:
    with Peers() as started:
        yield started


@pytest.fixture
def workers(transactional_db, tmp_path):
    """`workers(name, concurrency=1, **env)` starts a worker; every one started is stopped at the end."""
    started: list[Worker] = []
    base_env = {
        "DATABASE_URL": run_database_url(),
        # Quick turns for tests: a job without a ZIS slot comes back within about a second.
        "ZIS_SLOT_RETRY_SECONDS": "0.5",
    }

    def start(name: str, concurrency: int = 1, **env: str) -> Worker:
        worker = start_worker(
            name, concurrency=concurrency, env={**base_env, **env}, log=tmp_path / f"worker-{name}.log"
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=20)
