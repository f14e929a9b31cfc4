"""The suite itself: it must run on the real servers, or it proves nothing about them."""

from django.conf import settings
from django.db import connection


def test_the_database_is_postgresql(db):
    assert connection.vendor == "postgresql", "tests must run on PostgreSQL (see conversion/settings_test.py)"


def test_the_broker_is_redis():
    assert settings.CELERY_BROKER_URL.startswith("redis://")
