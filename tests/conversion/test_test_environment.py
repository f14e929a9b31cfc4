"""The suite itself: it must run on the real servers, or it proves nothing about them."""

from pathlib import Path

from django.conf import settings
from django.db import connection


def test_the_database_is_postgresql(db):
    assert connection.vendor == "postgresql", "tests must run on PostgreSQL (see conversion/settings_test.py)"


def test_the_broker_is_redis():
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_each_xdist_worker_has_a_database_of_its_own():
    from tests.conftest import database_name

    assert database_name({}, 41) == "test_sifconvert_41"
    assert database_name({"TEST_DB_SUFFIX": "ci"}, 41) == "test_sifconvert_ci"
    # Workers of one run share TEST_DB_SUFFIX (inherited from the controller) but never a database.
    assert database_name({"TEST_DB_SUFFIX": "ci", "PYTEST_XDIST_WORKER": "gw1"}, 41) == "test_sifconvert_ci_gw1"
    assert database_name({"PYTEST_XDIST_WORKER": "gw0"}, 41) == "test_sifconvert_41_gw0"


def test_each_xdist_worker_has_celery_queues_of_its_own():
    """The controller's prefix is inherited by its workers: each adds its own id; a process a worker starts
    keeps its worker's prefix (its Celery worker must read the queues its tests fill)."""
    import os
    import subprocess
    import sys

    def prefix(**env: str) -> str:
        base = {k: v for k, v in os.environ.items() if k not in ("CELERY_KEY_PREFIX", "PYTEST_XDIST_WORKER")}
        code = "import conversion.settings_test as s; print(s.CELERY_BROKER_TRANSPORT_OPTIONS['global_keyprefix'])"
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**base, **env},
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return out.stdout.strip()

    assert prefix(CELERY_KEY_PREFIX="test-7:") == "test-7:"
    assert prefix(CELERY_KEY_PREFIX="test-7:", PYTEST_XDIST_WORKER="gw1") == "test-7:gw1:"
    assert prefix(CELERY_KEY_PREFIX="test-7:gw1:", PYTEST_XDIST_WORKER="gw1") == "test-7:gw1:"
    assert prefix(PYTEST_XDIST_WORKER="gw0").endswith(":gw0:")
