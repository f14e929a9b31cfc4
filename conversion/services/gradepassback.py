"""Step 7: grade passback. Canvas assignments flagged "post to SIS" and their scores go to PowerSchool as
SIF_Event GradingAssignment / GradingAssignmentScore through the ZIS.

`run_grade_passback(job, progress)`:
1. map Canvas to SIF with the latest complete snapshot: a course ``sec_<SectionInfo LocalId>`` is that
   section; a student's sis_user_id is the PowerSchool ID before the remap and the DCID after it (both
   are accepted, so a run during the remap finds everyone);
2. check the plug-in as the zone shows it (PowerSchool subscribes to the grading objects), then provision;
3. per course, Delete in PowerSchool what Canvas no longer passes back (deleted, unpublished, unticked), then
   read the post-to-SIS assignments and the submissions graded since the last successful run (the whole course
   when something in it is new or was not accepted yet);
4. check each record against the gradebook's rules (GRADEBOOKS: name length, the category named by the
   assignment group, assignments for some students only, exempt/missing/late) and refuse it with a reason,
   or send it: Add the first time, Change once the ZIS accepted it before;
5. record every outcome in GradePassbackItem; what the ZIS accepted is not sent again unless it changed;
6. read the section's grading objects back from the zone and mark each accepted item confirmed, different or
   unconfirmed (the zone may have no provider for them).

It never looks at the roster sync's pause: grade passback keeps working while step 3 holds the sync.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Generic, TypeVar

from django.utils import timezone

from canvas.client import CanvasClient
from canvas.models import Assignment as CanvasAssignment
from canvas.models import Course as CanvasCourse
from canvas.models import Submission
from conversion.jobs import JobFailed, Progress
from conversion.models import (
    Confirmation,
    Conversion,
    GpbCategoryOverride,
    GpbState,
    GpbStatus,
    Gradebook,
    GradePassbackItem,
    Job,
    SifRecord,
    Snapshot,
)
from conversion.services.canvas_api import canvas_for
from conversion.services.roster import Person, Roster, Section
from conversion.services.sifdata import data_of
from conversion.services.zis import agent_for, register, zis_failures
from sifclient import SifError, ZoneAsleepError
from sifclient.agent import Agent
from sifclient.messages import Provision
from sifclient.query import Condition, Query
from sifclient.records import GradingAssignment, GradingAssignmentScore

# What grade passback publishes. A ZIS passes on an event only from the object's provider, with permission to
# publish that action (OpenZIS: event/Event.php), so the agent declares both with SIF_Provision first; Delete
# removes what a teacher deleted or unposted in Canvas.
PUBLISHED = ("GradingAssignment", "GradingAssignmentScore")
PROVISION = Provision(provide=PUBLISHED, publish_add=PUBLISHED, publish_change=PUBLISHED, publish_delete=PUBLISHED)
ASLEEP_REASON = "Not sent: the zone was asleep (SIF_Status 8); it is sent on the next run."


@dataclass(frozen=True)
class GradebookRules:
    """What one PowerSchool gradebook takes from grade passback. Checks and messages both read it."""

    label: str
    name_limit: int
    categories: str  # where an assignment's category comes from
    show_categories: bool  # show PowerSchool's categories beside Canvas's groups on the course page
    letter_grades: bool  # a Canvas letter grade goes as ScoreLetter beside the points
    exempt: str  # what happens to a score excused in Canvas
    missing_late: str  # what happens to Canvas's missing / late flags
    partial: str  # "refuse" or "assigned" (send scores of the students it is assigned to only)
    partial_reason: str


# THE table of the two gradebooks. Sources: SIF 2.4 US specification, GradingAssignment and
# GradingAssignmentScore (xsd under /work/shared/sif/xsd: no element for exempt, missing or late, ScorePoints
# xs:unsignedInt, ScoreLetter free text); PowerSchool's SIF agent documentation as summarised in
# /work/shared/sif/README.md (write-back objects accepted by subscription, categories are the section's
# GradingCategory objects); Canvas's PowerSchool grade passback guides (assignment names of at most 30
# characters; PowerTeacher Pro needs a category of the same name as the Canvas assignment group, and takes an
# assignment for some students of a section, which the legacy gradebook does not). What no public document
# states outright (the legacy gradebook refusing per-student assignments) is our reading, marked "assumed".
GRADEBOOKS: dict[str, GradebookRules] = {
    Gradebook.PTP: GradebookRules(
        label="PowerTeacher Pro",
        name_limit=30,
        categories="the section's PowerTeacher Pro categories, matched to the Canvas assignment group by name",
        show_categories=True,
        letter_grades=True,
        exempt="not sent: SIF 2.x has no exempt flag; mark the score Exempt in PowerTeacher Pro",
        missing_late="the score is sent; SIF 2.x carries no missing or late flag, so set it in PowerTeacher Pro",
        partial="assigned",
        partial_reason="PowerTeacher Pro takes it for the students it is assigned to; the others get no score",
    ),
    Gradebook.LEGACY: GradebookRules(
        label="PowerSchool legacy gradebook",
        name_limit=30,
        categories="the section's legacy gradebook categories, matched to the Canvas assignment group by name",
        show_categories=False,
        letter_grades=True,
        exempt="not sent: SIF 2.x has no exempt flag; mark the score exempt in the gradebook",
        missing_late="the score is sent; SIF 2.x carries no missing or late flag",
        partial="refuse",
        partial_reason=(
            "the legacy gradebook has an assignment for the whole section only (assumed), so an "
            "assignment for some students only is not sent"
        ),
    ),
}


def rules_for(gradebook: str) -> GradebookRules:
    # An unchosen gradebook gets the stricter rules: those of the legacy gradebook.
    return GRADEBOOKS.get(gradebook, GRADEBOOKS[Gradebook.LEGACY])


def category_key(name: str) -> str:
    """A group or category name compared with case and spacing ignored."""
    return "".join((name or "").split()).casefold()


# Stable GradingAssignment RefIds: the same Canvas assignment always gets the same RefId (uuid5), so a
# Change reaches the assignment the Add created, across runs and workers.
REFID_NAMESPACE = uuid.UUID("6f1c7f1e-4a55-4d4e-9a52-3c7a1e0b9d21")
PERCENT = Decimal("0.01")


def assignment_ref_id(canvas_url: str, assignment_id: int) -> str:
    return uuid.uuid5(REFID_NAMESPACE, f"{canvas_url.rstrip('/')}/assignments/{assignment_id}").hex.upper()


def _digest(record: GradingAssignment | GradingAssignmentScore) -> str:
    return hashlib.sha256(record.to_bytes()).hexdigest()


# ---- the SIF side of the roster ------------------------------------------------------------------


class GpbRoster:
    """Canvas SIS ids -> SIF RefIds, from one snapshot."""

    def __init__(self, conversion: Conversion, snapshot: Snapshot):
        roster = Roster.for_snapshot(snapshot)
        self.sections: dict[str, Section] = {s.course_id: s for s in roster.sections.values()}
        self.students: dict[str, Person] = {}
        for person in roster.people_by_ref.values():
            if person.kind == "student":
                # Before the remap Canvas holds the PowerSchool ID, after it the DCID: accept both.
                for sis_id in (person.local_id, person.dcid):
                    if sis_id:
                        self.students.setdefault(sis_id, person)
        # section RefId -> {category_key(Description): (RefId, Description)}, in RefId order
        self.categories: dict[str, dict[str, tuple[str, str]]] = {}
        wanted = {s.ref_id for s in self.sections.values()}
        for ref, xml in (
            SifRecord.objects.filter(snapshot=snapshot, object_name="GradingCategory")
            .order_by("ref_id")
            .values_list("ref_id", "xml")
            .iterator(chunk_size=5000)
        ):
            data = data_of(xml)
            section_ref = data.get("section_ref_id")
            if section_ref in wanted:
                name = data.get("description") or ""
                self.categories.setdefault(section_ref, {}).setdefault(category_key(name), (ref, name))

    def category_names(self, section: Section | None) -> list[str]:
        return [name for _, name in self.categories.get(section.ref_id, {}).values()] if section else []

    def category_for(self, section: Section, group: str, overrides: dict[str, str]) -> tuple[str | None, str]:
        """(GradingCategory RefId, "") for the group's category, or (None, why not). Never a default category."""
        wanted = overrides.get(category_key(group), group)
        found = self.categories.get(section.ref_id, {}).get(category_key(wanted))
        if found:
            return found[0], ""
        names = ", ".join(self.category_names(section)) or "none"
        via = f" (the course's mapping files it under \u201c{wanted}\u201d)" if wanted != group else ""
        return None, (
            f"Its assignment group \u201c{group}\u201d{via} matches no PowerSchool category of the section "
            f"(categories: {names}). Rename the group in Canvas to one of these, or set the course's "
            "category mapping."
        )


# ---- preparing records ---------------------------------------------------------------------------


GradingRecord = TypeVar("GradingRecord", GradingAssignment, GradingAssignmentScore)


@dataclass
class Prepared(Generic[GradingRecord]):
    """A record ready to send, with a note for the ledger (how a value was sent)."""

    record: GradingRecord
    note: str = ""


@dataclass(frozen=True)
class Refusal:
    """Why a record cannot be sent, in words for the teacher's report."""

    reason: str


def prepare_assignment(
    assignment: CanvasAssignment,
    section: Section | None,
    roster: GpbRoster,
    ref_id: str,
    name_limit: int,
    duplicate_name: bool,
    tz: dt.tzinfo,
    *,
    group: str = "",
    overrides: dict[str, str] | None = None,
) -> Prepared[GradingAssignment] | Refusal:
    if section is None:
        return Refusal("The course is not a PowerSchool section of the latest pull (no sec_<id> SIS id).")
    problems = []
    if assignment.due_at is None:
        problems.append("It has no due date; PowerSchool needs one: set a due date in Canvas.")
    if len(assignment.name) > name_limit:
        problems.append(
            f"Its name has {len(assignment.name)} characters; the gradebook takes {name_limit}: shorten it in Canvas."
        )
    if duplicate_name:
        problems.append(
            "Another post-to-SIS assignment in this course has the same name; PowerSchool needs unique "
            "names: rename one in Canvas."
        )
    points = assignment.points_possible
    if points is None or points < 0 or points != int(points):
        problems.append(
            f"Points possible ({points}) must be a whole number (SIF PointsPossible is unsignedInt): "
            "change the points possible in Canvas."
        )
    term = section.term
    if term is None:
        problems.append("The section's term is not in the latest pull.")
    category, why = roster.category_for(section, group, overrides or {})
    if category is None:
        problems.append(why)
    due = assignment.due_at
    if problems or term is None or points is None or due is None:
        return Refusal(" ".join(problems))
    return Prepared(
        GradingAssignment(
            ref_id=ref_id,
            section_ref_id=section.ref_id,
            term_ref_id=term.ref_id,
            school_ref_id=section.school.ref_id,
            category_ref_id=category,
            description=assignment.name,
            points_possible=int(points),
            due_date=_local_date(due, tz),
        )
    )


def _local_date(moment: dt.datetime, tz: dt.tzinfo) -> dt.date:
    # A due date is the district's calendar day: 23:59 in Denver is already tomorrow in UTC.
    return moment.astimezone(tz).date() if moment.tzinfo else moment.date()


def prepare_score(
    submission: Submission, assignment: CanvasAssignment, student: Person | None, section: Section | None, ref_id: str
) -> Prepared[GradingAssignmentScore] | Refusal:
    if section is None:  # (its assignment was refused for it already: prepare_assignment)
        return Refusal("The course is not a PowerSchool section of the latest pull (no sec_<id> SIS id).")
    if student is None:
        return Refusal("The student is not in the latest pull (neither PowerSchool ID nor DCID matches).")
    score = submission.score
    if score is None:  # (an ungraded submission is not passed back: pass_back_course)
        return Refusal("Not graded in Canvas.")
    if score < 0:
        return Refusal(f"Negative score ({score}); SIF scores are unsigned.")
    record = GradingAssignmentScore(
        student_ref_id=student.ref_id,
        section_ref_id=section.ref_id,
        school_ref_id=section.school.ref_id,
        assignment_ref_id=ref_id,
    )
    points = assignment.points_possible or 0
    percent = (Decimal(str(score)) * 100 / Decimal(str(points))).quantize(PERCENT, ROUND_HALF_UP) if points else None
    note = ""
    if score == int(score):
        record.score_points = int(score)
        record.score_percent = percent
    elif percent is None:
        return Refusal(f"Fractional score {score} on an assignment without points possible cannot be sent.")
    else:
        # ScorePoints is xs:unsignedInt: a fractional score goes as its percentage instead.
        record.score_percent = percent
        note = f"Fractional score {score} sent as ScorePercent {percent}."
    if submission.grade and not str(submission.grade).replace(".", "", 1).isdigit():
        record.score_letter = str(submission.grade)[:20]
    return Prepared(record, note=note)


# ---- the ledger ------------------------------------------------------------------------------------


@dataclass
class RunCounts:
    accepted: int = 0
    refused: int = 0
    unchanged: int = 0
    deleted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "refused": self.refused,
            "unchanged": self.unchanged,
            **({"deleted": self.deleted} if self.deleted else {}),
        }


class Ledger:
    """The GradePassbackItem rows of one conversion, and sending through one agent."""

    def __init__(self, conversion: Conversion, job: Job, agent: Agent, *, can_delete: bool = True):
        self.can_delete = can_delete
        self.conversion = conversion
        self.job = job
        self.agent = agent
        self.counts = RunCounts()

    def item(
        self,
        *,
        course: CanvasCourse,
        assignment: CanvasAssignment,
        user_id: int | None,
        student_sis_id: str = "",
        group: str = "",
    ) -> GradePassbackItem:
        item, _ = GradePassbackItem.objects.get_or_create(
            conversion=self.conversion,
            canvas_assignment_id=assignment.id,
            canvas_user_id=user_id,
            defaults={
                "canvas_course_id": course.id,
                "object_name": GradePassbackItem.SCORE if user_id else GradePassbackItem.ASSIGNMENT,
                "status": GpbStatus.SENT,
            },
        )
        item.job = self.job
        item.canvas_course_id, item.sis_course_id, item.course_name = (
            course.id,
            course.sis_course_id or "",
            course.name[:255],
        )
        item.assignment_name = assignment.name[:255]
        item.assignment_group = group[:255]
        item.student_sis_id = student_sis_id
        return item

    def refuse(self, item: GradePassbackItem, reason: str) -> None:
        item.status, item.reason, item.digest = GpbStatus.REFUSED, reason, ""
        item.save()
        self.counts.refused += 1

    def deliver(
        self, item: GradePassbackItem, prepared: Prepared[GradingAssignment] | Prepared[GradingAssignmentScore]
    ) -> bool:
        """Send unless the ZIS already accepted this very record; True when it is (now or before) accepted."""
        record = prepared.record
        digest = _digest(record)
        if item.status == GpbStatus.ACCEPTED and item.accepted_digest == digest:
            self.counts.unchanged += 1
            if item.job_id != self.job.pk:
                GradePassbackItem.objects.filter(pk=item.pk).update(job=self.job)
            return True
        action = "Change" if item.accepted_digest else "Add"
        item.object_name = record.OBJECT_NAME
        item.action, item.digest, item.status, item.reason = action, digest, GpbStatus.SENT, prepared.note
        item.sif_ref_id = getattr(record, "ref_id", None) or getattr(record, "assignment_ref_id", "") or ""
        item.student_ref_id = getattr(record, "student_ref_id", None) or ""
        item.save()  # "sent" first: a worker dying mid-send leaves a row that says so
        try:
            result = self.agent.send_event(record.OBJECT_NAME, action, [record])[0]
        except ZoneAsleepError:
            # Status 8: the ZIS took nothing. The row stays "sent, no answer yet", not accepted, so the next
            # run sends it again (deliver skips only what was accepted); no grade is lost.
            item.reason = ASLEEP_REASON
            item.save()
            raise
        item.msg_id, error = result.msg_id, result.error
        if error is None:
            item.status, item.accepted_digest = GpbStatus.ACCEPTED, digest
            item.sent_xml = record.to_bytes().decode()
            item.confirmation, item.confirmation_note = Confirmation.NONE, ""
            self.counts.accepted += 1
        else:
            item.status = GpbStatus.REFUSED
            item.reason = f"The ZIS refused it: {error.description}" + (
                f" ({error.extended_description})" if error.extended_description else ""
            )
            self.counts.refused += 1
        item.save()
        return error is None

    def remove(self, item: GradePassbackItem, why: str) -> bool:
        """Send a Delete for what the ZIS accepted before (the record last sent names it); True when taken."""
        if not self.can_delete:
            item.job, item.reason = (
                self.job,
                (
                    f"{why} Not removed yet: the zone's access control list does not let "
                    "this agent publish Delete; it is removed once it does."
                ),
            )
            item.save()
            return False
        record = (GradingAssignment if item.is_assignment else GradingAssignmentScore).from_bytes(
            item.sent_xml.encode()
        )
        result = self.agent.send_event(record.OBJECT_NAME, "Delete", [record])[0]
        item.job, item.msg_id, item.action = self.job, result.msg_id, "Delete"
        if result.error is not None:
            item.reason = f"{why} The Delete was refused by the ZIS: {result.error.description}; it is tried again."
            item.save()
            return False
        item.status, item.reason, item.digest, item.accepted_digest = GpbStatus.DELETED, why, "", ""
        item.confirmation, item.confirmation_note = Confirmation.NONE, ""
        item.save()
        self.counts.deleted += 1
        return True


def gone_reason(assignment: CanvasAssignment | None) -> str:
    if assignment is None:
        return "Deleted in Canvas: removed from PowerSchool."
    if not assignment.published:
        return "Unpublished in Canvas: removed from PowerSchool."
    return "No longer marked post to SIS in Canvas: removed from PowerSchool."


def remove_gone(ledger: Ledger, course: CanvasCourse, live_ids: set[int], listed: dict[int, CanvasAssignment]) -> None:
    """Delete from PowerSchool the assignments (and their scores) the ZIS took that Canvas no longer passes back.
    Scores go first, then the assignment; an item already removed is not sent again."""
    held = (
        GradePassbackItem.objects.filter(conversion=ledger.conversion, canvas_course_id=course.id)
        .exclude(canvas_assignment_id__in=live_ids)
        .exclude(accepted_digest="")
        .order_by("canvas_assignment_id", "canvas_user_id")
    )
    by_assignment: dict[int, list[GradePassbackItem]] = {}
    for item in held:
        by_assignment.setdefault(item.canvas_assignment_id, []).append(item)
    for assignment_id, items in by_assignment.items():
        why = gone_reason(listed.get(assignment_id))
        scores = [i for i in items if not i.is_assignment]
        removed = all([ledger.remove(i, why) for i in scores])
        for item in items:
            if item.is_assignment and removed:
                ledger.remove(item, why)
    # Rows of a gone assignment that PowerSchool never took (refused, or never answered): nothing to delete, and
    # no longer a post-to-SIS assignment to report on.
    (
        GradePassbackItem.objects.filter(conversion=ledger.conversion, canvas_course_id=course.id)
        .exclude(canvas_assignment_id__in=live_ids)
        .exclude(status=GpbStatus.DELETED)
        .filter(accepted_digest="")
        .delete()
    )


# ---- reading back what PowerSchool holds ----------------------------------------------------------


def read_back(agent: Agent, object_name: str, section_ref_id: str) -> list | None:
    """The section's objects as the zone answers a SIF_Request for them; None when the zone cannot answer
    (no provider for the object, no permission, or an error in the response)."""
    try:
        request_id = agent.request(
            object_name, Query(object_name, (Condition("@SectionInfoRefId", "EQ", section_ref_id),))
        )
    except SifError:
        return None
    records: list = []
    failed = False
    done = False

    def take(delivered) -> None:
        nonlocal failed, done
        if delivered.kind != "response" or delivered.request_msg_id != request_id:
            return
        if delivered.error is not None:
            failed = True
        else:
            records.extend(r for r in delivered.records() if getattr(r, "OBJECT_NAME", "") == object_name)
        done = done or not delivered.more_packets

    for _ in range(20):
        agent.drain(take)
        if done:
            break
    return None if failed or not done else records


def confirm_course(ledger: Ledger, course: CanvasCourse, section: Section | None) -> dict[str, int]:
    """Mark each accepted item of the course confirmed, different or unconfirmed from what the zone holds."""
    items = list(
        GradePassbackItem.objects.filter(
            conversion=ledger.conversion, canvas_course_id=course.id, status=GpbStatus.ACCEPTED
        )
    )
    counts: dict[str, int] = {c: 0 for c in (Confirmation.CONFIRMED, Confirmation.DIFFERENT, Confirmation.UNCONFIRMED)}
    if not items:
        return counts
    held_assignments = read_back(ledger.agent, "GradingAssignment", section.ref_id) if section else None
    held_scores = read_back(ledger.agent, "GradingAssignmentScore", section.ref_id) if section else None
    assignments = None if held_assignments is None else {r.ref_id: r for r in held_assignments}
    scores = None if held_scores is None else {(r.assignment_ref_id, r.student_ref_id): r for r in held_scores}
    for item in items:
        held: dict[Any, Any] | None = assignments if item.is_assignment else scores
        cls = GradingAssignment if item.is_assignment else GradingAssignmentScore
        sent = cls.from_bytes(item.sent_xml.encode())
        if held is None:
            item.confirmation = Confirmation.UNCONFIRMED
            item.confirmation_note = "The zone has no provider answering requests for " + cls.OBJECT_NAME + "."
        else:
            key = sent.ref_id if isinstance(sent, GradingAssignment) else (sent.assignment_ref_id, sent.student_ref_id)
            found = held.get(key)
            if found is None:
                item.confirmation, item.confirmation_note = Confirmation.DIFFERENT, "PowerSchool does not hold it."
            else:
                changed = [f for f, *_ in cls.FIELDS if getattr(found, f) != getattr(sent, f)]
                if changed:
                    item.confirmation = Confirmation.DIFFERENT
                    item.confirmation_note = (
                        "PowerSchool holds other values: "
                        + ", ".join(f"{f} {getattr(found, f)} (sent {getattr(sent, f)})" for f in changed)
                    )[:300]
                else:
                    item.confirmation, item.confirmation_note = Confirmation.CONFIRMED, ""
        counts[item.confirmation] += 1
        GradePassbackItem.objects.filter(pk=item.pk).update(
            confirmation=item.confirmation, confirmation_note=item.confirmation_note
        )
    return counts


@dataclass
class PluginCheck:
    takes_write_back: bool  # PowerSchool subscribes to both grading objects
    provider: str | None  # who answers requests for GradingAssignment (read-back), if anyone
    missing_rights: tuple[str, ...] = ()  # rights over the grading objects the zone's SIF_AgentACL withholds

    @property
    def can_send(self) -> bool:
        return self.takes_write_back and not any(
            r.split()[0] in ("provide", "publish_add") for r in self.missing_rights
        )

    @property
    def can_delete(self) -> bool:
        return not any(r.startswith("publish_delete") for r in self.missing_rights)

    @property
    def message(self) -> str:
        if not self.takes_write_back:
            return (
                "The zone shows no subscriber for GradingAssignment and GradingAssignmentScore: the grade "
                "passback plug-in is not installed or write-back is off in PowerSchool."
            )
        parts = []
        if self.missing_rights:
            parts.append(
                "The zone's access control list does not let this agent "
                + ", ".join(self.missing_rights)
                + ": ask the ZIS administrator to grant it."
            )
        if self.provider is None:
            parts.append(
                "PowerSchool takes grade write-back; no provider answers requests for it, so sends stay unconfirmed."
            )
        else:
            parts.append(f"PowerSchool takes grade write-back and {self.provider} answers requests for it.")
        return " ".join(parts)


# The rights grade passback needs over each grading object, as SIF_AgentACL names them (SIF 2.x SIF_Register ack;
# OpenZIS returns the agent's ACL there and checks each right in event/Event.php and request handling).
NEEDED_RIGHTS = ("provide", "publish_add", "publish_change", "publish_delete")


def check_plugin(agent: Agent) -> PluginCheck:
    """The plug-in as the zone shows it (SIF_ZoneStatus: SIF_Providers / SIF_Subscribers), and the rights the
    register ack's SIF_AgentACL gives us (when the zone sends one), not as a ticked box."""
    status = agent.zone_status()
    subscribed: set[str] = set()
    for objects in status.subscribers.values():
        subscribed.update(objects)
    acl = getattr(agent, "acl", None)
    missing = tuple(
        f"{right} {name}"
        for right in NEEDED_RIGHTS
        for name in PUBLISHED
        if acl is not None and not acl.may(right, name)
    )
    return PluginCheck(all(o in subscribed for o in PUBLISHED), status.provider_of("GradingAssignment"), missing)


# ---- the run ---------------------------------------------------------------------------------------


def run_grade_passback(job: Job, progress: Progress) -> None:
    conversion = job.conversion
    if conversion.gpb_state != GpbState.ENABLED:
        raise JobFailed("Grade passback is not enabled for this conversion.")
    snapshot = Snapshot.objects.latest_complete(conversion)
    if snapshot is None:
        raise JobFailed("No complete pull yet: grade passback maps Canvas to SIF with the pulled data.")
    started = timezone.now()
    since = conversion.gpb_last_run_at
    roster = GpbRoster(conversion, snapshot)
    rules = rules_for(conversion.gradebook)
    district = conversion.district
    confirmed: dict[str, int] = {
        c: 0 for c in (Confirmation.CONFIRMED, Confirmation.DIFFERENT, Confirmation.UNCONFIRMED)
    }
    progress.update(current=0, message="Reading Canvas courses", force=True)
    with canvas_for(district) as canvas, zis_failures(conversion, progress), agent_for(conversion) as agent:
        courses = [
            c for c in canvas.iter_courses(district.canvas_account_id or "self") if c.workflow_state != "deleted"
        ]
        progress.update(total=len(courses), force=True)
        register(conversion, agent, progress)
        plugin = check_plugin(agent)
        if not plugin.can_send:
            raise JobFailed(plugin.message)
        # OpenZIS refuses a whole SIF_Provision that asks for one right the ACL withholds: ask for what it grants.
        agent.provision(PROVISION if plugin.can_delete else replace(PROVISION, publish_delete=()))
        ledger = Ledger(conversion, job, agent, can_delete=plugin.can_delete)
        for course in courses:
            before = ledger.counts.as_dict()
            section = pass_back_course(
                ledger,
                canvas,
                course,
                roster,
                since=since,
                rules=rules,
                canvas_url=district.canvas_url,
                tz=district.tzinfo,
            )
            for key, n in confirm_course(ledger, course, section).items():
                confirmed[key] += n
            after = ledger.counts.as_dict()
            # The course's own counts beside its name; the running totals are said to be for all courses.
            progress.add(
                message=f"{course.name}: {after['accepted'] - before['accepted']} accepted, "
                f"{after['refused'] - before['refused']} refused; all courses so far: "
                f"{after['accepted']} accepted, {after['refused']} refused",
                detail={"counts": after},
            )
    Conversion.objects.filter(pk=conversion.pk).update(gpb_last_run_at=started)
    c = ledger.counts
    progress.update(
        message=f"{c.accepted} accepted, {c.refused} refused, {c.unchanged} already accepted"
        + (f", {c.deleted} removed" if c.deleted else ""),
        detail={
            "counts": c.as_dict(),
            "snapshot": snapshot.pk,
            "since": since.isoformat() if since else None,
            "confirmation": {str(k): v for k, v in confirmed.items()},
            "plugin": plugin.message,
        },
        force=True,
    )


class OverrideRefused(ValueError):
    """A category mapping that cannot be saved as given (who may map is rules.can_act_for's)."""


def set_category_override(conversion: Conversion, course_id: int, group: str, category: str, user) -> None:
    """File a Canvas assignment group of one course under a PowerSchool category of another name (or, with an
    empty category, back under its own name). Consultants and the district's admins only; audited."""
    from conversion import audit
    from conversion.rules import can_act_for, require

    require(
        can_act_for(user, conversion.district),
        "Only a consultant or a district admin of this district may map categories.",
    )
    group, category = " ".join(group.split())[:255], " ".join(category.split())[:255]
    if not group:
        raise OverrideRefused("Name the Canvas assignment group.")
    existing = GpbCategoryOverride.objects.filter(
        conversion=conversion, canvas_course_id=course_id, group_name__iexact=group
    ).first()
    previous = existing.category_name if existing else None
    if category:
        GpbCategoryOverride.objects.update_or_create(
            conversion=conversion,
            canvas_course_id=course_id,
            group_name=existing.group_name if existing else group,
            defaults={"category_name": category, "set_by": user},
        )
        summary = (
            f"Grade passback: Canvas group \u201c{group}\u201d of course {course_id} filed under \u201c{category}\u201d"
        )
    else:
        if existing:
            existing.delete()
        summary = (
            f"Grade passback: Canvas group \u201c{group}\u201d of course {course_id} matched by its own name again"
        )
    audit.record(
        district=conversion.district,
        conversion=conversion,
        user=user,
        action="gpb_category_override",
        summary=summary,
        detail={"canvas_course_id": course_id, "group": group, "category": category or None, "previous": previous},
    )


def course_overrides(conversion: Conversion, course_id: int) -> dict[str, str]:
    return {
        category_key(o.group_name): o.category_name
        for o in GpbCategoryOverride.objects.filter(conversion=conversion, canvas_course_id=course_id)
    }


def assigned_students(
    canvas: CanvasClient, course: CanvasCourse, assignment: CanvasAssignment, section_of_enrollment: dict[int, set[int]]
) -> set[int]:
    """Canvas user ids an "assign to" assignment is for: its students' overrides and its sections' students."""
    users: set[int] = set()
    for override in canvas.assignment_overrides(course.id, assignment.id):
        users.update(override.get("student_ids") or ())
        if override.get("course_section_id") is not None:
            users.update(section_of_enrollment.get(override["course_section_id"], ()))
    return users


def pass_back_course(
    ledger: Ledger,
    canvas: CanvasClient,
    course: CanvasCourse,
    roster: GpbRoster,
    *,
    since: dt.datetime | None,
    rules: GradebookRules,
    canvas_url: str,
    tz: dt.tzinfo,
) -> Section | None:
    """Send the course's post-to-SIS assignments and scores, remove what Canvas no longer passes back; returns the
    course's PowerSchool section (None when it is not one)."""
    listed = {a.id: a for a in canvas.iter_assignments(course.id)}  # a deleted assignment is not listed
    assignments = [a for a in listed.values() if a.post_to_sis and a.published]
    section = roster.sections.get(course.sis_course_id or "")
    remove_gone(ledger, course, {a.id for a in assignments}, listed)
    if not assignments:
        return section
    groups = canvas.assignment_groups(course.id)

    def group_of(assignment: CanvasAssignment) -> str:
        group_id = assignment.assignment_group_id
        return groups.get(group_id, "") if group_id is not None else ""

    overrides = course_overrides(ledger.conversion, course.id)
    names = [a.name for a in assignments]
    accepted: dict[int, str] = {}  # assignment id -> RefId, for the assignments the ZIS holds
    enrollments = [e for e in canvas.iter_enrollments(course_id=course.id) if e.type == "StudentEnrollment"]
    sis_ids = {e.user_id: e.sis_user_id for e in enrollments}
    by_section: dict[int, set[int]] = {}
    for e in enrollments:
        by_section.setdefault(e.course_section_id, set()).add(e.user_id)
    only_for: dict[int, set[int]] = {}  # assignment id -> the students an "assign to" assignment is for
    for assignment in assignments:
        ref_id = assignment_ref_id(canvas_url, assignment.id)
        item = ledger.item(course=course, assignment=assignment, user_id=None, group=group_of(assignment))
        if assignment.only_visible_to_overrides and rules.partial == "refuse":
            ledger.refuse(
                item,
                f"It is assigned to some students or sections only; {rules.partial_reason}. "
                "Assign it to everyone in Canvas, or keep it out of post to SIS.",
            )
            continue
        prepared = prepare_assignment(
            assignment,
            section,
            roster,
            ref_id,
            rules.name_limit,
            names.count(assignment.name) > 1,
            tz,
            group=group_of(assignment),
            overrides=overrides,
        )
        if isinstance(prepared, Refusal):
            ledger.refuse(item, prepared.reason)
        elif ledger.deliver(item, prepared):
            accepted[assignment.id] = ref_id
            if assignment.only_visible_to_overrides:
                only_for[assignment.id] = assigned_students(canvas, course, assignment, by_section)
    # Read the whole course when anything in it is not accepted yet (a new assignment's earlier grades, or
    # a score refused before that a newer pull can now map); otherwise only what was graded since.
    # A row removed earlier of an assignment passed back again (republished, ticked again) counts as not accepted.
    pending = (
        GradePassbackItem.objects.filter(
            conversion=ledger.conversion,
            canvas_course_id=course.id,
            canvas_assignment_id__in=[a.id for a in assignments],
        )
        .exclude(status=GpbStatus.ACCEPTED)
        .exists()
    )
    graded_since = None if pending or since is None else since
    by_id = {a.id: a for a in assignments}
    for submission in canvas.iter_submissions(course.id, graded_since=graded_since):
        graded = by_id.get(submission.assignment_id)
        if graded is None or (submission.score is None and not submission.excused):
            continue  # not posted to SIS, or not graded: nothing to pass back
        if graded.id in only_for and submission.user_id not in only_for[graded.id]:
            continue  # not assigned to this student: PowerTeacher Pro holds no score for them
        sis_user_id = sis_ids.get(submission.user_id) or ""
        item = ledger.item(
            course=course,
            assignment=graded,
            user_id=submission.user_id,
            student_sis_id=sis_user_id,
            group=group_of(graded),
        )
        if graded.id not in accepted:
            ledger.refuse(item, "Its assignment was not accepted (see the assignment's reason).")
            continue
        if submission.excused:
            ledger.refuse(item, f"Excused in Canvas: {rules.exempt}.")
            continue
        score = prepare_score(submission, graded, roster.students.get(sis_user_id), section, accepted[graded.id])
        if isinstance(score, Refusal):
            ledger.refuse(item, score.reason)
            continue
        if submission.missing or submission.late:
            flag = "missing" if submission.missing else "late"
            score.note = " ".join(filter(None, [score.note, f"Marked {flag} in Canvas: {rules.missing_late}."]))
        if not rules.letter_grades:
            score.record.score_letter = None
        ledger.deliver(item, score)
    return section


# ---- the per-course report a district admin hands to a teacher ------------------------------------

IN_POWERSCHOOL: dict[str, str] = {
    GpbStatus.ACCEPTED: "In PowerSchool",
    GpbStatus.REFUSED: "Not in PowerSchool",
    GpbStatus.SENT: "Sent, no answer yet",
    GpbStatus.DELETED: "Removed from PowerSchool",
}


@dataclass
class ReportRow:
    assignment: str
    group: str
    status: str
    in_powerschool: str
    confirmation: str
    scores_accepted: int
    scores_refused: int
    to_fix: str  # what the teacher changes in Canvas; empty when nothing

    def as_csv(self) -> list:
        return [
            self.assignment,
            self.group,
            self.in_powerschool,
            self.confirmation,
            self.scores_accepted,
            self.scores_refused,
            self.to_fix,
        ]


REPORT_HEADER = [
    "Assignment",
    "Canvas assignment group",
    "State in PowerSchool",
    "Read back from PowerSchool",
    "Scores in PowerSchool",
    "Scores not sent",
    "What to change in Canvas",
]


@dataclass
class CourseReport:
    course_id: int
    sis_course_id: str
    course_name: str
    rules: GradebookRules
    rows: list[ReportRow]
    confirmation: dict[str, int]
    categories: list[str]  # the section's PowerSchool categories, from the latest pull
    groups: list[str]  # the Canvas assignment groups of its post-to-SIS assignments
    overrides: list[GpbCategoryOverride]

    @property
    def unmatched_groups(self) -> list[str]:
        keys = {category_key(c) for c in self.categories}
        mapped = {category_key(o.group_name) for o in self.overrides}
        return [g for g in self.groups if category_key(g) not in keys and category_key(g) not in mapped]


def section_categories(conversion: Conversion, sis_course_id: str) -> list[str]:
    snapshot = Snapshot.objects.latest_complete(conversion)
    if snapshot is None or not sis_course_id.startswith("sec_"):
        return []
    section = SifRecord.objects.filter(
        snapshot=snapshot, object_name="SectionInfo", local_id=sis_course_id.removeprefix("sec_")
    ).first()
    if section is None:
        return []
    names = []
    for xml in (
        SifRecord.objects.filter(snapshot=snapshot, object_name="GradingCategory", xml__contains=section.ref_id)
        .order_by("ref_id")
        .values_list("xml", flat=True)
    ):
        data = data_of(xml)
        if data.get("section_ref_id") == section.ref_id:
            names.append(data.get("description") or "")
    return sorted(names, key=str.casefold)


def course_report(conversion: Conversion, course_id: int) -> CourseReport:
    items = list(
        conversion.gpb_items.filter(canvas_course_id=course_id).order_by(
            "assignment_name", "canvas_assignment_id", "canvas_user_id"
        )
    )
    by_assignment: dict[int, list[GradePassbackItem]] = {}
    for i in items:
        by_assignment.setdefault(i.canvas_assignment_id, []).append(i)
    rows = []
    confirmation = {c.value: 0 for c in (Confirmation.CONFIRMED, Confirmation.DIFFERENT, Confirmation.UNCONFIRMED)}
    for i in items:
        if i.confirmation in confirmation:
            confirmation[i.confirmation] += 1
    for group in by_assignment.values():
        head = next((i for i in group if i.is_assignment), None)
        if head is None:
            continue
        scores = [i for i in group if not i.is_assignment]
        refused = [i for i in scores if i.status == GpbStatus.REFUSED]
        fixes = []
        if head.status == GpbStatus.REFUSED:
            fixes.append(head.reason)
        elif refused:
            reasons: dict[str, int] = {}
            for i in refused:
                reasons[i.reason] = reasons.get(i.reason, 0) + 1
            fixes += [f"{n} score(s): {r}" for r, n in reasons.items()]
        if head.confirmation == Confirmation.DIFFERENT:
            fixes.append(head.confirmation_note)
        rows.append(
            ReportRow(
                head.assignment_name,
                head.assignment_group,
                head.status,
                IN_POWERSCHOOL.get(head.status, head.status),
                head.get_confirmation_display() if head.confirmation else "",
                sum(1 for i in scores if i.status == GpbStatus.ACCEPTED),
                len(refused),
                " ".join(fixes),
            )
        )
    first = items[0] if items else None
    sis_course_id = first.sis_course_id if first else ""
    groups = sorted({i.assignment_group for i in items if i.assignment_group}, key=str.casefold)
    return CourseReport(
        course_id,
        sis_course_id,
        first.course_name if first else "",
        rules_for(conversion.gradebook),
        rows,
        confirmation,
        section_categories(conversion, sis_course_id),
        groups,
        list(
            GpbCategoryOverride.objects.filter(conversion=conversion, canvas_course_id=course_id).order_by("group_name")
        ),
    )
