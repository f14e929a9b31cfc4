""" "Undo this sync": put back in Canvas what one of our imports changed, then send everything whole.

Canvas keeps, for each SIS import, every workflow_state change it made (SisBatchRollBackData, built as rows are
applied: app/models/sis_batch_roll_back_data.rb `build_data`), and `restore_states` plays them back: PUT
accounts/:id/sis_imports/:id/restore_states (app/controllers/sis_imports_api_controller.rb#restore_states, needs
manage_sis) answers a Progress at once and restores in a job (app/models/sis_batch.rb `restore_states_later`,
`restore_states_for_batch`): the import goes `restoring`, then `restored`, or `partially_restored` when only
deletions (`undelete_only`), conclusions or batch-mode deletions were asked for. Each item is set back to the state
it had before the import, whatever it holds now, and an item the import created goes to `deleted`
(SisBatchRollBackData#restore_to_state).

So the product refuses what Canvas cannot restore, or would restore wrongly:
- a sync that never reached Canvas (skipped, held, failed before its upload) has no import;
- an import already restored (or being restored): its roll-back rows are no longer `active`, a second restore
  changes nothing;
- an import older than Canvas keeps roll-back data (SisBatchRollBackData `expired_data`: created over 30 days ago,
  deleted by `cleanup_expired_data`): Canvas would answer "restored" and change nothing;
- an import that is not the last one we sent: restoring it would also undo the later imports' changes to the same
  items (each goes back to its state before *that* import).

After the restore a full import without diffing (the remaster, services/sync.py) runs, so Canvas holds the SIS's
data again and the next nightly diff starts from a clean state.
"""

from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversion import audit, jobs
from conversion.jobs import JobFailed, Progress
from conversion.models import SYNC_SUCCESS_STATES, Conversion, Job, JobKind, SyncRun, SyncState
from conversion.rules import can_drive, require
from conversion.services.canvas_api import canvas_for

# SisBatchRollBackData.expired_data (created_at < 30.days.ago) is deleted by cleanup_expired_data.
ROLL_BACK_KEPT = dt.timedelta(days=30)
# Canvas states of an import that was (or is being) restored (SisBatch workflow).
RESTORED = frozenset({"restoring", "restored", "partially_restored"})
# The imports Canvas finished applying rows from: what a restore can put back.
RESTORABLE = frozenset({"imported", "imported_with_messages", "failed_with_messages"})


class UndoRefused(Exception):
    """Why a sync cannot be undone, in words for the page."""


def last_sent(conversion: Conversion) -> SyncRun | None:
    return conversion.sync_runs.exclude(canvas_import_id=None).order_by("-submitted_at", "-id").first()


def undo_problems(run: SyncRun, user, *, now: dt.datetime | None = None) -> list[str]:
    """Why `user` may not undo `run` now (empty: they may)."""
    from conversion import workflow

    conversion = run.conversion
    problems = list(workflow.job_problems(conversion, JobKind.SYNC_UNDO, user))
    if run.canvas_import_id is None:
        return problems + ["This sync sent nothing to Canvas: there is nothing to undo."]
    if run.restored_state or run.canvas_state in RESTORED:
        problems.append(
            f"Canvas import {run.canvas_import_id} was restored already ({run.restored_state or run.canvas_state})."
        )
    elif run.state not in (*SYNC_SUCCESS_STATES, SyncState.FAILED) or (
        run.state == SyncState.FAILED and run.canvas_state not in RESTORABLE
    ):
        problems.append(
            f"Canvas import {run.canvas_import_id} did not finish applying rows ({run.canvas_state or run.state})."
        )
    sent = run.submitted_at or run.created_at
    if sent < (now or timezone.now()) - ROLL_BACK_KEPT:
        problems.append(
            f"Canvas import {run.canvas_import_id} is more than 30 days old: Canvas no longer keeps "
            "what it changed, so it cannot be restored."
        )
    latest = last_sent(conversion)
    if latest is not None and latest.pk != run.pk:
        problems.append(
            f"A later import ({latest.canvas_import_id}) was sent after this one: restoring this one would "
            "undo that one's changes too. Only the last import sent can be undone."
        )
    return problems


@transaction.atomic
def start_undo(run: SyncRun, *, user, reason: str, undelete_only: bool = False) -> Job:
    """A consultant asks to undo a sync from the sync history; who, when and why go to the audit log.
    Raises rules.AccessRefused for anyone else, UndoRefused when the sync or the reason does not allow it."""
    conversion = run.conversion
    require(can_drive(user, conversion.district), "Only an implementation consultant can start jobs.")
    Conversion.objects.select_for_update().filter(pk=conversion.pk).first()  # two clicks: one job
    run = SyncRun.objects.get(pk=run.pk)
    problems = undo_problems(run, user)
    if not reason.strip():
        problems.append("Say why (a reason is required).")
    if problems:
        raise UndoRefused(" ".join(problems))
    try:
        job, _ = jobs.start_job(
            conversion,
            JobKind.SYNC_UNDO,
            user=user,
            params={"sync_run": run.pk, "reason": reason.strip(), "undelete_only": undelete_only},
        )
    except jobs.JobAlreadyActive:
        raise UndoRefused(jobs.ALREADY_ACTIVE) from None
    audit.record(
        district=conversion.district,
        conversion=conversion,
        user=user,
        action="sync_undo_requested",
        summary=f"Asked to undo sync {run.pk} (Canvas import {run.canvas_import_id})",
        reason=reason.strip(),
        detail={
            "job": job.pk,
            "sync_run": run.pk,
            "canvas_import": run.canvas_import_id,
            "undelete_only": undelete_only,
        },
    )
    return job


def run_undo(job: Job, progress: Progress) -> None:
    """Ask Canvas to restore the import (once: the Progress id is kept), poll its Progress into the job's bar,
    record what Canvas ended in, then start the remaster."""
    params = job.params or {}
    run = SyncRun.objects.get(pk=params["sync_run"], conversion=job.conversion)
    conversion = run.conversion
    account = conversion.district.canvas_account_id or "1"
    poll = getattr(settings, "CANVAS_PROGRESS_POLL_SECONDS", 1.0)
    import_id = run.canvas_import_id
    if import_id is None:  # start_undo refuses such a run (undo_problems); a job made otherwise stops here
        raise JobFailed("This sync sent nothing to Canvas: there is nothing to undo.")
    with canvas_for(conversion.district) as canvas:
        progress_id = job.detail.get("restore_progress_id")
        if progress_id is None:
            current = canvas.get_sis_import(account, import_id)
            if current.workflow_state in RESTORED:
                raise JobFailed(
                    f"Canvas import {import_id} is {current.workflow_state} already: nothing was asked of Canvas."
                )
            if current.workflow_state not in RESTORABLE:
                raise JobFailed(
                    f"Canvas import {import_id} is {current.workflow_state}: Canvas can restore "
                    "only an import that finished applying its rows."
                )
            answer = canvas.restore_states(
                account, import_id, undelete_only=True if params.get("undelete_only") else None
            )
            progress_id = answer.id
            progress.update(
                current=0,
                total=100,
                message=f"Canvas is restoring import {import_id}",
                detail={"restore_progress_id": progress_id},
                force=True,
            )
        while True:
            state = canvas.get_progress(progress_id)
            completion = int(state.completion or 0)
            progress.update(
                current=completion,
                total=100,
                force=True,
                message=f"Canvas is restoring import {import_id}: {state.workflow_state} ({completion}%)",
            )
            if not state.is_pending:
                break
            time.sleep(poll)
        sis_import = canvas.get_sis_import(account, import_id)
    if state.workflow_state != "completed":
        raise JobFailed(
            f"Canvas's restore of import {import_id} ended {state.workflow_state}"
            + (f": {state.message}" if state.message else ".")
        )
    run.restored_state, run.restored_at, run.canvas_state = (
        sis_import.workflow_state,
        timezone.now(),
        sis_import.workflow_state,
    )
    run.save(update_fields=["restored_state", "restored_at", "canvas_state"])
    partial = sis_import.workflow_state == "partially_restored"
    statistics = (sis_import.raw.get("data") or {}).get("statistics") or {}
    restored = {
        kind: figures.get("restored", 0)
        for kind, figures in statistics.items()
        if isinstance(figures, dict) and figures.get("restored")
    }
    audit.record(
        district=conversion.district,
        conversion=conversion,
        user=job.requested_by,
        action="sync_undone",
        summary=(
            f"Canvas partially restored import {import_id} (sync {run.pk})"
            if partial
            else f"Canvas restored import {import_id} (sync {run.pk})"
        ),
        reason=params.get("reason", ""),
        detail={
            "sync_run": run.pk,
            "canvas_import": import_id,
            "canvas_state": sis_import.workflow_state,
            "restored": restored,
        },
    )
    remaster, _ = jobs.start_job(
        conversion,
        JobKind.REMASTER,
        user=job.requested_by,
        params={"trigger": "remaster", "reason": f"undo of sync {run.pk}: {params.get('reason', '')}"[:200]},
        idempotency_key=f"undo-remaster:{job.pk}",
    )
    progress.update(
        current=100,
        total=100,
        force=True,
        detail={"remaster_job": remaster.pk},
        message=(
            f"Canvas import {import_id} {sis_import.workflow_state.replace('_', ' ')}; a full sync (remaster) follows"
        ),
    )
