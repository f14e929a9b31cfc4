"""Every option the bench command reads is one it declares (a merge once dropped --cache-url, and the bench's
dashboard part crashed with a KeyError after its ingest had run for minutes)."""

from __future__ import annotations

import inspect
import re

from conversion.management.commands import bench


def test_every_option_the_bench_reads_is_declared():
    command = bench.Command()
    parser = command.create_parser("manage.py", "bench")
    declared = {action.dest for action in parser._actions}
    read = set(re.findall(r"""options\[["']([a-z_]+)["']\]""", inspect.getsource(bench)))
    assert read, "the pattern found no option reads: the test no longer sees the command's code"
    assert read <= declared, f"read but not declared: {sorted(read - declared)}"
