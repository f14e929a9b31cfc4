"""Create the demo users, districts and conversions (idempotent), and the beat schedule."""
from django.core.management.base import BaseCommand

from conversion.services import demo, schedule


class Command(BaseCommand):
    help = "Seed the demo data and install the beat schedule."

    def add_arguments(self, parser):
        parser.add_argument("--zis-url", default=demo.DemoSettings.zis_url)
        parser.add_argument("--canvas-url", default=demo.DemoSettings.canvas_url)

    def handle(self, *args, **options):
        result = demo.seed_demo(demo.DemoSettings(zis_url=options["zis_url"], canvas_url=options["canvas_url"]))
        schedule.install_schedule()
        self.stdout.write(f"Consultant: {result['consultant']} / {demo.DEMO_PASSWORD}")
        for d in result["districts"]:
            self.stdout.write(f"District {d['district']}: admin {d['admin']} / {demo.DEMO_PASSWORD}")
