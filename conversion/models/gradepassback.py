"""What grade passback sent to PowerSchool through the ZIS, per assignment and per student score.

One row per Canvas assignment (the GradingAssignment) and one per student score on it (the
GradingAssignmentScore). A rerun finds the row and compares `digest` with `accepted_digest`, so what
the ZIS already accepted is not sent again unless it changed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db import models
from django.db.models import Q


class GpbStatus(models.TextChoices):
    SENT = "sent", "Sent, no answer yet"
    ACCEPTED = "accepted", "Accepted"
    REFUSED = "refused", "Refused"
    DELETED = "deleted", "Removed from PowerSchool"


class Confirmation(models.TextChoices):
    """What reading back from the zone found for an accepted item."""

    NONE = "", "Not read back"
    CONFIRMED = "confirmed", "Confirmed: PowerSchool holds it as sent"
    DIFFERENT = "different", "Different: PowerSchool holds other values"
    UNCONFIRMED = "unconfirmed", "Unconfirmed: the zone could not show it"


@dataclass
class AssignmentSummary:
    canvas_assignment_id: int
    name: str
    assignment: GradePassbackItem | None = None
    scores: dict[str, int] = field(default_factory=lambda: {s: 0 for s in GpbStatus.values})
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class CourseSummary:
    canvas_course_id: int
    sis_course_id: str
    course_name: str
    counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in GpbStatus.values})
    assignments: list[AssignmentSummary] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class GradePassbackQuerySet(models.QuerySet["GradePassbackItem"]):
    def by_course(self) -> list[CourseSummary]:
        """Counts per course (assignments and scores together) and a per-assignment breakdown."""
        courses: dict[int, CourseSummary] = {}
        assignments: dict[int, AssignmentSummary] = {}
        for item in self.order_by("sis_course_id", "assignment_name", "canvas_assignment_id", "student_sis_id"):
            course = courses.get(item.canvas_course_id)
            if course is None:
                course = courses[item.canvas_course_id] = CourseSummary(
                    item.canvas_course_id, item.sis_course_id, item.course_name
                )
            course.counts[item.status] += 1
            summary = assignments.get(item.canvas_assignment_id)
            if summary is None:
                summary = assignments[item.canvas_assignment_id] = AssignmentSummary(
                    item.canvas_assignment_id, item.assignment_name
                )
                course.assignments.append(summary)
            if item.is_assignment:
                summary.assignment = item
            else:
                summary.scores[item.status] += 1
                if item.status == GpbStatus.REFUSED:
                    summary.reasons[item.reason] = summary.reasons.get(item.reason, 0) + 1
        return list(courses.values())

    def totals(self) -> dict[str, int]:
        result: dict[str, int] = defaultdict(int)
        for status, n in self.values_list("status").annotate(n=models.Count("id")).values_list("status", "n"):
            result[status] += n
        return {s: result.get(s, 0) for s in GpbStatus.values}


class GradePassbackItem(models.Model):
    ASSIGNMENT, SCORE = "GradingAssignment", "GradingAssignmentScore"

    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="gpb_items")
    job = models.ForeignKey(
        "conversion.Job",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The run that last looked at this item.",
    )
    canvas_course_id = models.BigIntegerField()
    sis_course_id = models.CharField(max_length=255, blank=True)
    course_name = models.CharField(max_length=255, blank=True)
    canvas_assignment_id = models.BigIntegerField()
    assignment_name = models.CharField(max_length=255, blank=True)
    assignment_group = models.CharField(max_length=255, blank=True, help_text="The Canvas assignment group's name.")
    canvas_user_id = models.BigIntegerField(null=True, blank=True, help_text="Blank: the assignment itself.")
    student_sis_id = models.CharField(max_length=64, blank=True, help_text="The Canvas sis_user_id of the student.")
    object_name = models.CharField(max_length=40)
    action = models.CharField(max_length=10, blank=True, help_text="SIF_Event action last sent: Add or Change.")
    status = models.CharField(max_length=10, choices=GpbStatus.choices)
    reason = models.TextField(blank=True, help_text="Why it was refused, or a note on what was sent.")
    sif_ref_id = models.CharField(max_length=32, blank=True, help_text="The GradingAssignment RefId.")
    student_ref_id = models.CharField(max_length=32, blank=True, help_text="The StudentPersonal RefId (scores).")
    digest = models.CharField(max_length=64, blank=True, help_text="Hash of the record last prepared.")
    accepted_digest = models.CharField(max_length=64, blank=True, help_text="Hash of the record the ZIS last accepted.")
    msg_id = models.CharField(max_length=32, blank=True)
    sent_xml = models.TextField(blank=True, help_text="The record the ZIS last accepted (a Delete names it again).")
    confirmation = models.CharField(max_length=12, choices=Confirmation.choices, blank=True, default="")
    confirmation_note = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GradePassbackQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversion", "canvas_assignment_id"],
                condition=Q(canvas_user_id__isnull=True),
                name="one_gpb_item_per_assignment",
            ),
            models.UniqueConstraint(
                fields=["conversion", "canvas_assignment_id", "canvas_user_id"],
                condition=Q(canvas_user_id__isnull=False),
                name="one_gpb_item_per_score",
            ),
        ]
        indexes = [models.Index(fields=["conversion", "canvas_course_id"])]

    def __str__(self) -> str:
        return f"{self.object_name} {self.canvas_assignment_id}/{self.canvas_user_id or '-'}: {self.status}"

    @property
    def is_assignment(self) -> bool:
        return self.canvas_user_id is None


class GpbCategoryOverride(models.Model):
    """A course's Canvas assignment group filed in a PowerSchool GradingCategory of another name, set on the course
    page by a consultant or the district admin (audited). Without one, a group goes to the category of its name."""

    conversion = models.ForeignKey(
        "conversion.Conversion", on_delete=models.CASCADE, related_name="gpb_category_overrides"
    )
    canvas_course_id = models.BigIntegerField()
    group_name = models.CharField(max_length=255)
    category_name = models.CharField(max_length=255)
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["conversion", "canvas_course_id", "group_name"], name="one_gpb_category_override"
            )
        ]

    def __str__(self) -> str:
        return (
            f"Course {self.canvas_course_id}: group \u201c{self.group_name}\u201d in \u201c{self.category_name}\u201d"
        )
