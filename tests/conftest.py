"""Shared test set-up: the suite runs against the real PostgreSQL and Redis on 127.0.0.1.

Their addresses default in conversion/settings_test.py (pytest-django reads settings before conftests).
"""

import os
from collections.abc import Mapping

import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is for attackers, not for a test suite creating personas.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def database_name(environ: Mapping[str, str], pid: int) -> str:
    """This process's test database: TEST_DB_SUFFIX or the pid, then the pytest-xdist worker's id (gw0, ...)
    when there is one, so that workers of one run never share a database even when TEST_DB_SUFFIX is given."""
    name = f"test_sifconvert_{environ.get('TEST_DB_SUFFIX') or pid}"
    worker = environ.get("PYTEST_XDIST_WORKER")
    return f"{name}_{worker}" if worker else name


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    """A test database of this run's own, so two runs on one PostgreSQL server never drop each other's.
    (It replaces pytest-django's parallel suffix, which database_name adds itself.)"""
    from django.conf import settings

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = database_name(os.environ, os.getpid())


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, and before it drops this run's test database: the sessions still connected to it end.

    A thread or child process a test started (a job's heartbeat, a killed worker) may still hold a connection
    when the run ends, on a busy machine; DROP DATABASE would then fail the last test of the run (or of an
    xdist worker) with "being accessed by other users"."""
    yield
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(params=["default", "strict"])
def zis_profile(request) -> str:
    """Both ZIS simulator profiles: "default" (the specification's reading) and "strict" (as OpenZIS answers,
    sifclient/zis/strict.py). A test taking this fixture runs once against each."""
    return request.param
