"""Submitting a Canvas SIS import exactly once, even when the worker dies around the upload.

Before the upload the job records that it is submitting and under which file name (unique per job); the
import id is recorded as soon as Canvas answers. A rerun that finds an id polls that import; one that
finds only "submitting" first looks in Canvas's list of recent imports for its file name, and uploads
again only when Canvas never got the first one. An upload that fails ambiguously (5xx, timeout) is
handled the same way at once, a bounded number of times.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from canvas.client import CanvasClient
from canvas.errors import CanvasError, CanvasServerError
from canvas.models import SisImport
from django.conf import settings
from django.utils import timezone

from conversion.jobs import JobCancelled, JobFailed, Progress

SetState = Callable[[dict], None]
UPLOAD_ATTEMPTS = 3


def upload_name(job_id: int, purpose: str) -> str:
    return f"{purpose}-job{job_id}.zip"


def find_submitted(canvas: CanvasClient, account: str, file_name: str, since: dt.datetime) -> SisImport | None:
    for sis_import in canvas.iter_sis_imports(account, created_since=since - dt.timedelta(minutes=5)):
        names = {a.get("display_name") or a.get("filename") for a in sis_import.raw.get("csv_attachments") or []}
        if file_name in names:
            return sis_import
    return None


def submit_once(canvas: CanvasClient, account: str, path: Path, *, state: dict, save: SetState, file_name: str,
                **params) -> int:
    """The id of this job's import, uploading `path` only if Canvas does not have it yet."""
    if state.get("import_id"):
        return int(state["import_id"])
    if state.get("submitting_at"):
        found = find_submitted(canvas, account, file_name, dt.datetime.fromisoformat(state["submitting_at"]))
        if found is not None:
            save({"import_id": found.id})
            return found.id
    started = timezone.now()
    save({"submitting_at": started.isoformat(), "file_name": file_name})
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            created = canvas.create_sis_import(account, path, file_name=file_name, **params)
        except CanvasServerError:
            # A 5xx or a timeout on the upload: Canvas may or may not have the import, and may still be
            # creating it. Give it a moment, then look, so an import Canvas did take is adopted instead of
            # being sent twice.
            time.sleep(min(2 ** attempt, 30))
            found = find_submitted(canvas, account, file_name, started)
            if found is not None:
                save({"import_id": found.id})
                return found.id
            if attempt == UPLOAD_ATTEMPTS:
                raise
        else:
            save({"import_id": created.id})
            return created.id
    raise AssertionError("unreachable")


def wait(canvas: CanvasClient, account: str, import_id: int, progress: Progress, *, label: str,
         poll_interval: float = 1.0, limit: float | None = None) -> SisImport:
    """Poll the import to a terminal state, mirroring Canvas's progress into the job's bar.

    Bounded in wall-clock time (CANVAS_IMPORT_WAIT_SECONDS, counted from the first poll of this job, so a
    rerun after a killed worker does not start the count again), and stopped by a consultant's cancel at the
    next poll. Either way the import is aborted in Canvas (best effort), so it cannot apply later unseen.
    """
    limit = settings.CANVAS_IMPORT_WAIT_SECONDS if limit is None else limit
    started = progress.job.detail.get("import_wait_started")
    if started is None:
        started = time.time()
        progress.update(detail={"import_wait_started": started}, force=True)
    last_seen: tuple[str, int] | None = None
    while True:
        current = canvas.get_sis_import(account, import_id)
        try:
            if (current.workflow_state, current.progress) != last_seen:
                last_seen = (current.workflow_state, current.progress)
                progress.update(current=current.progress, total=100, force=True,
                                message=f"{label}: Canvas import {import_id} {current.workflow_state} "
                                        f"({current.progress}%)")
            else:
                progress.check()
        except JobCancelled:
            if not current.is_terminal:
                _abort(canvas, account, import_id, progress)
            raise
        if current.is_terminal:
            return current
        if time.time() - started >= limit:
            _abort(canvas, account, import_id, progress)
            raise JobFailed(
                f"{label}: Canvas import {import_id} was still {current.workflow_state} at {current.progress}% after "
                f"{limit / 60:g} minutes, the longest this job waits; it was aborted in Canvas. Look at the "
                "account's SIS imports in Canvas (a queue of imports ahead of it, or a stuck one), then start the job "
                "again.")
        time.sleep(poll_interval)


def _abort(canvas: CanvasClient, account: str, import_id: int, progress: Progress) -> None:
    try:
        canvas.abort_sis_import(account, import_id)
    except CanvasError as exc:
        progress.job.detail["abort_failed"] = str(exc)[:300]
    else:
        progress.job.detail["aborted_import"] = import_id
