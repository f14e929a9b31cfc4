"""Grade passback reads: assignments flagged post_to_sis and submissions graded since a moment."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from canvas.client import sis_ref


def test_assignments_and_submissions_graded_since(sim, api, token, roster_zip):
    sim.seed_sis_import(roster_zip(4))
    course = sis_ref("course", "CRS0")
    quiz = sim.add_assignment(course, name="Quiz 1", points_possible=10, post_to_sis=True)
    # The control API adds the second assignment, as an out-of-process test would.
    practice = httpx.post(
        f"{sim.url}/_sim/assignments",
        headers={"Authorization": f"Bearer {token}"},
        json={"course_id": course, "name": "Practice", "points_possible": 5, "post_to_sis": False},
    ).json()
    sim.grade(quiz.id, "sis_user_id:PS00000", score=9, graded_at="2025-09-01T10:00:00Z")
    sim.grade(quiz.id, "sis_user_id:PS00001", score=7, graded_at="2025-09-03T10:00:00Z")
    sim.grade(practice["id"], "sis_user_id:PS00000", score=5, graded_at="2025-09-04T10:00:00Z")

    assignments = {a.name: a for a in api.iter_assignments(course)}
    assert assignments["Quiz 1"].post_to_sis is True and assignments["Practice"].post_to_sis is False

    since = datetime(2025, 9, 2, tzinfo=UTC)
    recent = list(api.iter_submissions(course, graded_since=since))
    assert sorted((s.assignment_id, s.score) for s in recent) == [(quiz.id, 7), (practice["id"], 5)]
    assert all(s.graded_at >= since for s in recent)
    assert len(list(api.iter_submissions(course))) == 3
    assert list(api.iter_submissions(sis_ref("course", "CRS1"))) == []


def test_groups_overrides_and_deleted_or_unpublished_assignments(sim, api, roster_zip):
    """Assignments API as Assignments::ScopedToUser lists it for an admin: deleted ones gone, unpublished ones
    listed as such; groups by position; "assign to" overrides with their students or section."""
    sim.seed_sis_import(roster_zip(4))
    course = sis_ref("course", "CRS0")
    homework = sim.add_assignment(course, name="HW", points_possible=5, post_to_sis=True, group="Homework")
    retake = sim.add_assignment(
        course,
        name="Retake",
        points_possible=5,
        post_to_sis=True,
        group="Tests",
        only_visible_to_overrides=True,
        student_ids=["sis_user_id:PS00000"],
    )
    draft = sim.add_assignment(
        course, name="Draft", points_possible=5, post_to_sis=True, group="Homework", published=False
    )
    gone = sim.add_assignment(course, name="Gone", points_possible=5, post_to_sis=True)
    sim.delete_assignment(gone.id)

    listed = {a.name: a for a in api.iter_assignments(course)}
    assert set(listed) == {"HW", "Retake", "Draft"}
    assert listed["Draft"].published is False and listed["HW"].published is True
    assert listed["Retake"].only_visible_to_overrides and not listed["HW"].only_visible_to_overrides
    groups = api.assignment_groups(course)
    assert list(groups.values()) == ["Homework", "Tests", "Assignments"]  # by position; "Gone" made the default
    assert groups[listed["HW"].assignment_group_id] == "Homework" == groups[listed["Draft"].assignment_group_id]
    student = sim.state.resolve("user", "sis_user_id:PS00000")
    assert [o["student_ids"] for o in api.assignment_overrides(course, retake.id)] == [[student.id]]
    assert api.assignment_overrides(course, homework.id) == [] and draft.id in listed["Draft"].raw.values()
