"""Step 5: move every Canvas user's sis_user_id from the PowerSchool ID to the DCID, and the legacy integration's
term, course and section ids to the ones the sync writes (learned by the mapping check), so go-live updates the
old courses instead of creating empty ones beside them. Each is a change_sis_id row of its type
(lib/sis/csv/change_sis_id_importer.rb accepts user, course, section, term, account, group types).

The plan comes from the mapping diff the district approved; it is checked against Canvas as it is at
run time, so running the job again only renames who still needs it. The reverse file is kept so a
consultant can roll back.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.core.cache import cache

from canvas.csv_rows import ChangeSisIdRow
from canvas.csvfiles import csv_bytes
from conversion.jobs import JobFailed, Progress
from conversion.models import Artifact, Conversion, Job, JobKind, JobState, MappingDiff
from conversion.models import MatchStatus as M
from conversion.services import canvas_import, legacy_watch
from conversion.services.approved_mapping import approved_diff
from conversion.services.canvas_api import canvas_for
from conversion.services.mapping import LEGACY_KINDS


@dataclass(frozen=True)
class Change:
    old_id: str
    new_id: str
    name: str
    type: str = "user"


@dataclass
class RemapPlan:
    diff: MappingDiff
    changes: list[Change] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    @property
    def skipped_by_reason(self) -> dict[str, int]:
        return dict(Counter(s["reason"] for s in self.skipped))


def plan(conversion: Conversion) -> RemapPlan | None:
    diff = approved_diff(conversion)
    return None if diff is None else plan_for(diff)


def plan_for(diff: MappingDiff) -> RemapPlan:
    """Who moves to their DCID, and why each of the others does not, from the user rows of `diff`."""
    result = RemapPlan(diff)
    rows = (
        diff.rows.filter(kind="user")
        .order_by("key")
        .values_list("key", "name", "status", "blocking", "dcid", "canvas_value", "reason")
        .iterator(chunk_size=5000)
    )
    for key, name, status, blocking, dcid, canvas_value, reason in rows:
        if blocking:
            result.skipped.append({"key": key, "name": name, "reason": reason})
        elif status in (M.MATCHED, M.CONFLICT) and dcid and canvas_value == key:
            result.changes.append(Change(key, dcid, name))
        elif status == M.MATCHED and canvas_value == dcid:
            result.skipped.append({"key": key, "name": name, "reason": "already under its DCID"})
        elif status == M.ONLY_SIF:
            result.skipped.append(
                {"key": key, "name": name, "reason": "not in Canvas yet: the first sync creates it under its DCID"}
            )
        elif status == M.ONLY_CANVAS:
            result.skipped.append({"key": key, "name": name, "reason": "not in the SIF data: left as it is"})
        else:
            result.skipped.append({"key": key, "name": name, "reason": reason or "no DCID"})
    legacy = (
        diff.rows.filter(kind__in=LEGACY_KINDS, status=M.MATCHED)
        .order_by("kind", "key")
        .values_list("kind", "key", "name", "canvas_value")
    )
    result.changes.extend(Change(old, new, name, LEGACY_KINDS[kind]) for kind, new, name, old in legacy)
    return result


@dataclass(frozen=True)
class PlanSummary:
    """What the district page shows of a plan: counts and the first changes, not 200,000 rows."""

    diff_id: int
    changes: int
    skipped_by_reason: dict[str, int]
    sample: tuple[Change, ...]


def plan_summary(conversion: Conversion) -> PlanSummary | None:
    """The summary of the approved diff's plan, worked out once per diff: a diff's rows never change."""
    diff = approved_diff(conversion)
    if diff is None:
        return None
    key = f"remap-plan-summary:{diff.pk}"
    summary = cache.get(key)
    if summary is None:
        full = plan_for(diff)
        summary = PlanSummary(diff.pk, len(full.changes), full.skipped_by_reason, tuple(full.changes[:10]))
        cache.set(key, summary, timeout=None)
    return summary


def change_file(changes: list[Change], *, reverse: bool = False) -> bytes:
    rows = (
        ChangeSisIdRow(old_id=c.new_id if reverse else c.old_id, new_id=c.old_id if reverse else c.new_id, type=c.type)
        for c in changes
    )
    return csv_bytes("change_sis_id", rows)


def _present(canvas, account, types: set[str]) -> set[tuple[str, str]]:
    """(type, SIS id) of every user, and of every course, section and term when `types` holds one of them."""
    found = {("user", u.sis_user_id) for u in canvas.iter_users(account) if u.sis_user_id}
    for course in canvas.iter_courses(account) if types - {"user"} else ():
        if course.sis_course_id:
            found.add(("course", course.sis_course_id))
        if course.sis_term_id:
            found.add(("term", course.sis_term_id))
        found.update(("section", s.sis_section_id) for s in canvas.iter_sections(course.id) if s.sis_section_id)
    return found


def _apply(job: Job, progress: Progress, changes: list[Change], *, reverse: bool, label: str) -> dict:
    """Rename in Canvas whoever still carries the old id; return what was done and what was verified."""
    conversion = job.conversion
    account = conversion.district.canvas_account_id or "1"
    source = (lambda c: c.new_id) if reverse else (lambda c: c.old_id)
    target = (lambda c: c.old_id) if reverse else (lambda c: c.new_id)
    with canvas_for(conversion.district) as canvas:
        progress.update(current=0, total=100, message="Reading Canvas users", force=True)
        present = _present(canvas, account, {c.type for c in changes})
        todo = (
            [c for c in changes if (c.type, source(c)) in present]
            if not job.detail.get("import_id")
            else [c for c in changes if c.old_id in set(job.detail.get("planned_old_ids", []))]
        )
        if todo or job.detail.get("import_id"):
            if not job.detail.get("import_id"):
                job.merge_detail({"planned_old_ids": [c.old_id for c in todo]})
                forward = change_file(todo, reverse=reverse)
                Artifact.objects.create(
                    conversion=conversion,
                    job=job,
                    kind=f"{label}_file",
                    name=f"change_sis_id-{label}-job{job.pk}.csv",
                    content=forward,
                    rows=len(todo),
                )
                if not reverse:
                    Artifact.objects.create(
                        conversion=conversion,
                        job=job,
                        kind="remap_reverse_file",
                        name=f"change_sis_id-reverse-job{job.pk}.csv",
                        content=change_file(todo, reverse=True),
                        rows=len(todo),
                    )
            token = canvas_import.job_token(job.pk, label)
            import_id = canvas_import.submit_once(
                canvas,
                account,
                canvas_import.single_csv_zip("change_sis_id.csv", change_file(todo, reverse=reverse), token),
                state=job.detail,
                save=job.merge_detail,
                token=token,
            )
            result = canvas_import.wait(canvas, account, import_id, progress, label=label)
            if not result.succeeded:
                errors = [f"{e.file}: {e.message}" for e in canvas.iter_sis_import_errors(account, import_id)][:5]
                raise JobFailed(f"Canvas import {import_id} ended {result.workflow_state}: " + "; ".join(errors))
        progress.update(message="Verifying in Canvas", force=True)
        after = _present(canvas, account, {c.type for c in changes})
    unverified = [c for c in changes if (c.type, target(c)) not in after]
    return {
        "renamed": len(todo),
        "already": len(changes) - len(todo),
        "unverified": len(unverified),
        "unverified_examples": [f"{source(c)} → {target(c)}" for c in unverified[:10]],
    }


def run_remap(job: Job, progress: Progress) -> None:
    if not job.detail.get("import_id"):  # before our own import: look for the legacy sync's (step 3, verified)
        progress.update(message="Looking for legacy SIS imports since the pause", force=True)
        legacy_watch.check(job.conversion)
        waiting = legacy_watch.still_arriving(job.conversion)
        if waiting:
            raise JobFailed(" ".join(waiting))
    remap = plan(job.conversion)
    if remap is None:
        raise JobFailed("The district has not approved a mapping yet.")
    outcome = _apply(job, progress, remap.changes, reverse=False, label="remap")
    job.merge_detail(
        {
            **outcome,
            "mapping_diff": remap.diff.pk,
            "planned": len(remap.changes),
            "skipped_by_reason": remap.skipped_by_reason,
        }
    )
    progress.update(
        message=f"{outcome['renamed']:,} users, terms, courses and sections renamed, "
        f"{outcome['already']:,} already there, "
        f"{len(remap.skipped):,} skipped",
        force=True,
    )
    if outcome["unverified"]:
        raise JobFailed(
            f"{outcome['unverified']} user(s) still lack their DCID in Canvas, e.g. "
            + ", ".join(outcome["unverified_examples"])
        )


def run_rollback(job: Job, progress: Progress) -> None:
    """Put back the PowerSchool IDs the last successful remap replaced."""
    last = job.conversion.jobs.filter(kind=JobKind.REMAP, state=JobState.SUCCEEDED).order_by("-finished_at").first()
    remap = plan(job.conversion)
    if last is None or remap is None:
        raise JobFailed("There is no completed remap to roll back.")
    outcome = _apply(job, progress, remap.changes, reverse=True, label="rollback")
    job.merge_detail(outcome)
    # A rolled-back remap no longer counts: complete_remap's guard reads the newest REMAP job.
    job.conversion.jobs.filter(pk=last.pk).update(
        detail={**last.detail, "rolled_back_by": job.pk, "unverified": len(remap.changes)}
    )
    progress.update(
        message=f"{outcome['renamed']:,} users, terms, courses and sections back on their old ids", force=True
    )
    if outcome["unverified"]:
        raise JobFailed(
            f"{outcome['unverified']} user(s) are not back on their PowerSchool ID, e.g. "
            + ", ".join(outcome["unverified_examples"])
        )
