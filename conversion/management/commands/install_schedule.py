"""Install (or bring up to date) the beat schedule in the database. Idempotent; no demo data."""

from django.core.management.base import BaseCommand

from conversion.services import schedule


class Command(BaseCommand):
    help = "Install the beat schedule: nightly syncs, due dates, grade passback, stale-job re-sends, alerts."

    def handle(self, *args, **options):
        for line in schedule.install_schedule():
            self.stdout.write(line)
