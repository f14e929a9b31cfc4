"""Submitting a Canvas SIS import exactly once, even when the worker dies or Canvas fails around the upload.

Before the upload the job records that it is submitting; the import id is recorded as soon as Canvas answers.
A rerun that finds an id polls that import. One that finds only "submitting" (or an upload that failed
ambiguously: a 5xx or a timeout) first asks Canvas whether it got the upload, and uploads again only when
Canvas did not.

What real Canvas shows of an import, and so what recognition can rely on:

- The name the product gives the upload is not kept: `SisBatch.create_with_attachment`
  (canvas-lms app/models/sis_batch.rb) stores the zip as "sis_upload_<id>.zip".
- `csv_attachments` lists the CSVs *inside* the zip, each under its base name (lib/sis/csv/import_refactored.rb,
  `prepare` → `create_batch_attachment` → `File.basename`; a users CSV with password columns becomes
  "<name>_filtered.csv", `create_filtered_csv`), and `sis_import_json` (lib/api/v1/sis_import.rb) adds the key only
  when there are any. They are made when the import *starts*: while it waits in the queue (`initializing`,
  `created`) the list is absent.
- Every import carries `user` (the API user who created it, lib/api/v1/sis_import.rb `sis_import_json`),
  `created_at`, `diffing_data_set_identifier`, `batch_mode`, `skip_deletes`, `override_sis_stickiness`,
  `change_threshold` and `data.import_type` (app/models/sis_batch.rb `as_json`).

So every CSV the product sends is named after its job (`job_token`), and an import is this job's when a CSV
Canvas lists carries the token. An import still queued cannot be told apart by its files: one that matches this
job's API user, options and time is *ambiguous*, and the job waits (a bounded number of polls) for it to start
and show its files. If it never starts in that time the job stops with `UploadUndecided` rather than guess:
uploading again could import twice, adopting a stranger's import could skip ours. A rerun asks again.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, TypedDict, Unpack

from django.conf import settings
from django.utils import timezone

from canvas.client import CanvasClient
from canvas.errors import CanvasError, CanvasServerError
from canvas.models import SisImport
from conversion.jobs import JobCancelled, JobFailed, Progress
from conversion.services.canvas_api import canvas_for

SetState = Callable[[dict[str, Any]], None]


class ImportOptions(TypedDict, total=False):
    """The options of CanvasClient.create_sis_import the product's jobs send (none: a plain import)."""

    diffing_data_set_identifier: str
    diffing_drop_status: str
    change_threshold: int


UPLOAD_ATTEMPTS = 3
# Canvas's clock and ours may differ; an import created this long before our upload may still be ours.
CLOCK_SLACK = dt.timedelta(minutes=5)
# How long a job waits for an ambiguous queued import to start (Canvas runs an account's imports one at a time,
# app/models/sis_batch.rb `process_all_for_account`, so one may wait behind a long import). Counted in polls.
UNDECIDED_POLL_SECONDS = 15.0
UNDECIDED_MAX_WAIT_SECONDS = 15 * 60.0

# sis_batch.rb `not_started` scope: waiting in the queue, no files listed yet.
QUEUED_STATES = frozenset({"initializing", "created"})


class UploadUndecided(JobFailed):
    """Canvas holds a queued import that may be this job's; it did not start in the time allowed."""


def job_token(job_id: int, purpose: str) -> str:
    return f"sifconvert-{purpose}-job{job_id}"


def _token_pattern(token: str) -> re.Pattern:
    # "…-sync-job1.csv" must not match job 12: no letter or digit may touch the token on either side.
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(token)}(?![0-9])")


def name_entries(content: bytes, token: str) -> bytes:
    """The zip with each CSV renamed "<stem>-<token>.csv" (folders dropped: Canvas lists base names only)."""
    source = zipfile.ZipFile(io.BytesIO(content))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.is_dir():
                continue
            path = PurePosixPath(info.filename)
            name = path.name if _token_pattern(token).search(path.name) else f"{path.stem}-{token}{path.suffix}"
            with source.open(info) as src, target.open(name, "w") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
    return out.getvalue()


def single_csv_zip(file_name: str, content: bytes, token: str) -> bytes:
    """One CSV, zipped under a job-named entry (a bare CSV upload is listed under Canvas's own name)."""
    stem = PurePosixPath(file_name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem.stem}-{token}{stem.suffix or '.csv'}", content)
    return out.getvalue()


@dataclass(frozen=True)
class Expected:
    """What Canvas will show of this job's import: the options it was created with, and who created it."""

    token: str
    options: Mapping[str, object]
    user_id: int | None = None

    def listed_files(self, sis_import: SisImport) -> list[str] | None:
        attachments = sis_import.raw.get("csv_attachments")
        if not attachments:
            return None
        return [a.get("display_name") or a.get("filename") or "" for a in attachments] + [
            a.get("filename") or "" for a in attachments
        ]

    def carries_token(self, sis_import: SisImport) -> bool:
        pattern = _token_pattern(self.token)
        return any(pattern.search(name) for name in self.listed_files(sis_import) or [])

    def could_be(self, sis_import: SisImport) -> bool:
        """Same API user (when known) and same options: an import this job may have created."""
        raw = sis_import.raw
        if self.user_id is not None and (raw.get("user") or {}).get("id") not in (None, self.user_id):
            return False
        opts = self.options
        # sis_batch.rb `as_json`: the identifier as sent (nil without diffing); booleans as the controller
        # stored them (sis_imports_api_controller.rb `create`, `value_to_boolean`).
        if (raw.get("diffing_data_set_identifier") or None) != (opts.get("diffing_data_set_identifier") or None):
            return False
        for flag in ("batch_mode", "skip_deletes", "override_sis_stickiness"):
            if bool(raw.get(flag)) != bool(opts.get(flag)):
                return False
        if (raw.get("change_threshold") or None) != (opts.get("change_threshold") or None):
            return False
        import_type = (raw.get("data") or {}).get("import_type")
        return import_type in (None, opts.get("import_type", "instructure_csv"))


def _api_user_id(canvas: CanvasClient) -> int | None:
    try:
        return canvas.get_self().id
    except CanvasError:
        return None  # users/self not answered: match on the options and the time alone


def _decide(
    canvas: CanvasClient, account: str, expected: Expected, since: dt.datetime
) -> tuple[SisImport | None, list[SisImport]]:
    """(this job's import, or None; imports that may be this job's but show no files yet)."""
    undecided = []
    for sis_import in canvas.iter_sis_imports(account, created_since=since - CLOCK_SLACK):
        if sis_import.created_at is not None and sis_import.created_at < since - CLOCK_SLACK:
            continue
        files = expected.listed_files(sis_import)
        if files is not None:
            if expected.carries_token(sis_import):
                return sis_import, []
            continue  # it started and lists other files: someone else's
        if sis_import.workflow_state in QUEUED_STATES or not sis_import.is_terminal:
            # Queued, or started but not yet through `prepare`: its files are not listed yet.
            if expected.could_be(sis_import):
                undecided.append(sis_import)
        # Finished without files (aborted in the queue, failed to unpack): nothing was imported from it.
    return None, undecided


def find_submitted(
    canvas: CanvasClient,
    account: str,
    expected: Expected,
    since: dt.datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = UNDECIDED_POLL_SECONDS,
    max_wait_seconds: float = UNDECIDED_MAX_WAIT_SECONDS,
) -> SisImport | None:
    """This job's import if Canvas has it, None if it surely does not; waits out ambiguous queued imports."""
    waited = 0.0
    while True:
        found, undecided = _decide(canvas, account, expected, since)
        if found is not None or not undecided:
            return found
        if waited >= max_wait_seconds:
            ids = ", ".join(str(i.id) for i in undecided)
            raise UploadUndecided(
                f"Canvas import(s) {ids} are still queued after {waited:.0f} s and may be this job's upload; "
                "nothing was sent again. Run the job again once Canvas has started them."
            )
        sleep(poll_seconds)
        waited += poll_seconds


def submit_once(
    canvas: CanvasClient,
    account: str,
    content: bytes,
    *,
    state: Mapping[str, Any],
    save: SetState,
    token: str,
    sleep: Callable[[float], None] = time.sleep,
    **params: Unpack[ImportOptions],
) -> int:
    """The id of this job's import, uploading `content` (a zip) only if Canvas does not have it yet."""
    if state.get("import_id"):
        return int(state["import_id"])
    content = name_entries(content, token)
    options: dict[str, object] = {k: v for k, v in params.items() if v is not None}
    known: list[Expected] = []

    def expected() -> Expected:  # asked for only when recognition is needed: one request more, then kept
        if not known:
            known.append(Expected(token, options, _api_user_id(canvas)))
        return known[0]

    if state.get("submitting_at"):
        found = find_submitted(
            canvas, account, expected(), dt.datetime.fromisoformat(state["submitting_at"]), sleep=sleep
        )
        if found is not None:
            save({"import_id": found.id})
            return found.id
    started = timezone.now()
    save({"submitting_at": started.isoformat(), "file_name": f"{token}.zip"})
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            created = canvas.create_sis_import(account, content, file_name=f"{token}.zip", **params)
        except CanvasServerError:
            # A 5xx or a timeout on the upload: Canvas may or may not have the import. Give it a moment, then
            # ask, so an import Canvas did take is adopted instead of being sent twice.
            sleep(min(2**attempt, 30))
            found = find_submitted(canvas, account, expected(), started, sleep=sleep)
            if found is not None:
                save({"import_id": found.id})
                return found.id
            if attempt == UPLOAD_ATTEMPTS:
                raise
        else:
            save({"import_id": created.id})
            return created.id
    raise AssertionError("unreachable")


def wait(
    canvas: CanvasClient,
    account: str,
    import_id: int,
    progress: Progress,
    *,
    label: str,
    poll_interval: float = 1.0,
    limit: float | None = None,
) -> SisImport:
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
                progress.update(
                    current=current.progress,
                    total=100,
                    force=True,
                    message=f"{label}: Canvas import {import_id} {current.workflow_state} ({current.progress}%)",
                )
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
                "again."
            )
        time.sleep(poll_interval)


def failure_text(result: SisImport, errors: int, *, label: str = "") -> str:
    """Why a finished import did not succeed, as Canvas means its state.

    `failed` is not `failed_with_messages`: canvas-lms's SisBatch#process (app/models/sis_batch.rb) sets it when an
    exception escapes the import itself (an internal error; the CSV importer ends its own problems
    `failed_with_messages`, row by row). Canvas then reports no row, only data.error_message; rows applied before
    the error stay applied, and generate_diff never takes a failed import as a data set's baseline."""
    prefix = f"{label}: " if label else ""
    if result.workflow_state == "failed":
        cause = str((result.raw.get("data") or {}).get("error_message") or "no message")[:300]
        return (
            f"{prefix}Canvas import {result.id} failed inside Canvas ({cause}). This is an error in Canvas, not "
            "in the district's data: Canvas reported no row. Rows it applied before stopping stay; Canvas does "
            "not diff against a failed import, so the next sync sends every change since the last successful "
            "one. If it happens again, give Canvas support the import id."
        )
    return f"{prefix}Canvas import {result.id} ended {result.workflow_state} with {errors} error(s)."


def _abort(canvas: CanvasClient, account: str, import_id: int, progress: Progress) -> None:
    try:
        canvas.abort_sis_import(account, import_id)
    except CanvasError as exc:
        progress.job.detail["abort_failed"] = str(exc)[:300]
    else:
        progress.job.detail["aborted_import"] = import_id


def send_side_import(
    job: Any, progress: Progress, content: bytes, *, key: str, purpose: str, message: str, label: str, doing: str
) -> int:
    """Submit an import of its own beside a sync's package (the rollover's concluding import, the enrollment
    drops) once, resumable through `job.detail[key]` and the file-name token of `purpose`, and wait for it.
    `message` is the job's progress line, `label` the wait's; JobFailed ("… {doing} ended …") when Canvas does
    not finish it."""
    conversion = job.conversion
    account = conversion.district.canvas_account_id or "1"
    state = dict(job.detail.get(key) or {})

    def save(values: dict) -> None:
        state.update(values)
        job.merge_detail({key: dict(state)})

    progress.update(message=message, force=True)
    with canvas_for(conversion.district) as canvas:
        import_id = submit_once(canvas, account, content, state=state, save=save, token=job_token(job.pk, purpose))
        result = wait(canvas, account, import_id, progress, label=label)
    if not result.succeeded:
        raise JobFailed(f"Canvas import {import_id} {doing} ended {result.workflow_state}.")
    return import_id
