"""Create the demo users, districts and conversions (idempotent), and optionally the legacy Canvas state the
Canvas simulator starts from. The beat schedule is not the demo's: `manage.py install_schedule` installs it."""

from pathlib import Path

from django.core.management.base import BaseCommand

from conversion import crypto
from conversion.services import demo, legacy
from sifclient.powerschool import DistrictSpec


class Command(BaseCommand):
    help = "Seed the demo users, districts and conversions (never run this in production)."

    def add_arguments(self, parser):
        parser.add_argument("--zis-url", default=demo.DemoSettings.zis_url)
        parser.add_argument("--canvas-url", default=demo.DemoSettings.canvas_url)
        parser.add_argument("--canvas-seed", type=Path, help="write the legacy Canvas SIS import zip here")
        parser.add_argument("--students", type=int, default=1500)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, **options):
        rewritten = crypto.reencrypt_stored()  # a demo database from before the generated keys
        if rewritten:
            self.stdout.write(f"Re-encrypted {rewritten} stored credential(s) with this installation's own key.")
        result = demo.seed_demo(demo.DemoSettings(zis_url=options["zis_url"], canvas_url=options["canvas_url"]))
        self.stdout.write(f"Consultant: {result['consultant']} / {demo.DEMO_PASSWORD}")
        for d in result["districts"]:
            self.stdout.write(f"District {d['district']}: admin {d['admin']} / {demo.DEMO_PASSWORD}")
        if options["canvas_seed"]:
            # The demo's legacy Canvas is what another integration left (its own ids and logins, a cross-listed
            # course, co-teachers as teachers, a student who left in the spring still active): the mapping check
            # and the remap have real work to do.
            spec = DistrictSpec(
                seed=options["seed"],
                students=options["students"],
                school_year=demo.current_school_year(),
                departed_students=2,
                co_teachers=True,
            )
            counts = legacy.write_integration_zip(spec, options["canvas_seed"])
            self.stdout.write(f"Legacy Canvas state written to {options['canvas_seed']}: {counts}")
