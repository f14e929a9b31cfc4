"""Step 7: grade passback. Canvas assignments flagged "post to SIS" and their scores go to PowerSchool as
SIF_Event GradingAssignment / GradingAssignmentScore through the ZIS.

`run_grade_passback(job, progress)`:
1. map Canvas to SIF with the latest complete snapshot: a course ``sec_<SectionInfo LocalId>`` is that
   section; a student's sis_user_id is the PowerSchool ID before the remap and the DCID after it (both
   are accepted, so a run during the remap finds everyone);
2. per course, read the post-to-SIS assignments and the submissions graded since the last successful run
   (the whole course when something in it is new or was not accepted yet);
3. check each record against what PowerSchool takes (due date, name length, whole points) and refuse it
   with a reason, or send it: Add the first time, Change once the ZIS accepted it before;
4. record every outcome in GradePassbackItem; what the ZIS accepted is not sent again unless it changed.

It never looks at the roster sync's pause: grade passback keeps working while step 3 holds the sync.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone
from sifclient import ZoneAsleepError
from sifclient.messages import Provision
from sifclient.records import GradingAssignment, GradingAssignmentScore

from conversion.jobs import JobFailed, Progress
from conversion.models import (
    Conversion,
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

# What grade passback publishes. A ZIS passes on an event only from the object's provider, with permission to
# publish that action (OpenZIS: event/Event.php), so the agent declares both with SIF_Provision first.
PUBLISHED = ("GradingAssignment", "GradingAssignmentScore")
PROVISION = Provision(provide=PUBLISHED, publish_add=PUBLISHED, publish_change=PUBLISHED)
ASLEEP_REASON = "Not sent: the zone was asleep (SIF_Status 8); it is sent on the next run."

# Assignment names PowerSchool takes, per gradebook. Canvas's PowerSchool guides state 30 characters for
# PowerTeacher Pro ("Assignment names cannot be longer than 30 characters") and the same limit for the
# legacy PowerTeacher gradebook's grade passback.
PTP_NAME_LIMIT = 30
LEGACY_NAME_LIMIT = 30
NAME_LIMITS = {Gradebook.PTP: PTP_NAME_LIMIT, Gradebook.LEGACY: LEGACY_NAME_LIMIT}

# Stable GradingAssignment RefIds: the same Canvas assignment always gets the same RefId (uuid5), so a
# Change reaches the assignment the Add created, across runs and workers.
REFID_NAMESPACE = uuid.UUID("6f1c7f1e-4a55-4d4e-9a52-3c7a1e0b9d21")
PERCENT = Decimal("0.01")


def assignment_ref_id(canvas_url: str, assignment_id: int) -> str:
    return uuid.uuid5(REFID_NAMESPACE, f"{canvas_url.rstrip('/')}/assignments/{assignment_id}").hex.upper()


def _digest(record) -> str:
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
        self.categories: dict[str, str] = {}
        wanted = {s.ref_id for s in self.sections.values()}
        for ref, xml in (SifRecord.objects.filter(snapshot=snapshot, object_name="GradingCategory")
                         .order_by("ref_id").values_list("ref_id", "xml").iterator(chunk_size=5000)):
            section_ref = data_of(xml).get("section_ref_id")
            if section_ref in wanted:
                self.categories.setdefault(section_ref, ref)  # the section's first category, by RefId


# ---- preparing records ---------------------------------------------------------------------------

@dataclass
class Prepared:
    record: GradingAssignment | GradingAssignmentScore | None
    refusal: str = ""
    note: str = ""


def prepare_assignment(assignment, section: Section | None, roster: GpbRoster, ref_id: str,
                       name_limit: int, duplicate_name: bool, tz) -> Prepared:
    if section is None:
        return Prepared(None, "The course is not a PowerSchool section of the latest pull (no sec_<id> SIS id).")
    problems = []
    if assignment.due_at is None:
        problems.append("It has no due date; PowerSchool needs one.")
    if len(assignment.name) > name_limit:
        problems.append(f"Its name has {len(assignment.name)} characters; the gradebook takes {name_limit}.")
    if duplicate_name:
        problems.append("Another post-to-SIS assignment in this course has the same name; PowerSchool needs unique names.")
    points = assignment.points_possible
    if points is None or points < 0 or points != int(points):
        problems.append(f"Points possible ({points}) must be a whole number (SIF PointsPossible is unsignedInt).")
    if section.term is None:
        problems.append("The section's term is not in the latest pull.")
    category = roster.categories.get(section.ref_id)
    if category is None:
        problems.append("The section has no GradingCategory in the latest pull.")
    if problems:
        return Prepared(None, " ".join(problems))
    return Prepared(GradingAssignment(
        ref_id=ref_id, section_ref_id=section.ref_id, term_ref_id=section.term.ref_id,
        school_ref_id=section.school.ref_id, category_ref_id=category, description=assignment.name,
        points_possible=int(points), due_date=_local_date(assignment.due_at, tz),
    ))


def _local_date(moment, tz):
    # A due date is the district's calendar day: 23:59 in Denver is already tomorrow in UTC.
    return moment.astimezone(tz).date() if moment.tzinfo else moment.date()


def prepare_score(submission, assignment, student: Person | None, section: Section, ref_id: str) -> Prepared:
    if student is None:
        return Prepared(None, "The student is not in the latest pull (neither PowerSchool ID nor DCID matches).")
    score = submission.score
    if score < 0:
        return Prepared(None, f"Negative score ({score}); SIF scores are unsigned.")
    record = GradingAssignmentScore(
        student_ref_id=student.ref_id, section_ref_id=section.ref_id, school_ref_id=section.school.ref_id,
        assignment_ref_id=ref_id,
    )
    points = assignment.points_possible or 0
    percent = (Decimal(str(score)) * 100 / Decimal(str(points))).quantize(PERCENT, ROUND_HALF_UP) if points else None
    note = ""
    if score == int(score):
        record.score_points = int(score)
        record.score_percent = percent
    elif percent is None:
        return Prepared(None, f"Fractional score {score} on an assignment without points possible cannot be sent.")
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

    def as_dict(self) -> dict[str, int]:
        return {"accepted": self.accepted, "refused": self.refused, "unchanged": self.unchanged}


class Ledger:
    """The GradePassbackItem rows of one conversion, and sending through one agent."""

    def __init__(self, conversion: Conversion, job: Job, agent):
        self.conversion = conversion
        self.job = job
        self.agent = agent
        self.counts = RunCounts()

    def item(self, *, course, assignment, user_id: int | None, student_sis_id: str = "") -> GradePassbackItem:
        item, _ = GradePassbackItem.objects.get_or_create(
            conversion=self.conversion, canvas_assignment_id=assignment.id, canvas_user_id=user_id,
            defaults={
                "canvas_course_id": course.id, "object_name": GradePassbackItem.SCORE if user_id else GradePassbackItem.ASSIGNMENT,
                "status": GpbStatus.SENT,
            },
        )
        item.job = self.job
        item.canvas_course_id, item.sis_course_id, item.course_name = course.id, course.sis_course_id or "", course.name[:255]
        item.assignment_name = assignment.name[:255]
        item.student_sis_id = student_sis_id
        return item

    def refuse(self, item: GradePassbackItem, reason: str) -> None:
        item.status, item.reason, item.digest = GpbStatus.REFUSED, reason, ""
        item.save()
        self.counts.refused += 1

    def deliver(self, item: GradePassbackItem, prepared: Prepared) -> bool:
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
        item.msg_id = result.msg_id
        if result.accepted:
            item.status, item.accepted_digest = GpbStatus.ACCEPTED, digest
            self.counts.accepted += 1
        else:
            error = result.error
            item.status = GpbStatus.REFUSED
            item.reason = f"The ZIS refused it: {error.description}" + (
                f" ({error.extended_description})" if error.extended_description else "")
            self.counts.refused += 1
        item.save()
        return result.accepted


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
    name_limit = NAME_LIMITS.get(conversion.gradebook, min(NAME_LIMITS.values()))
    district = conversion.district
    progress.update(current=0, message="Reading Canvas courses", force=True)
    with canvas_for(district) as canvas, zis_failures(conversion, progress), agent_for(conversion) as agent:
        courses = [c for c in canvas.iter_courses(district.canvas_account_id or "self")
                   if c.workflow_state != "deleted"]
        progress.update(total=len(courses), force=True)
        register(conversion, agent, progress)
        agent.provision(PROVISION)
        ledger = Ledger(conversion, job, agent)
        for course in courses:
            before = ledger.counts.as_dict()
            pass_back_course(ledger, canvas, course, roster, since=since, name_limit=name_limit,
                             canvas_url=district.canvas_url, tz=district.tzinfo)
            after = ledger.counts.as_dict()
            # The course's own counts beside its name; the running totals are said to be for all courses.
            progress.add(message=f"{course.name}: {after['accepted'] - before['accepted']} accepted, "
                                 f"{after['refused'] - before['refused']} refused; all courses so far: "
                                 f"{after['accepted']} accepted, {after['refused']} refused",
                         detail={"counts": after})
    Conversion.objects.filter(pk=conversion.pk).update(gpb_last_run_at=started)
    c = ledger.counts
    progress.update(message=f"{c.accepted} accepted, {c.refused} refused, {c.unchanged} already accepted",
                    detail={"counts": c.as_dict(), "snapshot": snapshot.pk, "since": since.isoformat() if since else None},
                    force=True)


def pass_back_course(ledger: Ledger, canvas, course, roster: GpbRoster, *, since, name_limit: int,
                     canvas_url: str, tz) -> None:
    assignments = [a for a in canvas.iter_assignments(course.id) if a.post_to_sis]
    if not assignments:
        return
    section = roster.sections.get(course.sis_course_id or "")
    names = [a.name for a in assignments]
    accepted: dict[int, str] = {}  # assignment id -> RefId, for the assignments the ZIS holds
    for assignment in assignments:
        ref_id = assignment_ref_id(canvas_url, assignment.id)
        item = ledger.item(course=course, assignment=assignment, user_id=None)
        prepared = prepare_assignment(assignment, section, roster, ref_id, name_limit, names.count(assignment.name) > 1, tz)
        if prepared.record is None:
            ledger.refuse(item, prepared.refusal)
        elif ledger.deliver(item, prepared):
            accepted[assignment.id] = ref_id
    # Read the whole course when anything in it is not accepted yet (a new assignment's earlier grades, or
    # a score refused before that a newer pull can now map); otherwise only what was graded since.
    pending = GradePassbackItem.objects.filter(
        conversion=ledger.conversion, canvas_course_id=course.id).exclude(status=GpbStatus.ACCEPTED).exists()
    graded_since = None if pending or since is None else since
    by_id = {a.id: a for a in assignments}
    sis_ids = {e.user_id: e.sis_user_id for e in canvas.iter_enrollments(course_id=course.id)
               if e.type == "StudentEnrollment"}
    for submission in canvas.iter_submissions(course.id, graded_since=graded_since):
        assignment = by_id.get(submission.assignment_id)
        if assignment is None or submission.score is None or submission.excused:
            continue  # not posted to SIS, not graded, or excused: nothing to pass back
        sis_user_id = sis_ids.get(submission.user_id) or ""
        item = ledger.item(course=course, assignment=assignment, user_id=submission.user_id, student_sis_id=sis_user_id)
        if assignment.id not in accepted:
            ledger.refuse(item, "Its assignment was not accepted (see the assignment's reason).")
            continue
        prepared = prepare_score(submission, assignment, roster.students.get(sis_user_id), section, accepted[assignment.id])
        if prepared.record is None:
            ledger.refuse(item, prepared.refusal)
        else:
            ledger.deliver(item, prepared)
