"""Step 6: the sync to Canvas — nightly at midnight Mountain time, or "sync now".

1. pull the zone into a snapshot (the same resumable pull as step 2);
2. build the SIS import CSVs (users under their DCID) and their fingerprint;
3. unchanged since the last successful sync: skipped ("no new data, no sync");
4. a large share of enrollments would go: held for approval, nothing sent;
5. otherwise submitted once, with the district's diffing data set, and polled to the end; Canvas's
   counts, warnings and errors are kept on the SyncRun.

A *remaster* sends the whole package without diffing (`full_import_reason` says why). Diffing sends only the rows
that changed since the data set's previous import (canvas-lms app/models/sis_batch.rb `generate_diff`), so it never
repairs what changed in Canvas behind it: a restore_states of one of our imports, a rollback of the remap, hand
edits. A remaster runs on demand (a consultant, from the sync history, with a reason: `start_remaster`), and a
nightly sync goes whole by itself after a restore or a rollback, and when its CSV headers differ from the last
sync's. It is sent *without* diffing_data_set_identifier rather than with diffing_remaster_data_set:
`generate_diff` picks the newest succeeded import of the data set that was diffed (or remastered) as the next
baseline, so an import outside the data set leaves the baseline where it was, and the next nightly still drops
(diffing_drop_status) every row that left the SIS since then; a remaster inside the data set would become the
baseline and those drops would never be sent. Sent whole, nothing is dropped, so a remaster is never held.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import struct
import tempfile
import zipfile
from pathlib import Path

from canvas.csv_formats import detect_kind

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from conversion import audit, jobs
from conversion.jobs import JobFailed, Progress
from conversion.models import (
    SYNC_SUCCESS_STATES,
    JobLost,
    Approval,
    ApprovalKind,
    Artifact,
    Conversion,
    Job,
    JobKind,
    JobState,
    SyncRun,
    SyncState,
)
from conversion.models.conversion import note_problem
from conversion.rules import Role, role_in
from conversion.spreadsheet import SafeWriter
from conversion.services import canvas_import, pull
from conversion.services.canvas_api import canvas_for
from conversion.services.diagnostics import refreshes_diagnostics
from conversion.models import RosterPolicy
from conversion.services.rollover import conclude_year, crosses_school_years
from conversion.services.roster import DCID, Roster
from conversion.services.sis_csv import build_package, cached_package, remember_package

log = logging.getLogger(__name__)

# Share of the last sync's enrollments that may disappear in one night before a person must look.
DELETION_THRESHOLD = getattr(settings, "SYNC_DELETION_THRESHOLD", 0.10)


def diffing_data_set(conversion: Conversion) -> str:
    return f"sifconvert-{conversion.district.slug}-{conversion.school_year}"


def last_successful(conversion: Conversion, *, before: SyncRun | None = None) -> SyncRun | None:
    runs = conversion.sync_runs.filter(state__in=SYNC_SUCCESS_STATES)
    if before is not None:
        runs = runs.exclude(pk=before.pk)
    return runs.order_by("-finished_at", "-id").first()


def pack_keys(keys: set[int]) -> bytes:
    return struct.pack(f">{len(keys)}Q", *sorted(keys))


def unpack_keys(blob: bytes) -> set[int]:
    return set(struct.unpack(f">{len(blob) // 8}Q", blob))


def _artifact(run: SyncRun, kind: str) -> Artifact | None:
    return Artifact.objects.filter(conversion=run.conversion, job=run.job, kind=kind).order_by("-id").first()


def sync_run_for(job: Job) -> SyncRun:
    params = job.params or {}
    business_date = params.get("business_date")
    run, _ = SyncRun.objects.get_or_create(
        job=job,
        defaults={"conversion": job.conversion, "trigger": params.get("trigger", "manual"),
                  "business_date": dt.date.fromisoformat(business_date) if business_date else None},
    )
    return run


def _finish(run: SyncRun, state: str, **fields) -> None:
    for name, value in fields.items():
        setattr(run, name, value)
    run.state = state
    run.finished_at = timezone.now()
    run.save()


# Canvas states of an import whose changes were (partly) undone (sis_batch.rb `restore_states_for_batch`).
RESTORED_STATES = frozenset({"restoring", "restored", "partially_restored"})
RESTORE_LOOKBACK = dt.timedelta(days=60)


def run_remaster(job: Job, progress: Progress) -> None:
    """A consultant's remaster: the whole package, without diffing (see the module's docstring)."""
    _run(job, progress, full_reason=(job.params or {}).get("reason") or "requested")


@refreshes_diagnostics  # a nightly pull shows the same symptoms as a step-2 pull
def run_sync(job: Job, progress: Progress) -> None:
    _run(job, progress, full_reason="")


def _run(job: Job, progress: Progress, *, full_reason: str) -> None:
    run = sync_run_for(job)
    if run.state not in (SyncState.RUNNING, SyncState.SUBMITTED):
        return  # a rerun of a finished sync changes nothing (a submitted one is polled to its end)
    if full_reason and not run.full_import_reason:
        run.full_import_reason = full_reason[:200]
        run.save(update_fields=["full_import_reason"])
    try:
        _build_and_send(run, job, progress)
    except JobLost:
        raise  # another worker holds the job now: the record is its to finish
    except Exception:
        # The job ends here (failed or cancelled): its sync record ends with it, never left "Running" or
        # "Submitted". A killed worker (no exception reaches here) leaves it for the rerun to resume.
        # (Why it failed is the job's error, shown beside it.)
        SyncRun.objects.filter(pk=run.pk, state__in=(SyncState.RUNNING, SyncState.SUBMITTED)).update(
            state=SyncState.FAILED, finished_at=timezone.now())
        raise


def _build_and_send(run: SyncRun, job: Job, progress: Progress) -> None:
    conversion = job.conversion
    released_from = (job.params or {}).get("release_of")
    with tempfile.TemporaryDirectory() as tmp:
        package_path = Path(tmp) / "sis_import.zip"
        if run.canvas_import_id or job.detail.get("submitting_at"):
            _submit_and_wait(run, job, progress, _artifact(run, "sync_package").content)
            return
        if released_from:
            held = SyncRun.objects.get(pk=released_from, conversion=conversion)
            package = _artifact(held, "sync_package")
            if package is None:
                raise JobFailed("The held sync's package is gone; run a new sync instead.")
            run.snapshot, run.fingerprint, run.counts = held.snapshot, held.fingerprint, held.counts
            run.save(update_fields=["snapshot", "fingerprint", "counts"])
            keys = _artifact(held, "enrollment_keys")
            _keep_package(run, bytes(package.content), bytes(keys.content) if keys else None, rows=package.rows)
            _submit_and_wait(run, job, progress, bytes(package.content))
            return

        progress.update(message="Pulling from the zone", force=True)
        snapshot = pull.pull(conversion, job=job, progress=progress)
        run.snapshot = snapshot
        previous = last_successful(conversion, before=run)
        if not run.full_import_reason:
            reason = _remaster_needed(conversion, run)
            if reason:
                run.full_import_reason = reason
                run.save(update_fields=["full_import_reason"])
        # Same records as a snapshot whose package is known: the fingerprint is known without a rebuild.
        known = cached_package(snapshot, scheme=DCID)
        if not run.full_import_reason and previous and known and previous.fingerprint == known["fingerprint"]:
            run.fingerprint, run.counts, run.skipped_users = known["fingerprint"], known["counts"], known["skipped"]
            run.save(update_fields=["snapshot", "fingerprint", "counts", "skipped_users"])
            _skip(run, previous, progress)
            return
        progress.update(message="Building the SIS import files", force=True)
        package = build_package(Roster.for_snapshot(snapshot), package_path, scheme=DCID,
                                authentication_provider_id=conversion.district.canvas_authentication_provider_id,
                                parent_account_id=conversion.district.canvas_parent_account_id)
        remember_package(snapshot, package, scheme=DCID)
        run.fingerprint, run.counts, run.skipped_users = package.fingerprint, package.counts, package.skipped[:200]
        run.save(update_fields=["snapshot", "fingerprint", "counts", "skipped_users"])

        if not run.full_import_reason:
            headers = _headers_changed(previous, package_path)
            if headers:
                run.full_import_reason = headers
                run.save(update_fields=["full_import_reason"])
        if not run.full_import_reason and previous and previous.fingerprint == package.fingerprint:
            _skip(run, previous, progress)
            return

        content = package_path.read_bytes()
        _keep_package(run, content, pack_keys(package.enrollment_keys), rows=sum(package.counts.values()))
        # A remaster drops nothing, and the rollover night starts a new year's data set: neither is held.
        if previous and not run.full_import_reason and not crosses_school_years(previous, snapshot):
            before = _artifact(previous, "enrollment_keys")
            if before is not None:
                old_keys = unpack_keys(bytes(before.content))
                removed = len(old_keys - package.enrollment_keys)
                run.previous_enrollments, run.removed_enrollments = len(old_keys), removed
                run.save(update_fields=["previous_enrollments", "removed_enrollments"])
                if old_keys and removed / len(old_keys) > DELETION_THRESHOLD:
                    reason = (f"{removed:,} of {len(old_keys):,} enrollments ({removed / len(old_keys):.0%}) would be "
                              f"dropped, more than the {DELETION_THRESHOLD:.0%} allowed without a look.")
                    _finish(run, SyncState.HELD, held_reason=reason)
                    audit.record(district=conversion.district, conversion=conversion, user=None,
                                 action="sync_held", summary="Sync held for approval", reason=reason,
                                 detail={"sync_run": run.pk})
                    progress.update(message="Held for approval: " + reason, force=True)
                    return
        if previous and crosses_school_years(previous, snapshot):  # the rollover night: conclude the old year
            conclude_year(job, progress, previous)
        _submit_and_wait(run, job, progress, content)


def _skip(run: SyncRun, previous: SyncRun, progress: Progress) -> None:
    _finish(run, SyncState.SKIPPED)
    progress.update(message=f"No new data since the sync of {previous.finished_at:%b %-d}: nothing sent", force=True)


def _keep_package(run: SyncRun, content: bytes, keys: bytes | None, *, rows: int) -> None:
    """Keep what this run sends (a rerun resends exactly it) and its enrollment keys (the next run's baseline)."""
    Artifact.objects.create(conversion=run.conversion, job=run.job, kind="sync_package",
                            name=f"sis_import-job{run.job_id}.zip", content_type="application/zip", content=content,
                            rows=rows)
    if keys is not None:
        Artifact.objects.create(conversion=run.conversion, job=run.job, kind="enrollment_keys", name="keys",
                                content_type="application/octet-stream", content=keys)


def _submit_and_wait(run: SyncRun, job: Job, progress: Progress, content: bytes) -> None:
    conversion = run.conversion
    account = conversion.district.canvas_account_id or "1"

    def save(values: dict) -> None:
        job.merge_detail(values)
        if values.get("import_id"):
            run.canvas_import_id = values["import_id"]
            run.submitted_at = run.submitted_at or timezone.now()
            run.state = SyncState.SUBMITTED
            run.save(update_fields=["canvas_import_id", "submitted_at", "state"])

    # A remaster goes outside the data set, so Canvas neither diffs it nor takes it as the next baseline.
    diffing = {} if run.full_import_reason else {
        "diffing_data_set_identifier": diffing_data_set(conversion), "diffing_drop_status": RosterPolicy.for_district(conversion.district).drop_status}  # district's choice
    with canvas_for(conversion.district) as canvas:
        import_id = canvas_import.submit_once(
            canvas, account, content, state=job.detail, save=save,
            token=canvas_import.job_token(job.pk, "remaster" if run.full_import_reason else "sync"), **diffing,
        )
        result = canvas_import.wait(canvas, account, import_id, progress, label="Sync")
        messages = list(canvas.iter_sis_import_errors(account, import_id))
    report = io.StringIO(newline="")
    writer = SafeWriter(report)  # for people, opened in a spreadsheet: Canvas's texts must not start formulas
    writer.writerow(["file", "row", "message", "row_info"])
    writer.writerows([m.file or "", m.row or "", m.message, m.row_info or ""] for m in messages)
    if messages:
        Artifact.objects.create(conversion=conversion, job=job, kind="sync_errors", name=f"sync-{run.pk}-messages.csv",
                                content=report.getvalue().encode(), rows=len(messages))
    errors = int(result.counts.get("error_count") or len(result.processing_errors))
    warnings = int(result.counts.get("warning_count") or len(result.processing_warnings))
    state = {"imported": SyncState.IMPORTED, "imported_with_messages": SyncState.IMPORTED_WITH_MESSAGES}.get(
        result.workflow_state, SyncState.FAILED)
    _finish(run, state, canvas_state=result.workflow_state, canvas_progress=result.progress,
            canvas_counts=result.counts, warning_count=warnings, error_count=errors)
    progress.update(message=f"Canvas import {import_id}: {result.workflow_state}", force=True)
    if state == SyncState.FAILED:
        raise JobFailed(f"Canvas import {import_id} ended {result.workflow_state} with {errors} error(s).")


def _last_full(conversion: Conversion) -> SyncRun | None:
    return (conversion.sync_runs.filter(state__in=SYNC_SUCCESS_STATES).exclude(full_import_reason="")
            .order_by("-finished_at", "-id").first())


def _remaster_needed(conversion: Conversion, run: SyncRun) -> str:
    """Why this nightly must go whole: a remap rollback or a Canvas restore since the last full import."""
    last_full = _last_full(conversion)
    since = last_full.submitted_at if last_full else None
    if not conversion.sync_runs.filter(state__in=SYNC_SUCCESS_STATES).exclude(pk=run.pk).exists():
        return ""  # the first sync: Canvas has no baseline, so it imports it whole anyway
    rollbacks = conversion.jobs.filter(kind=JobKind.REMAP_ROLLBACK, state=JobState.SUCCEEDED)
    if since is not None:
        rollbacks = rollbacks.filter(finished_at__gt=since)
    if rollbacks.exists():
        return "the remap was rolled back since the last full import"
    ours = diffing_data_set(conversion)
    first = conversion.sync_runs.exclude(submitted_at=None).order_by("submitted_at").values_list(
        "submitted_at", flat=True).first()
    if first is None:
        return ""
    # Restores are of recent imports; looking back RESTORE_LOOKBACK keeps the list a page or two long.
    look_from = max(first, timezone.now() - RESTORE_LOOKBACK) - dt.timedelta(minutes=5)
    account = conversion.district.canvas_account_id or "1"
    try:
        # One try, no retries: a night with nothing to send must not fail because Canvas is down for this look.
        with canvas_for(conversion.district, max_retries=0) as canvas:
            for sis_import in canvas.iter_sis_imports(account, created_since=look_from):
                if sis_import.diffing_data_set_identifier != ours or sis_import.workflow_state not in RESTORED_STATES:
                    continue
                # A restore changes the import's state, so its updated_at says when (sis_batch.rb `as_json`).
                restored_at = parse_datetime(sis_import.raw.get("updated_at") or "")
                if since is None or restored_at is None or restored_at > since:
                    return f"Canvas import {sis_import.id} was restored ({sis_import.workflow_state})"
    except JobFailed as exc:
        # The restore is still there tomorrow (it is looked for since the last full import): ask again then.
        log.warning("sync of %s: could not look for restored imports: %s", conversion, exc)
    return ""


def _headers(content: bytes | Path) -> dict[str, list[str]]:
    """{kind: header} of each CSV in a package (file names vary; the kind comes from the header)."""
    source = io.BytesIO(content) if isinstance(content, bytes) else content
    result = {}
    with zipfile.ZipFile(source) as archive:
        for name in archive.namelist():
            with archive.open(name) as entry:
                header = next(csv.reader(io.TextIOWrapper(entry, encoding="utf-8", newline="")), [])
            header = [h.strip().lower() for h in header]
            result[detect_kind(header) or name] = header
    return result


def _headers_changed(previous: SyncRun | None, package_path: Path) -> str:
    """Which files' headers differ from the last successful sync's (diffed or whole).

    Compared with the last sync of either kind, not with Canvas's baseline: a remaster leaves the baseline where
    it was, so against the baseline every night after a header change would go whole; once one remaster sent
    the new headers, the next nightly is diffed again (Canvas imports a file whose header changed since the
    baseline whole, then takes that import as the baseline)."""
    package = _artifact(previous, "sync_package") if previous else None
    if package is None:
        return ""
    before, now = _headers(bytes(package.content)), _headers(package_path)
    changed = sorted(kind for kind in now if kind in before and before[kind] != now[kind])
    if changed:
        return "CSV headers changed since the last sync: " + ", ".join(changed)
    return ""


@transaction.atomic
def start_remaster(conversion: Conversion, *, user, reason: str) -> Job:
    """A consultant asks for a remaster from the sync history; who, when and why go to the audit log."""
    Conversion.objects.select_for_update().filter(pk=conversion.pk).first()  # two clicks: one job
    problems = workflow_problems(conversion, user)
    if not reason.strip():
        problems.append("Say why (a reason is required).")
    if problems:
        raise PermissionError(" ".join(problems))
    try:
        job, created = jobs.start_job(conversion, JobKind.REMASTER, user=user,
                                      params={"trigger": "remaster", "reason": reason.strip()})
    except jobs.JobAlreadyActive:  # a parallel press won the race: the database refused this one
        raise PermissionError(jobs.ALREADY_ACTIVE) from None
    audit.record(district=conversion.district, conversion=conversion, user=user, action="remaster_requested",
                 summary="Asked for a full sync to Canvas (remaster)", reason=reason.strip(),
                 detail={"job": job.pk})
    return job


def workflow_problems(conversion: Conversion, user) -> list[str]:
    from conversion import workflow

    return workflow.job_problems(conversion, JobKind.REMASTER, user)


@transaction.atomic
def release_held_sync(run: SyncRun, *, user, note: str = "") -> Job:
    """A consultant or the district admin looked at a held sync and lets it go to Canvas."""
    conversion = run.conversion
    if role_in(user, conversion.district) not in (Role.CONSULTANT, Role.DISTRICT_ADMIN):
        raise PermissionError("Only a consultant or the district's admin can release a held sync.")
    run = SyncRun.objects.select_for_update().get(pk=run.pk)
    if run.state != SyncState.HELD:
        raise ValueError("This sync is not held.")
    if note_problem(note):
        raise ValueError(note_problem(note))
    Approval.objects.create(conversion=conversion, kind=ApprovalKind.SYNC_RELEASE, subject=f"sync_run:{run.pk}",
                            fingerprint=run.fingerprint, approved_by=user, note=note)
    job, _ = jobs.start_job(conversion, JobKind.SYNC, user=user,
                            params={"trigger": "release", "release_of": run.pk},
                            idempotency_key=f"release:{run.pk}")
    run.held_reason += f"\nReleased by {user.get_username()}."
    run.save(update_fields=["held_reason"])
    audit.record(district=conversion.district, conversion=conversion, user=user, action="release_sync",
                 summary="Released a held sync (approval)", reason=note, detail={"sync_run": run.pk, "job": job.pk})
    return job
