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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from conversion import audit, signals
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
from conversion.rules import AccessRefused, Role, role_in
from conversion.services import legacy_seen
from conversion.services.step_data import Part

S = ConversionState
G = GpbState

Guard = Callable[[Conversion], list[str]]
# Which of the conversion's two state fields a transition moves: the main track or step 7's side track.
Track = Literal["state", "gpb_state"]


class ApprovalSubject(NamedTuple):
    """What an approval approves: the record ("snapshot:12") and its fingerprint when it was approved."""

    subject: str
    fingerprint: str


NO_SUBJECT = ApprovalSubject("", "")


class TransitionRefused(Exception):
    """A move the workflow does not allow now; `problems` says why, one sentence each."""

    def __init__(self, label: str, problems: list[str]):
        self.label = label
        self.problems = problems
        super().__init__(f"{label} is not possible: " + " ".join(problems))


def _no_problems(conversion: Conversion) -> list[str]:
    return []


@dataclass(frozen=True, kw_only=True)
class Transition:
    """One move of the workflow: from `sources` to `target` on `field`, by `roles`, when `guard` says so."""

    name: str
    label: str
    sources: tuple[str, ...]
    target: str
    roles: frozenset[Role]
    guard: Guard = _no_problems
    field: Track = "state"
    needs_reason: bool = False
    approval: str = ""  # An ApprovalKind recorded with the move, tied to `approval_subject`.
    approval_subject: Callable[[Conversion], ApprovalSubject] | None = None
    effect: Callable[[Conversion, dict[str, Any]], list[str]] | None = None  # returns the fields it changed
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
    return _remap_problems(latest_job(c, JobKind.REMAP, succeeded=False))


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


def _mark_paused(c: Conversion, params: dict[str, Any]) -> list[str]:
    c.legacy_sync_paused_at = timezone.now()
    return ["legacy_sync_paused_at"]


def _mark_live(c: Conversion, params: dict[str, Any]) -> list[str]:
    c.live_since = timezone.now()
    c.nightly_sync_paused = False
    return ["live_since", "nightly_sync_paused"]


def _snapshot_subject(c: Conversion) -> ApprovalSubject:
    snap = _latest_snapshot(c)
    return ApprovalSubject(f"snapshot:{snap.pk}", snap.fingerprint) if snap else NO_SUBJECT


def _diff_subject(c: Conversion) -> ApprovalSubject:
    diff = MappingDiff.objects.current(c)
    return ApprovalSubject(f"mapping_diff:{diff.pk}", diff.fingerprint) if diff else NO_SUBJECT


# ---- the transitions ---------------------------------------------------------------------------

CONSULTANT = frozenset({Role.CONSULTANT})
DISTRICT = frozenset({Role.DISTRICT_ADMIN})
CONSULTANT_OR_WORKER = frozenset({Role.CONSULTANT, Role.WORKER})

_MAIN: list[Transition] = [
    Transition(
        name="confirm_agent_setup",
        label="Confirm the SIF agent is set up",
        sources=(S.AGENT_SETUP,),
        target=S.CONNECTION,
        roles=DISTRICT,
        guard=guard_agent_ready,
        approval=ApprovalKind.AGENT_READY,
        help="The district confirms its SIF agent is connected to the zone with the settings checked.",
    ),
    Transition(
        name="verify_pull",
        label="Verify the pulled data",
        sources=(S.CONNECTION,),
        target=S.PAUSE,
        roles=DISTRICT,
        guard=guard_pull_verified,
        approval=ApprovalKind.PULL_VERIFIED,
        approval_subject=_snapshot_subject,
        help="The district confirms the pulled schools, people and classes are the ones Canvas should get.",
    ),
    Transition(
        name="pause_legacy_sync",
        label="Pause the current Canvas sync",
        sources=(S.PAUSE,),
        target=S.MAPPING,
        roles=CONSULTANT_OR_WORKER,
        guard=guard_pause_date_reached,
        effect=_mark_paused,
        help="Stops the legacy roster sync on the pause date; grade passback keeps working.",
    ),
    Transition(
        name="approve_mapping",
        label="Approve the mapping",
        sources=(S.MAPPING,),
        target=S.REMAPPING,
        roles=DISTRICT,
        guard=guard_mapping_approvable,
        approval=ApprovalKind.MAPPING,
        approval_subject=_diff_subject,
        help="The district approves the match between SIF data and Canvas; new data needs a new approval.",
    ),
    Transition(
        name="complete_remap",
        label="Finish the remap",
        sources=(S.REMAPPING,),
        target=S.GO_LIVE,
        roles=CONSULTANT_OR_WORKER,
        guard=guard_remap_verified,
        help="Every Canvas user now carries its DCID as sis_user_id.",
    ),
    Transition(
        name="go_live",
        label="Go live",
        sources=(S.GO_LIVE,),
        target=S.LIVE,
        roles=CONSULTANT_OR_WORKER,
        guard=guard_go_live_date_reached,
        effect=_mark_live,
        help="From now on a nightly sync runs at midnight Mountain time when data changed.",
    ),
]


def _back_transitions() -> list[Transition]:
    """A consultant may send a conversion back to an earlier step (not once live), with a reason."""
    result = []
    main = STATE_ORDER[: STATE_ORDER.index(S.LIVE)]
    for i, target in enumerate(main[:-1]):
        sources = tuple(main[i + 1 :])
        result.append(
            Transition(
                name=f"back_to_{target}",
                label=f"Return to “{S(target).label}”",
                sources=sources,
                target=target,
                roles=CONSULTANT,
                needs_reason=True,
                help="Reopens an earlier step; the later steps will have to be done again.",
            )
        )
    return result


_GPB: list[Transition] = [
    Transition(
        name="request_gpb",
        label="Request grade passback",
        sources=(G.NOT_REQUESTED,),
        target=G.PLUGIN_PENDING,
        roles=frozenset({Role.CONSULTANT, Role.DISTRICT_ADMIN}),
        guard=guard_gradebook_chosen,
        field="gpb_state",
        help="Install the grade passback plug-in in PowerSchool (it works for both gradebooks).",
    ),
    Transition(
        name="confirm_plugin_installed",
        label="Confirm the plug-in is installed",
        sources=(G.PLUGIN_PENDING,),
        target=G.PLUGIN_INSTALLED,
        roles=DISTRICT,
        field="gpb_state",
        approval=ApprovalKind.PLUGIN_INSTALLED,
    ),
    Transition(
        name="enable_gpb",
        label="Enable grade passback",
        sources=(G.PLUGIN_INSTALLED,),
        target=G.ENABLED,
        roles=CONSULTANT,
        guard=guard_gpb_can_run,
        field="gpb_state",
    ),
    Transition(
        name="disable_gpb",
        label="Turn grade passback off",
        sources=(G.PLUGIN_PENDING, G.PLUGIN_INSTALLED, G.ENABLED),
        target=G.NOT_REQUESTED,
        roles=CONSULTANT,
        field="gpb_state",
        needs_reason=True,
    ),
]

TRANSITIONS: Final[Mapping[str, Transition]] = MappingProxyType(
    {t.name: t for t in [*_MAIN, *_back_transitions(), *_GPB]}
)


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
    changed: list[str] = [t.field]
    if t.field == "state":
        locked.state_changed_at = timezone.now()
        changed.append("state_changed_at")
    if t.effect:
        changed += t.effect(locked, params)
    locked.save(update_fields=changed)

    detail: dict[str, Any] = {}
    if t.approval:
        subject, fingerprint = t.approval_subject(locked) if t.approval_subject else NO_SUBJECT
        approval = Approval.objects.create(
            conversion=locked,
            kind=t.approval,
            subject=subject,
            fingerprint=fingerprint,
            approved_by=user,
            note=reason,
        )
        detail = {"approval": approval.pk, "subject": subject, "fingerprint": fingerprint}
        # Consultants hear of every approval (services/notifications.py receives it in this transaction).
        signals.approval_recorded.send(sender=Approval, conversion=locked, approval=approval)
    audit.record(
        district=locked.district,
        conversion=locked,
        user=user,
        action=t.name,
        summary=t.label + (" (approval)" if t.approval else ""),
        from_state=before,
        to_state=t.target,
        reason=reason,
        detail=detail,
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
    """District approvals the conversion is waiting for now (shown to consultants and admins alike): the main
    track's next action when it is the district's, and step 7's plug-in confirmation."""
    waiting = []
    step = next_step(conversion)
    if step.actor == "district" and step.transition is not None:
        waiting.append(step.transition)
    if conversion.gpb_state == G.PLUGIN_PENDING:
        waiting.append(TRANSITIONS["confirm_plugin_installed"])
    return waiting


# ---- the task list -----------------------------------------------------------------------------


class Step(NamedTuple):
    """One of the six main-track steps of the task list: its number, the state it is, what it does."""

    number: int
    state: ConversionState
    description: str


STEPS: Final[tuple[Step, ...]] = (
    Step(
        1,
        S.AGENT_SETUP,
        "Set up the SIF agent with the ZIS URL and Zone ID, in Pull mode over HTTP, with the school year, "
        "plug-ins, zone status and schools checked.",
    ),
    Step(
        2, S.CONNECTION, "Connect to the zone, pull the data and verify with the district that it is what Canvas needs."
    ),
    Step(
        3,
        S.PAUSE,
        "Pause the current Canvas sync on May 31, or a custom date where the school year ends in June. Grade "
        "passback keeps working.",
    ),
    Step(4, S.MAPPING, "Check that the data arriving through SIF matches what Canvas holds now."),
    Step(
        5,
        S.REMAPPING,
        "Move every Canvas user's sis_user_id from the PowerSchool ID to the DCID, which stays the same when a "
        "student changes school.",
    ),
    Step(
        6, S.GO_LIVE, "From the appointed date, a nightly sync at midnight Mountain time, only when there is new data."
    ),
)

# Where a step of the task list stands (the page draws each in its own words and colour).
StepStatus = Literal["done", "current", "waiting", "upcoming", "optional"]


class StepStanding(NamedTuple):
    status: StepStatus
    label: str


# Step 7's standing follows the grade passback track.
GPB_STANDING: Final[Mapping[str, StepStanding]] = MappingProxyType(
    {
        G.NOT_REQUESTED: StepStanding("optional", "Optional, not requested"),
        G.PLUGIN_PENDING: StepStanding("waiting", "Waiting for the district"),
        G.PLUGIN_INSTALLED: StepStanding("current", "Ready to enable"),
        G.ENABLED: StepStanding("done", "Enabled"),
    }
)


@dataclass
class StepView:
    number: int
    title: str
    description: str
    status: StepStatus
    status_label: str


def step_overview(conversion: Conversion) -> list[StepView]:
    waiting = {t.sources[0] for t in waiting_on_district(conversion) if t.field == "state"}
    result = []
    for step in STEPS:
        if conversion.is_past(step.state):
            standing = StepStanding("done", "Done")
        elif conversion.state == step.state:
            standing = (
                StepStanding("waiting", "Waiting for the district")
                if step.state in waiting
                else StepStanding("current", "In progress")
            )
        else:
            standing = StepStanding("upcoming", "Not started")
        result.append(StepView(step.number, step.state.label, step.description, *standing))
    result.append(
        StepView(
            7,
            "Grade passback (optional)",
            "Send Canvas grades to PowerSchool's legacy gradebook or PowerTeacher Pro through the plug-in.",
            *GPB_STANDING[conversion.gpb_state],
        )
    )
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
    if (
        kind in (JobKind.MAPPING, JobKind.REMAP, JobKind.SYNC, JobKind.REMASTER, JobKind.SYNC_UNDO)
        and not conversion.district.canvas_url
    ):
        return ["The district's Canvas URL is not set."]
    # A sync, a remaster and an undo all change the district's roster in Canvas: one at a time.
    roster = (JobKind.SYNC, JobKind.REMASTER, JobKind.SYNC_UNDO)
    kinds = roster if kind in roster else (kind,)
    if conversion.jobs.filter(kind__in=kinds, state__in=(JobState.QUEUED, JobState.RUNNING)).exists():
        return ["One is already queued or running."]
    if kind == JobKind.REMAP:
        return legacy_seen.still_arriving(conversion)  # step 3, verified: no remap while legacy imports arrive
    return []


class StartableJob(NamedTuple):
    """A job of the current step, for the page's buttons: its kind, label and what stops it now."""

    kind: str
    label: str
    problems: list[str]


def startable_jobs(conversion: Conversion, user: Any) -> list[StartableJob]:
    """Each job of the current step a consultant may start, with what stops it now."""
    if role_in(user, conversion.district) is not Role.CONSULTANT:
        return []
    return [
        StartableJob(kind, JobKind(kind).label, job_problems(conversion, kind, user))
        for kind, states in JOB_STATES.items()
        if conversion.state in states
        and (kind != JobKind.GRADE_PASSBACK or conversion.gpb_state == G.ENABLED)
        # started from the sync history, with a reason (sync.start_remaster, sync_undo.start_undo)
        and kind not in (JobKind.REMASTER, JobKind.SYNC_UNDO)
    ]


@transaction.atomic
def set_nightly_sync_held(conversion: Conversion, held: bool, *, user, reason: str) -> None:
    """Hold or resume the roster sync after go-live (grade passback is not affected)."""
    role = role_in(user, conversion.district)
    if role not in (Role.CONSULTANT, Role.WORKER):
        raise AccessRefused("Only an implementation consultant can hold or resume the nightly sync.")
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
        district=locked.district,
        conversion=locked,
        user=user,
        action="hold_nightly_sync" if held else "resume_nightly_sync",
        summary="Held the nightly roster sync" if held else "Resumed the nightly roster sync",
        reason=reason,
    )
    conversion.refresh_from_db()


# ---- the one next action -----------------------------------------------------------------------

SCHEDULER_ZONE = ZoneInfo("America/Denver")  # the beat schedule's zone (services/schedule.py)


Verdict = Literal["failed", "warned", "passed"]


class ConnectionVerdict(NamedTuple):
    """What a connection test found: its verdict and one sentence per finding (failures first)."""

    verdict: Verdict
    findings: list[str]


def connection_findings(detail: dict[str, Any] | None, failed: bool = False) -> ConnectionVerdict:
    """What a connection test found that stands in the conversion's way. A test that ran to the end can
    still have found a blocker: the zone not ready, an agent in Push mode, an object that no agent provides."""
    detail = detail or {}
    failures, warnings = [], []
    if failed:
        failures.append("The test did not finish.")
    if detail.get("registered") and detail.get("ping") is False:
        failures.append("The ZIS did not answer the ping.")
    zone = detail.get("zone") or {}
    if zone:
        if zone.get("ready") is False:
            failures.append(f"Zone {zone.get('zone_id', '')} is not ready.")
        elif zone.get("ready") is None:
            warnings.append(f"Zone {zone.get('zone_id', '')} did not say whether it is ready.")
        for node in zone.get("nodes") or []:
            if (node.get("mode") or "").lower() == "push":
                warnings.append(
                    f"{node.get('name') or node.get('source_id')} is in Push mode; the conversion needs Pull."
                )
        missing = zone.get("missing_providers") or []
        if missing:
            warnings.append("No agent provides " + ", ".join(missing) + ".")
    verdict: Verdict = "failed" if failures else "warned" if warnings else "passed"
    return ConnectionVerdict(verdict, failures + warnings)


# Who takes the next step ("nobody" once nothing is due).
Actor = Literal["consultant", "district", "scheduler", "nobody"]
ACTOR_LABELS: Final[Mapping[Actor, str]] = MappingProxyType(
    {
        "consultant": "The implementation consultant",
        "district": "The district admin",
        "scheduler": "The scheduler",
        "nobody": "Nobody",
    }
)


@dataclass
class NextStep:
    """The one thing that moves the conversion on now, who must do it, and what it needs.

    `transition` is the move it ends in, `job` a job to run first, `part` the step data
    (step_data.EDITABLE_PARTS) it needs filled in, `when` the moment the scheduler does it by itself.
    """

    actor: Actor
    title: str
    detail: str = ""
    transition: Transition | None = None
    job: str = ""
    part: Part | Literal[""] = ""
    when: dt.datetime | None = None
    problems: list[str] | None = None

    @property
    def actor_label(self) -> str:
        return ACTOR_LABELS[self.actor]

    def is_for(self, role: Role | None) -> bool:
        """Whether `role` takes this action (a consultant may also do what the scheduler would)."""
        if self.actor == "district":
            return role is Role.DISTRICT_ADMIN
        if self.actor == "consultant":
            return role is Role.CONSULTANT
        return False  # the scheduler's: nobody needs to act (a consultant may still change its date)


def scheduler_moment(conversion: Conversion, day: dt.date) -> dt.datetime:
    """When the beat's 00:05 Mountain run first finds `day` come in the district's time zone."""
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=conversion.district.tzinfo).astimezone(SCHEDULER_ZONE)
    run = dt.datetime.combine(start.date(), dt.time(0, 5), tzinfo=SCHEDULER_ZONE)
    return run if run >= start else run + dt.timedelta(days=1)


def next_nightly_run(now: dt.datetime | None = None) -> dt.datetime:
    now = (now or timezone.now()).astimezone(SCHEDULER_ZONE)
    return dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(0, 0), tzinfo=SCHEDULER_ZONE)


@dataclass
class StepFacts:
    """What next_step reads beyond the conversion row: loaded per conversion (`step_facts`) or for a whole
    portfolio in a few queries (`step_facts_for`)."""

    latest_test: Job | None = None  # the newest connection test, finished or not
    has_pull: bool = False  # a complete snapshot exists
    current_diff: MappingDiff | None = None  # MappingDiff.objects.current
    latest_remap: Job | None = None  # the newest remap job, finished or not


def step_facts(conversion: Conversion) -> StepFacts:
    state = conversion.state
    facts = StepFacts()
    if state == S.CONNECTION:
        facts.latest_test = latest_job(conversion, JobKind.TEST_CONNECTION, succeeded=False)
        facts.has_pull = _latest_snapshot(conversion) is not None
    elif state == S.MAPPING:
        facts.current_diff = MappingDiff.objects.current(conversion)
    elif state == S.REMAPPING:
        facts.latest_remap = latest_job(conversion, JobKind.REMAP, succeeded=False)
    return facts


def _newest(jobs) -> Job | None:
    """As latest_job orders them: -finished_at (unfinished first, as PostgreSQL sorts NULL), then -id."""
    return max(
        jobs,
        key=lambda j: (j.finished_at is None, j.finished_at or dt.datetime.min.replace(tzinfo=dt.UTC), j.pk),
        default=None,
    )


def step_facts_for(conversions) -> dict[int, StepFacts]:
    """step_facts for many conversions at once (a handful of queries, whatever their number)."""
    by_state: dict[str, list[int]] = {}
    for c in conversions:
        by_state.setdefault(c.state, []).append(c.pk)
    facts = {c.pk: StepFacts() for c in conversions}
    wanted = {JobKind.TEST_CONNECTION: by_state.get(S.CONNECTION, []), JobKind.REMAP: by_state.get(S.REMAPPING, [])}
    for kind, ids in wanted.items():
        if not ids:
            continue
        per: dict[int, list[Job]] = {}
        for job in Job.objects.filter(conversion_id__in=ids, kind=kind).only(
            "conversion_id", "state", "detail", "finished_at"
        ):
            per.setdefault(job.conversion_id, []).append(job)
        for pk, jobs in per.items():
            if kind == JobKind.TEST_CONNECTION:
                facts[pk].latest_test = _newest(jobs)
            else:
                facts[pk].latest_remap = _newest(jobs)
    snap_ids = by_state.get(S.CONNECTION, []) + by_state.get(S.MAPPING, [])
    latest_snap: dict[int, int] = {}
    if snap_ids:
        for conv, pk, _ in sorted(
            Snapshot.objects.filter(conversion_id__in=snap_ids, state="complete").values_list(
                "conversion_id", "id", "completed_at"
            ),
            key=lambda r: (r[2] is not None, r[2] or dt.datetime.min.replace(tzinfo=dt.UTC), r[1]),
        ):
            latest_snap[conv] = pk  # the last one sorted is the newest, as latest_complete orders
        for conv in by_state.get(S.CONNECTION, []):
            facts[conv].has_pull = conv in latest_snap
    mapping = [c for c in by_state.get(S.MAPPING, []) if c in latest_snap]
    if mapping:
        diffs: dict[int, MappingDiff] = {}
        for diff in MappingDiff.objects.filter(
            conversion_id__in=mapping, snapshot_id__in=[latest_snap[c] for c in mapping]
        ).only("conversion_id", "snapshot_id", "blocking_count", "created_at"):
            if diff.snapshot_id != latest_snap[diff.conversion_id]:
                continue
            best = diffs.get(diff.conversion_id)
            if best is None or (diff.created_at, diff.pk) > (best.created_at, best.pk):
                diffs[diff.conversion_id] = diff
        for conv, diff in diffs.items():
            facts[conv].current_diff = diff
    return facts


def _remap_problems(job: Job | None) -> list[str]:
    if job is None or job.state != JobState.SUCCEEDED:
        return ["The remap to DCID has not completed."]
    unverified = (job.detail or {}).get("unverified", 0)
    return [f"{unverified} Canvas user(s) still lack their DCID."] if unverified else []


def next_step(conversion: Conversion, facts: StepFacts | None = None) -> NextStep:
    """The main track's next action (the same for every viewer: who takes it is part of the answer)."""
    T = TRANSITIONS
    state = conversion.state
    facts = facts or step_facts(conversion)
    if state == S.AGENT_SETUP:
        if not (conversion.zis_url and conversion.zone_id):
            return NextStep(
                "consultant",
                "Enter the ZIS URL and Zone ID",
                "The district's agent posts to <ZIS URL>/<Zone ID>.",
                part="zis",
                problems=guard_agent_ready(conversion)[:2],
            )
        return NextStep(
            "district",
            T["confirm_agent_setup"].label,
            "Tick each agent setting once it is checked in the SIF Agent Console, then confirm.",
            transition=T["confirm_agent_setup"],
            part="checklist",
            problems=guard_agent_ready(conversion),
        )
    if state == S.CONNECTION:
        test = facts.latest_test
        verdict = connection_findings(test.detail, test.state == JobState.FAILED)[0] if test else "none"
        if test is None or test.state != JobState.SUCCEEDED or verdict != "passed":
            detail = (
                "No connection test has run yet."
                if test is None
                else "The last connection test found a problem: resolve it, then run the test again."
                if test.is_finished
                else "The connection test is running."
            )
            return NextStep("consultant", "Run the connection test", detail, job=JobKind.TEST_CONNECTION)
        if not facts.has_pull:
            return NextStep(
                "consultant", "Pull from the zone", "The district verifies the pulled data next.", job=JobKind.PULL
            )
        return NextStep(
            "district", T["verify_pull"].label, T["verify_pull"].help, transition=T["verify_pull"], problems=[]
        )
    if state == S.PAUSE:
        problems = guard_pause_date_reached(conversion)
        if problems:
            return NextStep(
                "scheduler",
                T["pause_legacy_sync"].label,
                "Paused by the scheduler on the pause date; change the date if the school year ends in June.",
                transition=T["pause_legacy_sync"],
                part="pause_date",
                when=scheduler_moment(conversion, conversion.effective_pause_date),
                problems=problems,
            )
        return NextStep(
            "consultant",
            T["pause_legacy_sync"].label,
            T["pause_legacy_sync"].help,
            transition=T["pause_legacy_sync"],
            problems=[],
        )
    if state == S.MAPPING:
        diff = facts.current_diff
        if diff is None:
            return NextStep(
                "consultant", "Run the mapping check", "It compares the newest pull with Canvas.", job=JobKind.MAPPING
            )
        if diff.blocking_count:
            return NextStep(
                "consultant",
                "Resolve the conflicting records",
                f"{diff.blocking_count} record(s) conflict: correct them in PowerSchool or Canvas, "
                "pull again and run the mapping check again.",
                job=JobKind.MAPPING,
            )
        return NextStep(
            "district",
            T["approve_mapping"].label,
            T["approve_mapping"].help,
            transition=T["approve_mapping"],
            problems=[],
        )
    if state == S.REMAPPING:
        job = facts.latest_remap
        if job is None or job.state != JobState.SUCCEEDED:
            return NextStep(
                "consultant",
                "Remap Canvas users to DCID",
                "Download the planned change file first if the district wants to see it.",
                job=JobKind.REMAP,
            )
        return NextStep(
            "consultant",
            T["complete_remap"].label,
            T["complete_remap"].help,
            transition=T["complete_remap"],
            problems=_remap_problems(job),
        )
    if state == S.GO_LIVE:
        if conversion.go_live_date is None:
            return NextStep(
                "consultant",
                "Set the go-live date",
                "The scheduler goes live on that date.",
                transition=T["go_live"],
                part="go_live_date",
                problems=["No go-live date is set."],
            )
        problems = guard_go_live_date_reached(conversion)
        if problems:
            return NextStep(
                "scheduler",
                T["go_live"].label,
                T["go_live"].help,
                transition=T["go_live"],
                part="go_live_date",
                when=scheduler_moment(conversion, conversion.go_live_date),
                problems=problems,
            )
        return NextStep("consultant", T["go_live"].label, T["go_live"].help, transition=T["go_live"], problems=[])
    if conversion.nightly_sync_paused:
        return NextStep("consultant", "Resume the nightly sync", "The roster sync is held; grade passback runs.")
    return NextStep(
        "scheduler", "Nightly sync to Canvas", "Runs when PowerSchool's data changed.", when=next_nightly_run()
    )
