"""The benchmark's table: printed, and written into BENCHMARKS.md with the command that produced it."""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path


def mark(ok: bool) -> str:
    return "met" if ok else "MISSED"


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=False)) + " |"

    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def markdown(command: str, sections: list[tuple[str, str]], notes: list[str]) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {when} ({os.cpu_count()} cores, Python {platform.python_version()}, "
        "PostgreSQL on 127.0.0.1, scratch database created and dropped by the command). "
        "Figures are measured in that one run; nothing here is typed in by hand.",
        "",
    ]
    for title, body in sections:
        parts += [f"## {title}", "", body, ""]
    if notes:
        parts += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(parts)


def write(path: Path, text: str) -> None:
    path.write_text(text)
