"""The Celery application: workers run SIF pulls, remapping and syncs; beat fires schedules."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversion.settings")

# Every task's base class: a job that talks to a ZIS runs inside one of its host's slots, or waits in the broker
# (conversion/services/zis_slots.py).
app = Celery("conversion", task_cls="conversion.services.zis_slots:SlotTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
