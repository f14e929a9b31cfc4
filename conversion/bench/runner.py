"""Running a child measurement and collecting its figures with its own peak RSS (ru_maxrss of the child)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def keys_env() -> dict[str, str]:
    """This process's keys and peer allowance for a child on PostgreSQL with DEBUG off (production-like settings
    refuse to start without keys; the simulators the bench drives listen on loopback)."""
    from django.conf import settings

    return {
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "PEER_ALLOWED_NETWORKS": os.environ.get("PEER_ALLOWED_NETWORKS", "loopback"),
    }


def child_env(database_url: str) -> dict[str, str]:
    """The environment of a process the bench starts: this one's, with the keys, the database and DEBUG off."""
    return {**os.environ, **keys_env(), "DATABASE_URL": database_url, "DJANGO_DEBUG": "0"}


def child_command(task: str, args: dict, out: Path) -> list[str]:
    """The command running one bench task (conversion/bench/child.py), its figures written to `out`."""
    return [sys.executable, "-m", "conversion.bench.child", task, json.dumps(args), str(out)]


def run_child(task: str, args: dict, *, database_url: str) -> dict:
    """Run one task in a fresh interpreter; its figures plus `peak_rss_mb` (Linux reports ru_maxrss in KiB)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        proc = subprocess.Popen(child_command(task, args, out), cwd=REPO, env=child_env(database_url))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark child {task} exited with {proc.returncode}")
        return {**json.loads(out.read_text()), "peak_rss_mb": usage.ru_maxrss / 1024}
