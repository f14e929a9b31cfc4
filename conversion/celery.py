"""The Celery application: workers run SIF pulls, remapping and syncs; beat fires schedules."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversion.settings")

app = Celery("conversion")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
