"""Shared test set-up: the suite runs against the real PostgreSQL and Redis on 127.0.0.1.

The README's test command sets DATABASE_URL and CELERY_BROKER_URL; running pytest by hand without them
falls back to the same servers' defaults here, so a forgotten variable never means a silent SQLite run.
"""
import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sifconvert")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("CELERY_KEY_PREFIX", f"test-{os.getpid()}:")  # this run's own queues on the shared Redis
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs an event loop.

import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness is for attackers, not for a test suite creating personas.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """A test database of this run's own, so two runs on one PostgreSQL server never drop each other's."""
    from django.conf import settings

    suffix = os.environ.get("TEST_DB_SUFFIX") or str(os.getpid())
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"test_sifconvert_{suffix}"
