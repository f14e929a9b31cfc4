"""`python manage.py bench`: ingest, nightly decision, mapping diff, CSV build and dashboard figures.

Everything runs in a scratch PostgreSQL database (created and dropped here) and in child processes, so
peak RSS is measured per variant. The figures are printed and written into BENCHMARKS.md.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shlex
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from conversion.bench import dashboard, fleet, report, scratchdb
from conversion.bench.datafiles import ensure_pull_files
from conversion.bench.runner import REPO, run_child
from conversion.jobs import PROGRESS_INTERVAL_SECONDS

RSS_LIMIT_MB = 300


class Command(BaseCommand):
    help = "Measure ingest, the nightly no-new-data check, the mapping diff, the CSV build and the dashboard."

    def add_arguments(self, parser):
        parser.add_argument("--sizes", default="5000,50000,200000", help="District sizes (students), comma-separated.")
        parser.add_argument(
            "--csv-sizes",
            default="500000",
            help="More district sizes (students) measured for the CSV build alone (ingest, then the build), "
            "comma-separated; '' for none.",
        )
        parser.add_argument("--naive-sample", type=int, default=5000, help="Objects the naive ingest stores.")
        parser.add_argument("--districts", type=int, default=1000, help="Districts seeded for the dashboard.")
        parser.add_argument("--clients", type=int, default=20)
        parser.add_argument("--requests-per-client", type=int, default=50)
        parser.add_argument("--database", default="sifconvert_bench", help="Scratch database name.")
        parser.add_argument("--data-dir", default=str(Path(settings.BASE_DIR) / "var" / "bench"))
        parser.add_argument("--output", default=str(Path(settings.BASE_DIR) / "BENCHMARKS.md"))
        parser.add_argument("--skip-dashboard", action="store_true")
        parser.add_argument(
            "--cache-url",
            default="",
            help="A CACHE_URL for the dashboard's server, e.g. redis://127.0.0.1:6379/0 (sessions then read through "
            "Redis; the run's keys are deleted afterwards). Default: none, as scripts/start runs (sessions in the "
            "database read through process memory).",
        )
        # The fleet night (conversion/bench/fleet.py).
        parser.add_argument("--skip-fleet", action="store_true")
        parser.add_argument("--fleet-districts", type=int, default=1000, help="Live districts in the fleet.")
        parser.add_argument("--fleet-scale", type=float, default=10.0, help="NCES district sizes divided by this.")
        parser.add_argument("--fleet-workers", default="1,2,4", help="Worker process counts, one night each.")
        parser.add_argument("--fleet-threads", type=int, default=8, help="Jobs one worker process runs at once.")
        parser.add_argument("--fleet-limit", type=int, default=2, help="Jobs at once per ZIS host.")
        parser.add_argument("--fleet-zis-hosts", type=int, default=40, help="Hosted ZIS servers (one slow).")
        parser.add_argument(
            "--fleet-retry-seconds",
            type=float,
            default=settings.ZIS_SLOT_RETRY_SECONDS,
            help="ZIS_SLOT_RETRY_SECONDS of the fleet's workers (default: production's).",
        )
        parser.add_argument("--fleet-slow-delay", type=float, default=0.25, help="The slow ZIS's delay per answer.")
        parser.add_argument("--fleet-netns-hosts", type=int, default=2, help="Worker hosts as network namespaces.")
        parser.add_argument("--fleet-netns-districts", type=int, default=50, help="Districts of the scale-out night.")
        parser.add_argument(
            "--ingest-only",
            action="store_true",
            help="Measure only the ingest: bare iterparse (b) and the product (a), --repeat times back to back, "
            "printed and not written to BENCHMARKS.md.",
        )
        parser.add_argument("--repeat", type=int, default=1, help="With --ingest-only: runs of each variant.")
        parser.add_argument(
            "--fleet-profile",
            type=int,
            default=0,
            metavar="DISTRICTS",
            help="Only profile a fleet of this many districts (a first night and a 1-worker night) under py-spy and "
            "print where each process's CPU goes (conversion/bench/fleet_profile.py); not written to BENCHMARKS.md.",
        )

    def handle(self, *args, **options):
        sizes = [int(s) for s in options["sizes"].split(",") if s]
        url = scratchdb.scratch_url(options["database"])

        def say(text: str) -> None:
            self.stdout.write(text, ending="\n")
            self.stdout.flush()

        if options["fleet_profile"]:
            from conversion.bench import fleet_profile

            say(fleet_profile.report(*fleet_profile.run(options, options["fleet_profile"], say=say)))
            return
        files = {n: ensure_pull_files(Path(options["data_dir"]), n, say=say) for n in sizes}
        if options["ingest_only"]:
            self._ingest_only(sizes, files, options, say)
            return
        sections, notes = [], []
        say(f"scratch database {options['database']}: creating and migrating")
        scratchdb.create(url)
        try:
            ingest_rows, districts_measured = [], []
            for students in sizes:
                pull = files[students]
                child_args = {"files": pull.to_json()}
                say(
                    f"{students:,} students ({pull.total_objects:,} objects, {pull.total_bytes / 2**20:,.0f} MiB): "
                    "bare iterparse, product ingest, naive ingest"
                )
                bare = run_child("bare", child_args, database_url=url)
                whole = run_child("bare_whole", child_args, database_url=url)
                product = run_child("product", child_args, database_url=url)
                naive = run_child("naive", {**child_args, "sample": options["naive_sample"]}, database_url=url)
                rate = {
                    k: v["objects"] / v["seconds"] for k, v in (("a", product), ("b", bare), ("c", naive), ("w", whole))
                }
                ingest_rows.append(
                    [
                        f"{students:,}",
                        f"{pull.total_objects:,}",
                        f"{sum(pull.packets.values()):,}",
                        f"{rate['a']:,.0f} ({product['seconds']:.1f} s)",
                        f"{product['peak_rss_mb']:.0f}",
                        f"{rate['b']:,.0f} ({bare['seconds']:.1f} s)",
                        f"{bare['peak_rss_mb']:.0f}",
                        f"{rate['w']:,.0f} ({whole['seconds']:.1f} s)",
                        f"{rate['c']:,.0f} (~{naive['extrapolated_seconds']:,.0f} s est.)",
                        f"{naive['peak_rss_mb']:.0f}",
                        f"{rate['a'] / rate['b']:.0%} ({report.mark(rate['a'] >= 0.5 * rate['b'])})",
                        f"{rate['a'] / rate['c']:.1f}× ({report.mark(rate['a'] >= 10 * rate['c'])})",
                        f"{product['finish_seconds']:.1f}",
                        report.mark(
                            max(product["peak_rss_mb"], bare["peak_rss_mb"], naive["peak_rss_mb"]) < RSS_LIMIT_MB
                        ),
                    ]
                )
                say(
                    report.table(
                        ["students", "a obj/s", "b obj/s", "c obj/s"],
                        [[f"{students:,}", f"{rate['a']:,.0f}", f"{rate['b']:,.0f}", f"{rate['c']:,.0f}"]],
                    )
                )
                districts_measured.append((students, product, bare))
            sections.append(
                (
                    "Ingest of a full pull",
                    report.table(
                        [
                            "students",
                            "objects",
                            "packets",
                            "(a) product obj/s",
                            "(a) peak RSS MB",
                            "(b) bare lxml obj/s",
                            "(b) peak RSS MB",
                            "(b′) whole-packet parse obj/s",
                            "(c) naive obj/s",
                            "(c) peak RSS MB",
                            "a/b (target ≥ 50%)",
                            "a/c (target ≥ 10×)",
                            "finish_snapshot s",
                            "RSS < 300 MB",
                        ],
                        ingest_rows,
                    ),
                )
            )
            notes.append(
                f"(c) naive runs on a sample of about {options['naive_sample']:,} objects spread over every "
                "object kind (whole-packet parse charged pro rata) and is extrapolated to the full pull."
            )
            notes.append(
                "(b′) parses each packet whole with etree.fromstring and counts its objects, as the "
                "product does (a packet is at most 4 MiB, twice the SIF_MaxBufferSize the agent asks for): "
                "the ceiling of the product's own parse, beside the iterparse ceiling (b) the issue names."
            )
            notes.append(
                "(a) is conversion.services.pull.Ingest: seen() then handle() per packet, as Agent.drain "
                "calls them, each packet stored in one transaction with its ReceivedMessage; "
                "finish_snapshot (counts, summary, fingerprint) is timed separately."
            )

            night_rows, csv_rows = [], []
            for students, product, bare in districts_measured:
                say(f"{students:,} students: a district's night (CSV build and the nightly decision)")
                nightly = run_child("csv_and_nightly", {"snapshot": product["snapshot"]}, database_url=url)
                night_seconds = product["seconds"] + product["finish_seconds"] + nightly["nightly_cold_seconds"]
                decision = nightly["nightly_cold_seconds"] - nightly["cold_build_seconds"]
                night_rows.append(
                    [
                        f"{students:,}",
                        f"{product['seconds']:.1f}",
                        f"{product['finish_seconds']:.2f}",
                        f"{nightly['cold_build_seconds']:.1f}",
                        f"{decision:.2f}",
                        f"{night_seconds:.1f}",
                        f"{bare['seconds']:.1f}",
                        f"{night_seconds / bare['seconds']:.2f}× ({report.mark(night_seconds <= 3 * bare['seconds'])})",
                        f"{nightly['nightly_seconds']:.2f} ({report.mark(nightly['nightly_seconds'] < 2)})",
                    ]
                )
                csv_rows.append(self._csv_row(students, nightly))
            if districts_measured:
                sections.append(
                    (
                        "A district's night: ingest + finish + CSV build + the sync decision",
                        report.table(
                            [
                                "students",
                                "ingest s",
                                "finish_snapshot s",
                                "CSV build s (in run_sync)",
                                "decision s (the rest of run_sync)",
                                "night s",
                                "bare iterparse s",
                                "night / bare (target ≤ 3×)",
                                "unchanged night's decision s (target < 2 s)",
                            ],
                            night_rows,
                        ),
                    )
                )
                notes.append(
                    "A district's night is the product's ingest (a) of the pull's packets, finish_snapshot, and the "
                    "real sync.run_sync handed the ingested snapshot (the pull is the one part replaced): it builds "
                    "the CSVs (no identical snapshot has a package yet, as on the first night after a change), "
                    "compares, decides. The HTTP exchange with the ZIS is not in it: the ZIS simulator generates its "
                    "district as it answers, which would time the simulator, not the product; the packets are "
                    "the bytes (b) parses. 'Unchanged night' is the next night with the same records: the "
                    "package's fingerprint is known and nothing is built."
                )
                students, product, _ = districts_measured[-1]
                say(f"{students:,} students: mapping diff of every user")
                mapping = run_child("mapping_users", {"snapshot": product["snapshot"]}, database_url=url)
                diff_total = mapping["diff_seconds"] + mapping["save_seconds"]
                people = f"{mapping['people']:,} people vs {mapping['canvas_users']:,} Canvas users"
                sections.append(
                    (
                        f"Mapping check of a district of {students:,} students",
                        report.table(
                            ["measure", "figure", "target"],
                            [
                                [
                                    f"mapping diff_users of {people} + saving the rows",
                                    f"{diff_total:.1f} s (diff {mapping['diff_seconds']:.1f} s, save "
                                    f"{mapping['save_seconds']:.1f} s of {mapping['rows']:,} rows)",
                                    f"< 10 s ({report.mark(diff_total < 10)})",
                                ],
                                [
                                    "reading those people from the snapshot (Roster.iter_people)",
                                    f"{mapping['read_seconds']:.1f} s",
                                    "",
                                ],
                            ],
                        ),
                    )
                )

            for students in [int(n) for n in options["csv_sizes"].split(",") if n]:
                pull = ensure_pull_files(Path(options["data_dir"]), students, say=say)
                say(f"{students:,} students: ingest, then the CSV build alone")
                product = run_child("product", {"files": pull.to_json()}, database_url=url)
                built = run_child("csv_build", {"snapshot": product["snapshot"]}, database_url=url)
                csv_rows.append(self._csv_row(students, built))
            if csv_rows:
                sections.append(
                    (
                        "CSV build by district size",
                        report.table(
                            [
                                "students",
                                "rows",
                                "rows/s (wall)",
                                "rows per CPU-second (this process)",
                                "zip MiB",
                                "peak RSS MB",
                                "≥ 100,000 rows/s",
                                f"RSS < {RSS_LIMIT_MB} MB",
                            ],
                            csv_rows,
                        ),
                    )
                )

            if not options["skip_dashboard"]:
                say(f"dashboard: seeding {options['districts']:,} districts, starting gunicorn")
                seeded = run_child("seed_dashboard", {"districts": options["districts"]}, database_url=url)
                latency_rows = []
                with (
                    dashboard.shared_cache(options["cache_url"]) as cache_env,
                    dashboard.gunicorn(url, str(REPO), env=cache_env) as server,
                ):
                    poll = seeded["job_url"], {"HX-Request": "true"}, "step 0"
                    for label, (path, headers, expect), conditional, moving in (
                        ("portfolio page", ("/", None, "District 00"), True, False),
                        (
                            "job-progress poll (HTMX partial), the job moving as a worker writes it, "
                            "browsers asking If-None-Match",
                            poll,
                            True,
                            True,
                        ),
                        ("job-progress poll, every answer rendered (no If-None-Match)", poll, False, True),
                    ):
                        mover = (
                            dashboard.moving_job(url, seeded["job_id"], PROGRESS_INTERVAL_SECONDS)
                            if moving
                            else contextlib.nullcontext()
                        )
                        with mover as writes:
                            measured = dashboard.drive(
                                server,
                                path,
                                clients=options["clients"],
                                per_client=options["requests_per_client"],
                                headers=headers,
                                expect=expect,
                                conditional=conditional,
                            )
                        latency_rows.append(
                            [
                                label,
                                f"{measured.requests:,}",
                                f"{measured.p50_ms:.0f}",
                                f"{measured.p95_ms:.0f}",
                                f"{measured.max_ms:.0f}",
                                f"{measured.per_second:,.0f}",
                                f"{measured.not_modified:,}",
                                f"{writes[0]:,}" if writes else "",
                                f"{measured.server_cpu_ms:.2f}",
                                f"{measured.database_cpu_ms:.2f}",
                                f"{measured.client_cpu_ms:.2f} ({measured.client_share:.0%})",
                                report.mark(measured.p95_ms < 100),
                            ]
                        )
                        say(
                            report.table(
                                ["page", "p50 ms", "p95 ms", "req/s", "304s"],
                                [
                                    [
                                        label,
                                        f"{measured.p50_ms:.0f}",
                                        f"{measured.p95_ms:.0f}",
                                        f"{measured.per_second:,.0f}",
                                        f"{measured.not_modified:,}",
                                    ]
                                ],
                            )
                        )
                sections.append(
                    (
                        f"Dashboard: {seeded['districts']:,} districts, {seeded['jobs']:,} jobs, "
                        f"{options['clients']} concurrent signed-in clients",
                        report.table(
                            [
                                "page",
                                "requests",
                                "p50 ms",
                                "p95 ms",
                                "max ms",
                                "req/s",
                                "304s",
                                "job progress writes",
                                "server CPU ms/req",
                                "PostgreSQL CPU ms/req",
                                "clients' CPU ms/req (share)",
                                "p95 < 100 ms",
                            ],
                            latency_rows,
                        ),
                    )
                )
                cache_note = (
                    f"CACHE_URL {options['cache_url']} (sessions read through Redis; the run's keys deleted afterwards)"
                    if cache_env
                    else "no CACHE_URL (sessions in the database, read through process memory for at most "
                    "2 s; caches in process memory)"
                )
                conf = runpy.run_path(str(REPO / dashboard.GUNICORN_CONF))
                notes.append(
                    f"gunicorn conversion.wsgi with {dashboard.GUNICORN_CONF} ({conf['workers']} "
                    f"{conf['worker_class']} workers on this {os.cpu_count()}-core machine, as scripts/start "
                    f"runs it) on 127.0.0.1, DEBUG off, {cache_note}. The clients run on the same machine "
                    "and share its cores with the server: each is a thread with an http.client connection "
                    "(kept alive when the server allows it; sync workers close it after each answer), signed in "
                    "through the login form, checking every answer's content; a 304 is answered from "
                    "the copy the client kept, as a browser does. CPU per request is measured over the "
                    "timed requests only (gunicorn workers, the PostgreSQL backends of the scratch "
                    "database, the client process); the share is the clients' part of those three."
                )
                notes.append(
                    "The polled job runs as a worker leaves it (started before the seed, requested by the "
                    "consultant) and moves while it is polled: its progress and heartbeat are written "
                    f"every {PROGRESS_INTERVAL_SECONDS} s, as jobs.Progress writes them (the count is "
                    "the 'job progress writes' column). A browser's poll gets 304 while the row is "
                    "unchanged (the elapsed time ticks in the browser); the last row has every poll "
                    "rendered in full, as for a client that kept no copy."
                )
            if not options["skip_fleet"]:
                fleet_sections, fleet_notes = fleet.bench(options, say=say)
                sections += fleet_sections
                notes += fleet_notes
        finally:
            scratchdb.drop(url)
            say(f"scratch database {options['database']} dropped")
        command = "python manage.py bench" + (" " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else "")
        text = report.markdown(command, sections, notes)
        report.write(Path(options["output"]), text)
        self.stdout.write(text)

    @staticmethod
    def _csv_row(students: int, built: dict) -> list[str]:
        return [
            f"{students:,}",
            f"{built['rows']:,}",
            f"{built['rows'] / built['build_seconds']:,.0f} ({built['build_seconds']:.1f} s)",
            f"{built['rows'] / built['build_cpu_seconds']:,.0f}",
            f"{built['zip_bytes'] / 2**20:.1f}",
            f"{built['peak_rss_mb']:.0f}",
            report.mark(built["rows"] >= 100_000 * built["build_seconds"]),
            report.mark(built["peak_rss_mb"] < RSS_LIMIT_MB),
        ]

    def _ingest_only(self, sizes: list[int], files: dict, options: dict, say) -> None:
        """Runs of (b) and (a), alternating, so a busy moment of the shared machine falls on both alike.

        Beside wall-clock rates, each run's CPU seconds in the measuring process: on a machine whose other
        users come and go, the CPU ratio moves far less than the wall-clock one (the product's figure leaves
        out PostgreSQL's own CPU, which runs beside it on the other core).
        """
        url = scratchdb.scratch_url(options["database"])
        rows = []
        say(f"scratch database {options['database']}: creating and migrating")
        scratchdb.create(url)
        try:
            for students in sizes:
                args = {"files": files[students].to_json()}
                for run in range(1, options["repeat"] + 1):
                    bare = run_child("bare", args, database_url=url)
                    product = run_child("product", args, database_url=url)
                    a, b = product["objects"] / product["seconds"], bare["objects"] / bare["seconds"]
                    rows.append(
                        [
                            f"{students:,}",
                            str(run),
                            f"{a:,.0f} ({product['seconds']:.1f} s)",
                            f"{b:,.0f} ({bare['seconds']:.1f} s)",
                            f"{a / b:.0%} ({report.mark(a >= 0.5 * b)})",
                            f"{product['cpu_seconds']:.1f} / {bare['cpu_seconds']:.1f}",
                            f"{bare['cpu_seconds'] / product['cpu_seconds']:.0%}",
                            f"{product['finish_seconds']:.2f}",
                            f"{product['peak_rss_mb']:.0f}",
                        ]
                    )
                    say(report.table(INGEST_ONLY_HEADER, rows[-1:]))
        finally:
            scratchdb.drop(url)
            say(f"scratch database {options['database']} dropped")
        self.stdout.write(report.table(INGEST_ONLY_HEADER, rows))


INGEST_ONLY_HEADER = [
    "students",
    "run",
    "(a) product obj/s",
    "(b) bare lxml obj/s",
    "a/b (target ≥ 50%)",
    "CPU s (a) / (b)",
    "a/b in CPU",
    "finish_snapshot s",
    "(a) peak RSS MB",
]
