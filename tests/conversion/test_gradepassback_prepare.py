"""Grade passback's record preparation on its own (no zone, no database): what it sends, and what it refuses in
words rather than failing on a value it cannot send."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from canvas.models import Assignment, Submission
from conversion.services.gradepassback import Prepared, Refusal, prepare_score
from conversion.services.roster import Person, School, Section, Term

SECTION = Section(
    ref_id="S" * 32,
    local_id="427",
    dcid="9427",
    name="Algebra I (1)",
    course_title="Algebra I",
    course_code="MA100",
    school=School("H" * 32, "100", "High School"),
    term=Term("T" * 32, "2027-S1", "Semester 1", "2026-08-20", "2027-01-15"),
)
STUDENT = Person("student", "P" * 32, "100234", "5100234", "Ada", "Lopez", "")
ASSIGNMENT = Assignment(7, 1, "Quiz 1", 20.0, True, dt.datetime(2026, 10, 1, 18, tzinfo=dt.UTC), None, {})


def submission(**values) -> Submission:
    return Submission.from_json({"id": 1, "assignment_id": 7, "user_id": 3, **values})


def test_a_whole_score_goes_as_points_and_percent():
    prepared = prepare_score(submission(score=15.0, grade="15"), ASSIGNMENT, STUDENT, SECTION, "A" * 32)
    assert isinstance(prepared, Prepared)
    assert (prepared.record.score_points, prepared.record.score_percent) == (15, Decimal("75.00"))


def test_an_ungraded_submission_is_refused_in_words_not_compared_with_zero():
    # (pass_back_course skips ungraded submissions; the preparation no longer relies on it: None < 0 raised.)
    prepared = prepare_score(submission(score=None), ASSIGNMENT, STUDENT, SECTION, "A" * 32)
    assert prepared == Refusal("Not graded in Canvas.")


def test_a_score_in_a_course_that_is_no_powerschool_section_is_refused():
    prepared = prepare_score(submission(score=3.0), ASSIGNMENT, STUDENT, None, "A" * 32)
    assert isinstance(prepared, Refusal) and "not a PowerSchool section" in prepared.reason
