"""Shared test set-up: the suite runs against the real PostgreSQL and Redis on 127.0.0.1.

Their addresses default in conversion/settings_test.py (pytest-django reads settings before conftests).
"""

import os

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


@pytest.fixture(params=["default", "strict"])
def zis_profile(request) -> str:
    """Both ZIS simulator profiles: "default" (the specification's reading) and "strict" (as OpenZIS answers,
    sifclient/zis/strict.py). A test taking this fixture runs once against each."""
    return request.param
