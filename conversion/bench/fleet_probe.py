"""Loaded into the fleet bench's workers (`celery worker --include conversion.bench.fleet_probe`): each task's CPU
seconds (of the thread that ran it: `time.thread_time`, right for both the prefork and the threads pool) and wall
seconds, one JSON line per task in FLEET_PROBE_DIR/<pid>.jsonl. A task retried for want of a ZIS slot is written
with state RETRY, so the bench counts the retries and what they cost.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from celery.signals import task_postrun, task_prerun

_started: dict[str, tuple[float, float]] = {}
_lock = threading.Lock()


@task_prerun.connect
def _before(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = (time.thread_time(), time.monotonic())


@task_postrun.connect
def _after(task_id: str | None = None, task: Any = None, kwargs: dict | None = None, state: str = "", **_: Any) -> None:
    begun = _started.pop(task_id or "", None)
    folder = os.environ.get("FLEET_PROBE_DIR")
    if begun is None or not folder:
        return
    line = {
        "task": getattr(task, "name", ""),
        "job": (kwargs or {}).get("job_id"),
        "state": state,
        "cpu": time.thread_time() - begun[0],
        "wall": time.monotonic() - begun[1],
    }
    with _lock, (Path(folder) / f"{os.getpid()}.jsonl").open("a") as out:
        out.write(json.dumps(line) + "\n")
