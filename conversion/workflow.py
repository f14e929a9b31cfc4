"""The seven-step conversion workflow: states, transitions, guards and their audit, in one place.

Views, tasks and templates call `perform` and `next_actions`; none of them re-checks a transition.
Hand-written rather than django-fsm-2: a guard here answers *why* a move is refused, in words a district
admin can act on, and the audit record is part of the same transaction as the change.

`perform(conversion, name, user=..., reason=...)`:
1. lock the conversion row (select_for_update), so two clicks cannot both move it;
2. check the source state, the actor's role, the reason when one is required, and the guard;
3. change the state and run the transition's effect (approval rows, timestamps);
4. save with update_fields and write the audit event, in the same transaction.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from conversion import audit
from conversion.models import (
    Approval,
    ApprovalKind,
    Conversion,
    ConversionState,
    GpbState,
    Job,
    JobKind,
    JobState,
    MappingDiff,
    Snapshot,
)
from conversion.models.conversion import STATE_ORDER, note_problem
from conversion.rules import Role, role_in
from conversion.services import notifications

S = ConversionState
G = GpbState

Guard = Callable[[Conversion], list[str]]


class TransitionRefused(Exception):
    """A move the workflow does not allow now; `problems` says why, one sentence each."""

    def __init__(self, label: str, problems: list[str]):
        self.label = label
        self.problems = problems
        super().__init__(f"{label} is not possible: " + " ".join(problems))


@dataclass(frozen=True)
class Transition:
    name: str
    label: str
    sources: tuple[str, ...]
    target: str
    roles: frozenset[Role]
    guard: Guard = lambda conversion: []
    field: str = "state"  # "state" is the main track; "gpb_state" is step 7's side track.
    needs_reason: bool = False
    approval: str = ""  # An ApprovalKind recorded with the move, tied to `approval_subject`.
    approval_subject: Callable[[Conversion], tuple[str, str]] | None = None
    effect: Callable[[Conversion, dict], list[str]] | None = None  # returns the fields it changed
    help: str = ""



# ---- what the guards look at -------------------------------------------------------------------

def local_today(conversion: Conversion) -> dt.date:
    """Today's date where the district is: dates the district chose mean its own calendar."""
    return timezone.localdate(timezone=conversion.district.tzinfo)


def latest_job(conversion: Conversion, kind: str, *, succeeded: bool = True) -> Job | None:
    jobs = conversion.jobs.filter(kind=kind)
    if succeeded:
        jobs = jobs.filter(state=JobState.SUCCEEDED)
    return jobs.order_by("-finished_at", "-id").first()


def _latest_snapshot(conversion: Conversion):
    return Snapshot.objects.latest_complete(conversion)


def guard_agent_ready(c: Conversion) -> list[str]:
    problems = []
    if not c.zis_url:
        problems.append("The ZIS URL is missing.")
    if not c.zone_id:
        problems.append("The Zone ID is missing.")
    missing = [item["label"] for item in c.agent_checklist if not item["done"]]
    if missing:
        problems.append("Agent settings not checked yet: " + "; ".join(missing) + ".")
    return problems


def guard_pull_verified(c: Conversion) -> list[str]:
    problems = []
    test = latest_job(c, JobKind.TEST_CONNECTION, succeeded=False)
    if test is None or test.state != JobState.SUCCEEDED:
        problems.append("The latest connection test has not passed.")
    if _latest_snapshot(c) is None:
        problems.append("No complete pull from the zone yet.")
    return problems


def guard_pause_date_reached(c: Conversion) -> list[str]:
    today = local_today(c)
    if today < c.effective_pause_date:
        return [f"The pause date, {c.effective_pause_date:%B %-d, %Y}, has not come yet (today is {today:%B %-d})."]
    return []


def guard_mapping_approvable(c: Conversion) -> list[str]:
    diff = MappingDiff.objects.current(c)
    if diff is None:
        return ["No mapping check has run against the latest pull yet."]
    if diff.blocking_count:
        return [f"{diff.blocking_count} conflicting record(s) must be resolved first."]
    return []


def guard_remap_verified(c: Conversion) -> list[str]:
    job = latest_job(c, JobKind.REMAP, succeeded=False)
    if job is None or job.state != JobState.SUCCEEDED:
        return ["The remap to DCID has not completed."]
    unverified = (job.detail or {}).get("unverified", 0)
    if unverified:
        return [f"{unverified} Canvas user(s) still lack their DCID."]
    return []


def guard_go_live_date_reached(c: Conversion) -> list[str]:
    if c.go_live_date is None:
        return ["No go-live date is set."]
    if local_today(c) < c.go_live_date:
        return [f"The go-live date, {c.go_live_date:%B %-d, %Y}, has not come yet."]
    return []


def guard_gradebook_chosen(c: Conversion) -> list[str]:
    return [] if c.gradebook else ["Choose the gradebook first (legacy or PowerTeacher Pro)."]


def guard_gpb_can_run(c: Conversion) -> list[str]:
    # Grade passback needs the pulled roster to map Canvas sections and students to SIF RefIds; it does
    # not need the roster sync itself, so it can run during the pause (the seeds: GPB keeps working).
    return [] if c.is_past(S.CONNECTION) else ["The pulled data must be verified (step 2) first."]


# ---- effects -----------------------------------------------------------------------------------

def _mark_paused(c: Conversion, params: dict) -> list[str]:
    c.legacy_sync_paused_at = timezone.now()
    return ["legacy_sync_paused_at"]


def _mark_live(c: Conversion, params: dict) -> list[str]:
    c.live_since = timezone.now()
    c.nightly_sync_paused = False
    return ["live_since", "nightly_sync_paused"]


def _snapshot_subject(c: Conversion) -> tuple[str, str]:
    snap = _latest_snapshot(c)
    return (f"snapshot:{snap.pk}", snap.fingerprint) if snap else ("", "")


def _diff_subject(c: Conversion) -> tuple[str, str]:
    diff = MappingDiff.objects.current(c)
    return (f"mapping_diff:{diff.pk}", diff.fingerprint) if diff else ("", "")


# ---- the transitions ---------------------------------------------------------------------------

CONSULTANT = frozenset({Role.CONSULTANT})
DISTRICT = frozenset({Role.DISTRICT_ADMIN})
CONSULTANT_OR_WORKER = frozenset({Role.CONSULTANT, Role.WORKER})

_MAIN: list[Transition] = [
    Transition(
        "confirm_agent_setup", "Confirm the SIF agent is set up", (S.AGENT_SETUP,), S.CONNECTION, DISTRICT,
        guard_agent_ready, approval=ApprovalKind.AGENT_READY,
        help="The district confirms its SIF agent is connected to the zone with the settings checked.",
    ),
    Transition(
        "verify_pull", "Verify the pulled data", (S.CONNECTION,), S.PAUSE, DISTRICT, guard_pull_verified,
        approval=ApprovalKind.PULL_VERIFIED, approval_subject=_snapshot_subject,
        help="The district confirms the pulled schools, people and classes are the ones Canvas should get.",
    ),
    Transition(
        "pause_legacy_sync", "Pause the current Canvas sync", (S.PAUSE,), S.MAPPING, CONSULTANT_OR_WORKER,
        guard_pause_date_reached, effect=_mark_paused,
        help="Stops the legacy roster sync on the pause date; grade passback keeps working.",
    ),
    Transition(
        "approve_mapping", "Approve the mapping", (S.MAPPING,), S.REMAPPING, DISTRICT, guard_mapping_approvable,
        approval=ApprovalKind.MAPPING, approval_subject=_diff_subject,
        help="The district approves the match between SIF data and Canvas; new data needs a new approval.",
    ),
    Transition(
        "complete_remap", "Finish the remap", (S.REMAPPING,), S.GO_LIVE, CONSULTANT_OR_WORKER, guard_remap_verified,
        help="Every Canvas user now carries its DCID as sis_user_id.",
    ),
    Transition(
        "go_live", "Go live", (S.GO_LIVE,), S.LIVE, CONSULTANT_OR_WORKER, guard_go_live_date_reached,
        effect=_mark_live, help="From now on a nightly sync runs at midnight Mountain time when data changed.",
    ),
]


def _back_transitions() -> list[Transition]:
    """A consultant may send a conversion back to an earlier step (not once live), with a reason."""
    result = []
    main = STATE_ORDER[: STATE_ORDER.index(S.LIVE)]
    for i, target in enumerate(main[:-1]):
        sources = tuple(main[i + 1:])
        result.append(Transition(
            f"back_to_{target}", f"Return to “{S(target).label}”", sources, target, CONSULTANT,
            needs_reason=True, help="Reopens an earlier step; the later steps will have to be done again.",
        ))
    return result


_GPB: list[Transition] = [
    Transition(
        "request_gpb", "Request grade passback", (G.NOT_REQUESTED,), G.PLUGIN_PENDING,
        frozenset({Role.CONSULTANT, Role.DISTRICT_ADMIN}), guard_gradebook_chosen, field="gpb_state",
        help="Install the grade passback plug-in in PowerSchool (it works for both gradebooks).",
    ),
    Transition(
        "confirm_plugin_installed", "Confirm the plug-in is installed", (G.PLUGIN_PENDING,), G.PLUGIN_INSTALLED,
        DISTRICT, field="gpb_state", approval=ApprovalKind.PLUGIN_INSTALLED,
    ),
    Transition(
        "enable_gpb", "Enable grade passback", (G.PLUGIN_INSTALLED,), G.ENABLED, CONSULTANT, guard_gpb_can_run,
        field="gpb_state",
    ),
    Transition(
        "disable_gpb", "Turn grade passback off", (G.PLUGIN_PENDING, G.PLUGIN_INSTALLED, G.ENABLED),
        G.NOT_REQUESTED, CONSULTANT, field="gpb_state", needs_reason=True,
    ),
]

TRANSITIONS: dict[str, Transition] = {t.name: t for t in [*_MAIN, *_back_transitions(), *_GPB]}


# ---- asking and doing --------------------------------------------------------------------------

def problems_with(conversion: Conversion, t: Transition, role: Role | None, reason: str = "") -> list[str]:
    """Everything that stands between `role` and `t` right now (empty: allowed)."""
    current = getattr(conversion, t.field)
    if current not in t.sources:
        labels = {**dict(ConversionState.choices), **dict(GpbState.choices)}
        return [f"The conversion is at “{labels.get(current, current)}”, where this is not a next step."]
    if role not in t.roles:
        allowed = " or ".join(r.label for r in sorted(t.roles, key=lambda r: r.value))
        return [f"Only {allowed} can do this."]
    if t.needs_reason and not reason.strip():
        return ["Say why (a reason is required)."]
    if note_problem(reason):
        return [note_problem(reason)]
    return t.guard(conversion)



@transaction.atomic
def perform(conversion: Conversion, name: str, *, user=None, reason: str = "", **params) -> Conversion:
    """Carry out transition `name` for `user` (None: the worker). Raises TransitionRefused."""
    try:
        t = TRANSITIONS[name]
    except KeyError:
        raise TransitionRefused(name, [f"There is no step action called “{name}”."]) from None
    locked = Conversion.objects.select_for_update().select_related("district").get(pk=conversion.pk)
    problems = problems_with(locked, t, role_in(user, locked.district), reason)
    if problems:
        raise TransitionRefused(t.label, problems)

    before = getattr(locked, t.field)
    setattr(locked, t.field, t.target)
    changed = [t.field]
    if t.field == "state":
        locked.state_changed_at = timezone.now()
        changed.append("state_changed_at")
    if t.effect:
        changed += t.effect(locked, params)
    locked.save(update_fields=changed)

    detail: dict = {}
    if t.approval:
        subject, fingerprint = t.approval_subject(locked) if t.approval_subject else ("", "")
        approval = Approval.objects.create(
            conversion=locked, kind=t.approval, subject=subject, fingerprint=fingerprint,
            approved_by=user, note=reason,
        )
        detail = {"approval": approval.pk, "subject": subject, "fingerprint": fingerprint}
        notifications.notify_consultants_of_approval(locked, approval)  # consultants hear of every approval
    audit.record(
        district=locked.district, conversion=locked, user=user, action=t.name,
        summary=t.label + (" (approval)" if t.approval else ""),
        from_state=before, to_state=t.target, reason=reason, detail=detail,
    )
    conversion.refresh_from_db()
    return conversion


@dataclass
class Action:
    """A move offered on the district page, with what still blocks it."""

    transition: Transition
    problems: list[str]

    @property
    def allowed(self) -> bool:
        return not self.problems


def next_actions(conversion: Conversion, user) -> list[Action]:
    """The moves from the current states that `user`'s role may make, with their blockers."""
    role = role_in(user, conversion.district)
    actions = []
    for t in TRANSITIONS.values():
        if getattr(conversion, t.field) not in t.sources or role not in t.roles:
            continue
        problems = [] if t.needs_reason else t.guard(conversion)
        actions.append(Action(t, problems))
    return actions


def waiting_on_district(conversion: Conversion) -> list[Transition]:
    """District approvals the conversion is waiting for (shown to consultants and admins alike)."""
    return [
        t for t in TRANSITIONS.values()
        if getattr(conversion, t.field) in t.sources and t.roles == DISTRICT
    ]


# ---- the task list -----------------------------------------------------------------------------

STEPS: tuple[tuple[int, str, str], ...] = (
    (1, S.AGENT_SETUP, "Set up the SIF agent with the ZIS URL and Zone ID, in Pull mode over HTTP, with the school year, plug-ins, zone status and schools checked."),
    (2, S.CONNECTION, "Connect to the zone, pull the data and verify with the district that it is what Canvas needs."),
    (3, S.PAUSE, "Pause the current Canvas sync on May 31, or a custom date where the school year ends in June. Grade passback keeps working."),
    (4, S.MAPPING, "Check that the data arriving through SIF matches what Canvas holds now."),
    (5, S.REMAPPING, "Move every Canvas user's sis_user_id from the PowerSchool ID to the DCID, which stays the same when a student changes school."),
    (6, S.GO_LIVE, "From the appointed date, a nightly sync at midnight Mountain time, only when there is new data."),
)


@dataclass
class StepView:
    number: int
    title: str
    description: str
    status: str  # "done" | "current" | "waiting" | "upcoming" | "optional"
    status_label: str


def step_overview(conversion: Conversion) -> list[StepView]:
    waiting = {t.sources[0] for t in waiting_on_district(conversion) if t.field == "state"}
    result = []
    for number, state, description in STEPS:
        if conversion.is_past(state):
            status, label = "done", "Done"
        elif conversion.state == state:
            status, label = ("waiting", "Waiting for the district") if state in waiting else ("current", "In progress")
        else:
            status, label = "upcoming", "Not started"
        result.append(StepView(number, S(state).label, description, status, label))
    gpb = conversion.gpb_state
    gpb_status = {
        G.NOT_REQUESTED: ("optional", "Optional, not requested"),
        G.PLUGIN_PENDING: ("waiting", "Waiting for the district"),
        G.PLUGIN_INSTALLED: ("current", "Ready to enable"),
        G.ENABLED: ("done", "Enabled"),
    }[gpb]
    result.append(StepView(
        7, "Grade passback (optional)",
        "Send Canvas grades to PowerSchool's legacy gradebook or PowerTeacher Pro through the plug-in.",
        *gpb_status,
    ))
    return result


# ---- which jobs may run when -------------------------------------------------------------------

# kind -> the main-track states in which a consultant may start it by hand.
JOB_STATES: dict[str, tuple[str, ...]] = {
    JobKind.TEST_CONNECTION: (S.AGENT_SETUP, S.CONNECTION, S.PAUSE, S.MAPPING, S.REMAPPING, S.GO_LIVE, S.LIVE),
    JobKind.PULL: (S.CONNECTION, S.PAUSE, S.MAPPING, S.REMAPPING, S.GO_LIVE, S.LIVE),
    JobKind.MAPPING: (S.MAPPING, S.REMAPPING),
    JobKind.REMAP: (S.REMAPPING,),
    JobKind.REMAP_ROLLBACK: (S.REMAPPING, S.GO_LIVE),
    JobKind.SYNC: (S.LIVE,),
    JobKind.REMASTER: (S.LIVE,),
    JobKind.SYNC_UNDO: (S.LIVE,),
    JobKind.GRADE_PASSBACK: tuple(STATE_ORDER),
}


def job_problems(conversion: Conversion, kind: str, user) -> list[str]:
    """Why `user` may not start a `kind` job now (empty: they may)."""
    role = role_in(user, conversion.district)
    if role not in (Role.CONSULTANT, Role.WORKER):
        return ["Only an implementation consultant can start jobs."]
    if conversion.state not in JOB_STATES.get(kind, ()):
        return [f"“{JobKind(kind).label}” is not part of the step “{S(conversion.state).label}”."]
    if kind in (JobKind.TEST_CONNECTION, JobKind.PULL) and not (conversion.zis_url and conversion.zone_id):
        return ["Enter the ZIS URL and Zone ID first."]
    if kind == JobKind.SYNC and conversion.nightly_sync_paused:
        return ["The roster sync is held; resume it first."]
    if kind == JobKind.GRADE_PASSBACK and conversion.gpb_state != G.ENABLED:
        return ["Grade passback is not enabled."]
    if kind in (JobKind.MAPPING, JobKind.REMAP, JobKind.SYNC, JobKind.REMASTER, JobKind.SYNC_UNDO) \
            and not conversion.district.canvas_url:
        return ["The district's Canvas URL is not set."]
    # A sync, a remaster and an undo all change the district's roster in Canvas: one at a time.
    roster = (JobKind.SYNC, JobKind.REMASTER, JobKind.SYNC_UNDO)
    kinds = roster if kind in roster else (kind,)
    if conversion.jobs.filter(kind__in=kinds, state__in=(JobState.QUEUED, JobState.RUNNING)).exists():
        return ["One is already queued or running."]
    if kind == JobKind.REMAP:
        from conversion.services import legacy_watch  # step 3, verified: no remap while legacy imports arrive

        return legacy_watch.still_arriving(conversion)
    return []


def startable_jobs(conversion: Conversion, user) -> list[tuple[str, str, list[str]]]:
    """(kind, label, problems) for each job of the current step, for the page's buttons."""
    if role_in(user, conversion.district) is not Role.CONSULTANT:
        return []
    return [
        (kind, JobKind(kind).label, job_problems(conversion, kind, user))
        for kind, states in JOB_STATES.items()
        if conversion.state in states and (kind != JobKind.GRADE_PASSBACK or conversion.gpb_state == G.ENABLED)
        # started from the sync history, with a reason (sync.start_remaster, sync_undo.start_undo)
        and kind not in (JobKind.REMASTER, JobKind.SYNC_UNDO)
    ]


@transaction.atomic
def set_nightly_sync_held(conversion: Conversion, held: bool, *, user, reason: str) -> None:
    """Hold or resume the roster sync after go-live (grade passback is not affected)."""
    role = role_in(user, conversion.district)
    if role not in (Role.CONSULTANT, Role.WORKER):
        raise TransitionRefused("Hold the nightly sync", ["Only an implementation consultant can do this."])
    if conversion.state != S.LIVE:
        raise TransitionRefused("Hold the nightly sync", ["The conversion is not live yet."])
    if not reason.strip():
        raise TransitionRefused("Hold the nightly sync", ["Say why (a reason is required)."])
    if note_problem(reason):
        raise TransitionRefused("Hold the nightly sync", [note_problem(reason)])
    locked = Conversion.objects.select_for_update().get(pk=conversion.pk)
    if locked.nightly_sync_paused == held:
        return
    locked.nightly_sync_paused = held
    locked.save(update_fields=["nightly_sync_paused"])
    audit.record(
        district=locked.district, conversion=locked, user=user,
        action="hold_nightly_sync" if held else "resume_nightly_sync",
        summary="Held the nightly roster sync" if held else "Resumed the nightly roster sync", reason=reason,
    )
    conversion.refresh_from_db()
