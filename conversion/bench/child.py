"""One measurement in a process of its own: ``python -m conversion.bench.child TASK ARGS_JSON RESULT_PATH``.

The parent reads the child's peak RSS from os.wait4; the child writes its figures as JSON to RESULT_PATH.
Only the tasks that need the database set Django up, so the bare-lxml ceiling carries no Django weight.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "conversion.settings")
    import django

    django.setup()


def main(task: str, args: dict) -> dict:
    from conversion.bench.datafiles import PullFiles

    if task == "bare":
        from conversion.bench import ingest_variants

        return ingest_variants.bare(PullFiles.from_json(args["files"]))
    if task == "bare_whole":
        from conversion.bench import ingest_variants

        return ingest_variants.bare_whole(PullFiles.from_json(args["files"]))
    _django()
    if task == "product":
        from conversion.bench import ingest_variants

        return ingest_variants.product(PullFiles.from_json(args["files"]))
    if task == "naive":
        from conversion.bench import ingest_variants

        return ingest_variants.naive(PullFiles.from_json(args["files"]), args["sample"])
    if task == "csv_and_nightly":
        from conversion.bench import district_checks

        return district_checks.csv_and_nightly(args["snapshot"])
    if task == "csv_build":
        from conversion.bench import district_checks

        return district_checks.csv_build(args["snapshot"])
    if task == "mapping_users":
        from conversion.bench import district_checks

        return district_checks.mapping_users(args["snapshot"])
    if task == "seed_dashboard":
        from conversion.bench import dashboard

        return dashboard.seed(args["districts"])
    if task == "fleet":
        from conversion.bench import fleet

        return fleet.run(args)
    raise SystemExit(f"unknown task {task}")


if __name__ == "__main__":
    task, raw, out = sys.argv[1:4]
    Path(out).write_text(json.dumps(main(task, json.loads(raw))))
