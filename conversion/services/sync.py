"""Step 6: the sync to Canvas — nightly at midnight Mountain time, or "sync now".

1. pull the zone into a snapshot (the same resumable pull as step 2);
2. build the SIS import CSVs (users under their DCID) and their fingerprint;
3. unchanged since the last successful sync: skipped ("no new data, no sync");
4. more than the district's (or a school's) threshold of enrollments would go: held for approval, nothing sent,
   with the list of what it would remove per school (services/removals.py);
5. otherwise submitted once, with the district's diffing data set and Canvas's change_threshold, and polled to the
   end; Canvas's counts, warnings and errors are kept on the SyncRun.

Steps 3-5 are `sync_policy.decide` (pure, with the policy it reads); this module gathers its facts and carries it out.
A run resumes (its submission state is on the SyncRun), sends a released held sync as it is, or runs afresh.

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
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from canvas.csv_formats import detect_kind
from conversion import audit, jobs
from conversion.jobs import JobFailed, Progress
from conversion.models import (
    SYNC_SUCCESS_STATES,
    Approval,
    ApprovalKind,
    Artifact,
    Conversion,
    District,
    Job,
    JobKind,
    JobLost,
    JobState,
    RosterPolicy,
    SyncRun,
    SyncState,
)
from conversion.models.conversion import note_problem
from conversion.rules import can_act_for, can_drive, require
from conversion.services import (
    canvas_import,
    canvas_keep,
    enrollment_drops,
    pull,
    removals,
    sync_policy,
    zis_slots,
)
from conversion.services.canvas_api import canvas_for
from conversion.services.diagnostics import refreshes_diagnostics
from conversion.services.rollover import conclude_year, crosses_school_years
from conversion.services.roster import DCID, Roster
from conversion.services.sis_csv import build_package, cached_package, remember_package
from conversion.services.sync_policy import SyncPolicy
from conversion.spreadsheet import SafeWriter

log = logging.getLogger(__name__)


def diffing_data_set(conversion: Conversion) -> str:
    return f"sifconvert-{conversion.district.slug}-{conversion.school_year}"


def last_successful(conversion: Conversion, *, before: SyncRun | None = None) -> SyncRun | None:
    runs = conversion.sync_runs.filter(state__in=SYNC_SUCCESS_STATES)
    if before is not None:
        runs = runs.exclude(pk=before.pk)
    return runs.order_by("-finished_at", "-id").first()


def _artifact(run: SyncRun, kind: str) -> Artifact | None:
    return Artifact.objects.filter(conversion=run.conversion, job=run.job, kind=kind).order_by("-id").first()


def sync_run_for(job: Job) -> SyncRun:
    params = job.params or {}
    business_date = params.get("business_date")
    run, _ = SyncRun.objects.get_or_create(
        job=job,
        defaults={
            "conversion": job.conversion,
            "trigger": params.get("trigger", "manual"),
            "business_date": dt.date.fromisoformat(business_date) if business_date else None,
        },
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
            state=SyncState.FAILED, finished_at=timezone.now()
        )
        raise


def _build_and_send(run: SyncRun, job: Job, progress: Progress) -> None:
    """Resume a submitted run, send a released one, or run afresh: gather the facts, `decide`, carry it out."""
    released_from = (job.params or {}).get("release_of")
    if run.canvas_import_id or run.submitting_at:  # a rerun: resume, never resend
        _submit_and_wait(run, job, progress, bytes(_require_package(run).content), released=bool(released_from))
        return
    if released_from:
        _send_released(run, job, progress, released_from)
        return
    _fresh(run, job, progress)


def _require_package(run: SyncRun) -> Artifact:
    package = _artifact(run, "sync_package")
    if package is None:
        raise JobFailed("The sync's package is gone; run a new sync instead.")
    return package


def _send_released(run: SyncRun, job: Job, progress: Progress, released_from: int) -> None:
    """A person looked at a held sync's removal list and let it go: its package goes as it is."""
    held = SyncRun.objects.get(pk=released_from, conversion=job.conversion)
    package = _artifact(held, "sync_package")
    if package is None:
        raise JobFailed("The held sync's package is gone; run a new sync instead.")
    run.snapshot, run.fingerprint, run.counts, run.removals = (
        held.snapshot,
        held.fingerprint,
        held.counts,
        held.removals,
    )
    run.previous_enrollments, run.removed_enrollments = held.previous_enrollments, held.removed_enrollments
    run.save(
        update_fields=["snapshot", "fingerprint", "counts", "removals", "previous_enrollments", "removed_enrollments"]
    )
    _keep_package(run, bytes(package.content), rows=package.rows)
    # ... and the drops it computed against the same previous package: a changed role's old row goes even when
    # Canvas does not diff the release.
    _keep_drops(run, _held_drops(held))
    _submit_and_wait(run, job, progress, bytes(package.content), released=True)


def _policy(district: District) -> SyncPolicy:
    """The district's thresholds (sync history) with the drop status of its roster policy."""
    return SyncPolicy.for_district(district, drop_status=RosterPolicy.for_district(district).drop_status)


def _fresh(run: SyncRun, job: Job, progress: Progress) -> None:
    conversion = job.conversion
    policy = _policy(conversion.district)
    progress.update(message="Pulling from the zone", force=True)
    snapshot = pull.pull(conversion, job=job, progress=progress)
    zis_slots.done_with_zis()  # the rest of the night is Canvas's: another district of this ZIS may pull now
    run.snapshot = snapshot
    previous = last_successful(conversion, before=run)
    if not run.full_import_reason:
        _set_full_reason(run, _remaster_needed(conversion, run))
    previous_fingerprint = previous.fingerprint if previous else None
    # Same records as a snapshot whose package is known: the fingerprint is known without a rebuild.
    known = cached_package(snapshot, scheme=DCID)
    if (
        known
        and sync_policy.decide(
            policy,
            full_reason=run.full_import_reason,
            previous_fingerprint=previous_fingerprint,
            fingerprint=known["fingerprint"],
            removals=None,
        ).action
        == "skip"
    ):
        run.fingerprint, run.counts, run.skipped_users = known["fingerprint"], known["counts"], known["skipped"]
        run.save(update_fields=["snapshot", "fingerprint", "counts", "skipped_users"])
        _skip(run, previous, progress)
        return
    with tempfile.TemporaryDirectory() as tmp:
        package_path = Path(tmp) / "sis_import.zip"
        progress.update(message="Building the SIS import files", force=True)
        roster = Roster.for_snapshot(snapshot)
        try:  # the integration ids Canvas holds, which a row without them would erase (canvas_keep)
            keep, unread = canvas_keep.read_for(conversion.district, roster), None
        except JobFailed as exc:
            keep, unread = None, exc  # harmless on a night that sends nothing; raised below before anything is sent
        package = build_package(
            roster,
            package_path,
            scheme=DCID,
            keep=keep,
            authentication_provider_id=conversion.district.canvas_authentication_provider_id,
            parent_account_id=conversion.district.canvas_parent_account_id,
        )
        remember_package(snapshot, package, scheme=DCID)
        run.fingerprint, run.counts, run.skipped_users = package.fingerprint, package.counts, package.skipped[:200]
        run.save(update_fields=["snapshot", "fingerprint", "counts", "skipped_users"])
        if not run.full_import_reason:
            _set_full_reason(run, _headers_changed(previous, package_path))
        content = package_path.read_bytes()
    # The rollover night starts a new year's data set: what it leaves behind is concluded, never held.
    rollover = bool(previous) and crosses_school_years(previous, snapshot)
    found = _removals(run, previous, content) if previous and not run.full_import_reason and not rollover else None
    decision = sync_policy.decide(
        policy,
        full_reason=run.full_import_reason,
        previous_fingerprint=previous_fingerprint,
        fingerprint=package.fingerprint,
        removals=found,
    )
    if decision.action == "skip":
        _skip(run, previous, progress)
        return
    if unread is not None:  # a package that would erase Canvas's integration ids is neither held nor sent
        raise JobFailed(f"Could not read the integration ids Canvas holds, which this import would erase: {unread}")
    _keep_package(run, content, rows=sum(package.counts.values()))
    # Kept before a hold too: a released run sends the drops its held run found (_send_released).
    _keep_drops(run, _drops(conversion, roster, previous, content))
    if decision.action == "hold":
        _hold(run, decision.reason, progress)
        return
    if rollover:  # conclude the old year's enrollments before the new year's go
        conclude_year(job, progress, previous)
    _submit_and_wait(run, job, progress, content)


def _drops(conversion: Conversion, roster: Roster, previous: SyncRun | None, content: bytes) -> bytes:
    """The enrollments to drop beside the package (services/enrollment_drops.py): on the first sync after go-live,
    what Canvas holds in the district's sections that the roster does not; later, a changed role's old row."""
    status = RosterPolicy.for_district(conversion.district).drop_status
    if previous is None:
        sections = list(roster.sections.values())
        with canvas_for(conversion.district) as canvas:
            found = enrollment_drops.canvas_leftovers(
                canvas,
                conversion.district.canvas_account_id or "1",
                course_ids={s.course_id for s in sections},
                section_ids={s.section_id for s in sections},
                package=content,
                drop_status=status,
            )
    else:
        before = _artifact(previous, "sync_package")
        found = enrollment_drops.role_changes(bytes(before.content), content) if before else []
    return enrollment_drops.drop_package(found, status)


def _held_drops(held: SyncRun) -> bytes:
    """The drop file a held run kept; for a run held before runs kept one, its role changes recomputed against the
    package it was compared with (the last successful sync before it)."""
    kept = _artifact(held, "enrollment_drops")
    if kept is not None:
        return bytes(kept.content)
    previous = (
        held.conversion.sync_runs.filter(state__in=SYNC_SUCCESS_STATES, finished_at__lte=held.finished_at)
        .exclude(pk=held.pk)
        .order_by("-finished_at", "-id")
        .first()
    )
    before = _artifact(previous, "sync_package") if previous else None
    package = _artifact(held, "sync_package")
    if before is None or package is None:
        return b""
    found = enrollment_drops.role_changes(bytes(before.content), bytes(package.content))
    return enrollment_drops.drop_package(found, RosterPolicy.for_district(held.conversion.district).drop_status)


def _keep_drops(run: SyncRun, content: bytes) -> None:
    """Kept beside the package, so a resumed run (or the release of a held one) sends the same drops after its
    import."""
    if content:
        Artifact.objects.create(
            conversion=run.conversion,
            job=run.job,
            kind="enrollment_drops",
            name=f"sync-{run.pk}-drops.zip",
            content_type="application/zip",
            content=content,
            rows=content.count(b"\n"),
        )


def _set_full_reason(run: SyncRun, reason: str) -> None:
    if reason:
        run.full_import_reason = reason[:200]
        run.save(update_fields=["full_import_reason"])


def _removals(run: SyncRun, previous: SyncRun, content: bytes) -> sync_policy.Removals | None:
    """What this package removes compared with the last successful sync's; kept on the run, the list as a CSV."""
    before = _artifact(previous, "sync_package")
    if before is None:
        return None
    found, rows = removals.compare(bytes(before.content), content)
    run.removals = removals.as_json(found)
    run.previous_enrollments, run.removed_enrollments = found.enrollments_before, found.enrollments
    run.save(update_fields=["removals", "previous_enrollments", "removed_enrollments"])
    if rows:
        Artifact.objects.create(
            conversion=run.conversion,
            job=run.job,
            kind="removal_list",
            name=f"sync-{run.pk}-removals.csv",
            content=removals.csv_bytes(rows),
            rows=len(rows),
        )
    return found


def _hold(run: SyncRun, reason: str, progress: Progress) -> None:
    conversion = run.conversion
    _finish(run, SyncState.HELD, held_reason=reason)
    audit.record(
        district=conversion.district,
        conversion=conversion,
        user=None,
        action="sync_held",
        summary="Sync held for approval",
        reason=reason,
        detail={"sync_run": run.pk, "removals": run.removals.get("totals", {})},
    )
    progress.update(message="Held for approval: " + reason[:250], force=True)


def _skip(run: SyncRun, previous: SyncRun | None, progress: Progress) -> None:
    """(`decide` skips only against a previous sync's fingerprint: `previous` is there, said without it if not.)"""
    _finish(run, SyncState.SKIPPED)
    since = "the last sync"
    if previous is not None and previous.finished_at is not None:
        # The district's calendar day: a sync at 6 pm in Denver finished on the next day in UTC.
        since = f"the sync of {timezone.localtime(previous.finished_at, run.conversion.district.tzinfo):%b %-d}"
    progress.update(message=f"No new data since {since}: nothing sent", force=True)


def _keep_package(run: SyncRun, content: bytes, *, rows: int) -> None:
    """Keep what this run sends: a rerun resends exactly it, and the next run compares its own package with it
    (services/removals.py)."""
    Artifact.objects.create(
        conversion=run.conversion,
        job=run.job,
        kind="sync_package",
        name=f"sis_import-job{run.job_id}.zip",
        content_type="application/zip",
        content=content,
        rows=rows,
    )


def _submit_and_wait(run: SyncRun, job: Job, progress: Progress, content: bytes, *, released: bool = False) -> None:
    conversion = run.conversion
    account = conversion.district.canvas_account_id or "1"
    policy = _policy(conversion.district)
    # The submission's state lives on the run alone (when the upload began, its name, Canvas's import id).
    submission = {
        "submitting_at": run.submitting_at.isoformat() if run.submitting_at else None,
        "import_id": run.canvas_import_id,
    }

    def save(values: dict[str, Any]) -> None:
        fields = []
        if values.get("submitting_at"):
            run.submitting_at = dt.datetime.fromisoformat(values["submitting_at"])
            run.upload_name = values.get("file_name", "")[:120]
            fields += ["submitting_at", "upload_name"]
        if values.get("import_id"):
            run.canvas_import_id = values["import_id"]
            run.submitted_at = run.submitted_at or timezone.now()
            run.state = SyncState.SUBMITTED
            fields += ["canvas_import_id", "submitted_at", "state"]
        if fields:
            if not job.held().exists():  # a run that lost its job writes nothing (as Job.merge_detail)
                raise JobLost(f"job {job.pk} is no longer held by {job.worker}")
            run.save(update_fields=fields)

    # A remaster goes outside the data set, so Canvas neither diffs it nor takes it as the next baseline. A diffed
    # import carries Canvas's own change_threshold too, unless a person released it (they approved its removals).
    diffing: canvas_import.ImportOptions = {}
    if not run.full_import_reason:
        diffing = {
            "diffing_data_set_identifier": diffing_data_set(conversion),
            "diffing_drop_status": policy.drop_status,
        }
        if not released:
            diffing["change_threshold"] = policy.canvas_change_threshold
    with canvas_for(conversion.district) as canvas:
        import_id = canvas_import.submit_once(
            canvas,
            account,
            content,
            state=submission,
            save=save,
            token=canvas_import.job_token(job.pk, "remaster" if run.full_import_reason else "sync"),
            **diffing,
        )
        result = canvas_import.wait(canvas, account, import_id, progress, label="Sync")
        messages = list(canvas.iter_sis_import_errors(account, import_id))
    if diffing and result.diffing_threshold_exceeded:
        # Canvas's change_threshold tripped (sis_batch.rb `generate_diff`: the upload's size changed by more than
        # the threshold): it imported the files whole, dropped nothing, and does not take this import as the next
        # baseline. Said on the run and in the audit trail; the next night diffs against the old baseline again.
        run.canvas_threshold_exceeded = True
        run.save(update_fields=["canvas_threshold_exceeded"])
        audit.record(
            district=conversion.district,
            conversion=conversion,
            user=None,
            action="sync_canvas_threshold",
            summary="Canvas did not diff the sync: its change threshold was exceeded",
            reason=f"The upload's size changed by more than {policy.canvas_change_threshold}%: Canvas "
            "imported it whole and removed nothing.",
            detail={"sync_run": run.pk, "canvas_import": import_id},
        )
    report = io.StringIO(newline="")
    writer = SafeWriter(report)  # for people, opened in a spreadsheet: Canvas's texts must not start formulas
    writer.writerow(["file", "row", "message", "row_info"])
    writer.writerows([m.file or "", m.row or "", m.message, m.row_info or ""] for m in messages)
    if messages:
        Artifact.objects.create(
            conversion=conversion,
            job=job,
            kind="sync_errors",
            name=f"sync-{run.pk}-messages.csv",
            content=report.getvalue().encode(),
            rows=len(messages),
        )
    errors = int(result.counts.get("error_count") or len(result.processing_errors))
    warnings = int(result.counts.get("warning_count") or len(result.processing_warnings))
    outcome = {"imported": SyncState.IMPORTED, "imported_with_messages": SyncState.IMPORTED_WITH_MESSAGES}.get(
        result.workflow_state, SyncState.FAILED
    )
    if outcome != SyncState.FAILED and (drops := _artifact(run, "enrollment_drops")) is not None:
        # After the package, before the run ends (a resumed run still sends them): a legacy role goes once its
        # replacement is in Canvas.
        enrollment_drops.send(job, progress, bytes(drops.content))
    _finish(
        run,
        outcome,
        canvas_state=result.workflow_state,
        canvas_progress=result.progress,
        canvas_counts=result.counts,
        warning_count=warnings,
        error_count=errors,
    )
    progress.update(message=f"Canvas import {import_id}: {result.workflow_state}", force=True)
    if outcome == SyncState.FAILED:
        raise JobFailed(canvas_import.failure_text(result, errors))


def _last_full(conversion: Conversion) -> SyncRun | None:
    return (
        conversion.sync_runs.filter(state__in=SYNC_SUCCESS_STATES)
        .exclude(full_import_reason="")
        .order_by("-finished_at", "-id")
        .first()
    )


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
    first = (
        conversion.sync_runs.exclude(submitted_at=None)
        .order_by("submitted_at")
        .values_list("submitted_at", flat=True)
        .first()
    )
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
            kind = detect_kind(header) or name
            # Integration ids read back from Canvas come and go with Canvas's data, not with the SIS's (canvas_keep).
            result[kind] = [h for h in header if kind not in canvas_keep.KEPT_KINDS or h != canvas_keep.COLUMN]
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
    """A consultant asks for a remaster from the sync history; who, when and why go to the audit log.
    Raises rules.AccessRefused for anyone else, ValueError when the step or the reason does not allow it."""
    require(can_drive(user, conversion.district), "Only an implementation consultant can start jobs.")
    Conversion.objects.select_for_update().filter(pk=conversion.pk).first()  # two clicks: one job
    problems = workflow_problems(conversion, user)
    if not reason.strip():
        problems.append("Say why (a reason is required).")
    if problems:
        raise ValueError(" ".join(problems))
    try:
        job, created = jobs.start_job(
            conversion, JobKind.REMASTER, user=user, params={"trigger": "remaster", "reason": reason.strip()}
        )
    except jobs.JobAlreadyActive:  # a parallel press won the race: the database refused this one
        raise ValueError(jobs.ALREADY_ACTIVE) from None
    audit.record(
        district=conversion.district,
        conversion=conversion,
        user=user,
        action="remaster_requested",
        summary="Asked for a full sync to Canvas (remaster)",
        reason=reason.strip(),
        detail={"job": job.pk},
    )
    return job


def workflow_problems(conversion: Conversion, user) -> list[str]:
    from conversion import workflow

    return workflow.job_problems(conversion, JobKind.REMASTER, user)


@transaction.atomic
def release_held_sync(run: SyncRun, *, user, note: str = "") -> Job:
    """A consultant or the district admin looked at a held sync and lets it go to Canvas."""
    conversion = run.conversion
    require(
        can_act_for(user, conversion.district), "Only a consultant or the district's admin can release a held sync."
    )
    run = SyncRun.objects.select_for_update().get(pk=run.pk)
    if run.state != SyncState.HELD:
        raise ValueError("This sync is not held.")
    if note_problem(note):
        raise ValueError(note_problem(note))
    Approval.objects.create(
        conversion=conversion,
        kind=ApprovalKind.SYNC_RELEASE,
        subject=f"sync_run:{run.pk}",
        fingerprint=run.fingerprint,
        approved_by=user,
        note=note,
    )
    job, _ = jobs.start_job(
        conversion,
        JobKind.SYNC,
        user=user,
        params={"trigger": "release", "release_of": run.pk},
        idempotency_key=f"release:{run.pk}",
    )
    run.held_reason += f"\nReleased by {user.get_username()}."
    run.save(update_fields=["held_reason"])
    audit.record(
        district=conversion.district,
        conversion=conversion,
        user=user,
        action="release_sync",
        summary="Released a held sync (approval)",
        reason=note,
        detail={"sync_run": run.pk, "job": job.pk},
    )
    return job


def parse_school_thresholds(text: str) -> dict[str, int]:
    """`school account id = percent`, one a line (the page's text box) -> {account id: percent}."""
    schools: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        school, sep, value = line.rpartition("=")
        if not sep or not school.strip() or not value.strip().isdigit() or not 1 <= int(value) <= 100:
            raise ValueError(f"line {number}: write “school account id = percent” with a percent from 1 to 100.")
        schools[school.strip()] = int(value)
    return schools


@transaction.atomic
def set_thresholds(conversion: Conversion, *, user, district: str, schools: str) -> list[str]:
    """A consultant sets the district's and the schools' deletion thresholds; every change is audited."""
    require(can_drive(user, conversion.district), "Only an implementation consultant can change the sync thresholds.")
    value = district.strip()
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise ValueError("the district's threshold is a percent from 1 to 100.")
    per_school = parse_school_thresholds(schools)
    record = type(conversion.district).objects.select_for_update().get(pk=conversion.district_id)
    before = {"district": record.sync_deletion_threshold, "schools": record.sync_school_thresholds or {}}
    after = {"district": int(value), "schools": per_school}
    if before == after:
        return []
    record.sync_deletion_threshold, record.sync_school_thresholds = int(value), per_school
    record.save(update_fields=["sync_deletion_threshold", "sync_school_thresholds"])
    changed = [name for name in after if before[name] != after[name]]
    audit.record(
        district=record,
        conversion=conversion,
        user=user,
        action="sync_thresholds",
        summary=f"Changed the sync's deletion thresholds (district {after['district']}%, {len(per_school)} school(s))",
        detail={"from": before, "to": after},
    )
    return changed
