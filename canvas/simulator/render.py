"""Canvas's JSON shapes for the simulator's objects."""

from __future__ import annotations

from typing import Any

from canvas.simulator.apply_rows import BUILTIN_ROLE_IDS
from canvas.simulator.state import (
    Assignment,
    AssignmentGroup,
    AssignmentOverride,
    CanvasState,
    Course,
    Enrollment,
    Section,
    Submission,
    Term,
    User,
)

# Canvas's enrollment_state for each stored workflow_state.
ENROLLMENT_STATE = {"active": "active", "inactive": "inactive", "completed": "completed", "deleted": "deleted"}


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "created_at": user.created_at,
        "sortable_name": user.sortable_name,
        "short_name": user.short_name,
        "sis_user_id": user.sis_id,
        "integration_id": user.integration_id,
        "sis_import_id": user.sis_batch_id,
        "login_id": user.login_id,
    }


def term_json(term: Term) -> dict[str, Any]:
    return {
        "id": term.id,
        "name": term.name,
        "start_at": term.start_at,
        "end_at": term.end_at,
        "sis_term_id": term.sis_id,
        "workflow_state": term.workflow_state,
    }


def course_json(state: CanvasState, course: Course, *, include_term: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": course.id,
        "name": course.name,
        "course_code": course.course_code,
        "account_id": course.account_id,
        "root_account_id": state.root_account.id,
        "enrollment_term_id": course.term_id,
        "start_at": course.start_at,
        "end_at": course.end_at,
        "workflow_state": "unpublished" if course.workflow_state == "claimed" else course.workflow_state,
        "sis_course_id": course.sis_id,
        "integration_id": course.integration_id,
        "sis_import_id": course.sis_batch_id,
    }
    if include_term:
        data["term"] = term_json(state.terms[course.term_id])
    return data


def section_json(state: CanvasState, section: Section) -> dict[str, Any]:
    course = state.courses[section.course_id]
    return {
        "id": section.id,
        "course_id": section.course_id,
        "name": section.name,
        "start_at": section.start_at,
        "end_at": section.end_at,
        "sis_section_id": section.sis_id,
        "sis_course_id": course.sis_id,
        "integration_id": section.integration_id,
        "nonxlist_course_id": None,
        "sis_import_id": section.sis_batch_id,
    }


def enrollment_json(state: CanvasState, enrollment: Enrollment) -> dict[str, Any]:
    user = state.users[enrollment.user_id]
    section = state.sections[enrollment.section_id]
    course = state.courses[enrollment.course_id]
    return {
        "id": enrollment.id,
        "user_id": user.id,
        "course_id": course.id,
        "course_section_id": section.id,
        "type": enrollment.type,
        "role": enrollment.type,
        "role_id": BUILTIN_ROLE_IDS[enrollment.type],
        "enrollment_state": ENROLLMENT_STATE.get(enrollment.workflow_state, enrollment.workflow_state),
        "associated_user_id": enrollment.associated_user_id,
        "start_at": enrollment.start_at,
        "end_at": enrollment.end_at,
        "created_at": enrollment.created_at,
        "root_account_id": state.root_account.id,
        "sis_user_id": user.sis_id,
        "sis_course_id": course.sis_id,
        "sis_section_id": section.sis_id,
        "sis_import_id": enrollment.sis_batch_id,
        "user": {
            "id": user.id,
            "name": user.name,
            "sortable_name": user.sortable_name,
            "short_name": user.short_name,
            "sis_user_id": user.sis_id,
            "login_id": user.login_id,
        },
    }


def assignment_json(assignment: Assignment) -> dict[str, Any]:
    return {
        "id": assignment.id,
        "course_id": assignment.course_id,
        "name": assignment.name,
        "points_possible": assignment.points_possible,
        "post_to_sis": assignment.post_to_sis,
        "due_at": assignment.due_at,
        "integration_id": assignment.integration_id,
        # lib/api/v1/assignment.rb#assignment_json: "published" from workflow_state, the group's id, and
        # only_visible_to_overrides (the "assign to" students/sections only flag).
        "published": assignment.workflow_state == "published",
        "workflow_state": assignment.workflow_state,
        "assignment_group_id": assignment.assignment_group_id,
        "only_visible_to_overrides": assignment.only_visible_to_overrides,
        "grading_type": "points",
    }


def assignment_override_json(assignment: Assignment, override: AssignmentOverride) -> dict[str, Any]:
    # lib/api/v1/assignment_override.rb#assignment_override_json: student_ids for an adhoc override,
    # course_section_id for a section override.
    data: dict[str, Any] = {"id": override["id"], "assignment_id": assignment.id, "title": override["title"]}
    if "student_ids" in override:
        data["student_ids"] = list(override["student_ids"])
    if "course_section_id" in override:
        data["course_section_id"] = override["course_section_id"]
    return data


def assignment_group_json(group: AssignmentGroup) -> dict[str, Any]:
    # lib/api/v1/assignment_group.rb#assignment_group_json: id, name, position, group_weight, rules.
    return {"id": group.id, "name": group.name, "position": group.position, "group_weight": 0, "rules": {}}


def submission_json(submission: Submission) -> dict[str, Any]:
    return {
        "id": submission.id,
        "assignment_id": submission.assignment_id,
        "user_id": submission.user_id,
        "score": submission.score,
        "grade": submission.grade,
        "entered_score": submission.score,
        "entered_grade": submission.grade,
        "graded_at": submission.graded_at,
        "workflow_state": submission.workflow_state,
        "excused": submission.excused,
        "late": submission.late,
        "missing": submission.missing,
    }


def account_json(state: CanvasState, account: Any) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "uuid": f"sim-account-{account.id}",
        "parent_account_id": account.parent_account_id,
        "root_account_id": None if account.id == state.root_account.id else state.root_account.id,
        "workflow_state": account.workflow_state,
        "sis_account_id": account.sis_id,
        "integration_id": account.integration_id,
        "sis_import_id": account.sis_batch_id,
        "default_time_zone": "America/Denver",
        "default_storage_quota_mb": 500,
        "default_user_storage_quota_mb": 50,
        "default_group_storage_quota_mb": 50,
    }


def login_json(state: CanvasState, user: User) -> dict[str, Any]:
    """A pseudonym as GET users/:id/logins lists it (Api::V1::Pseudonym)."""
    return {
        "id": user.id,
        "user_id": user.id,
        "account_id": state.root_account.id,
        "unique_id": user.login_id,
        "sis_user_id": user.sis_id,
        "integration_id": user.integration_id,
        "authentication_provider_id": user.authentication_provider_id,
        "authentication_provider_type": "saml" if user.authentication_provider_id else None,
        "workflow_state": user.login_state,
        "declared_user_type": None,
        "created_at": user.created_at,
    }
