"""An enrollment a person adds in Canvas (the People page or the API), not through an SIS import.

canvas-lms app/controllers/enrollments_api_controller.rb#create (POST sections/:section_id/enrollments) calls
CourseSection#enroll_user → Course#enroll_user (app/models/course.rb), which makes the enrollment `invited` unless
an `enrollment[enrollment_state]` is given, and never sets its sis_batch_id: only the SIS enrollment importer does
(lib/sis/enrollment_importer.rb, `enrollment.sis_batch_id = @batch.id`). The API's enrollment JSON shows that
column as `sis_import_id` (lib/api/v1/enrollment.rb#enrollment_json), so an enrollment made here has none, and an
SIS import that later names the same user, role and section takes it over and stamps its own id on it
(apply_rows.py: the importer finds it by user, type and associated user).

Kept apart from server.py (hooked in by one line at its end) like account_api.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from canvas.simulator import render
from canvas.simulator.server import Answer, ApiError, Request, Route, _get, _r
from canvas.simulator.state import Enrollment

if TYPE_CHECKING:
    from canvas.simulator import CanvasSimulator

TYPES = ("StudentEnrollment", "TeacherEnrollment", "TaEnrollment", "ObserverEnrollment", "DesignerEnrollment")
STATES = ("active", "invited", "inactive")


def create_section_enrollment(sim: CanvasSimulator, request: Request) -> Answer:
    kind = request.one("enrollment[type]") or "StudentEnrollment"
    state = request.one("enrollment[enrollment_state]") or "invited"
    if kind not in TYPES or state not in STATES:
        raise ApiError(400, "Invalid enrollment type or state", body={"errors": [{"message": "invalid"}]})
    with sim.state.lock:
        section = _get(sim, "section", request.captures[0])
        user = _get(sim, "user", request.one("enrollment[user_id]") or "")
        key = (user.id, kind, None)
        existing = sim.state.enrollments_by_section.get(section.id, {}).get(key)
        enrollment = sim.state.enrollments.get(existing) if existing is not None else None
        if enrollment is None:
            # sis_batch_id stays None: nothing but the SIS importer sets it.
            enrollment = Enrollment(sim.state.next_id(), user.id, section.course_id, section.id, kind, state)
            sim.state.add_enrollment(enrollment, key)
        elif enrollment.workflow_state == "completed":
            enrollment.workflow_state = "invited"  # Course#enroll_user re-invites a concluded enrollment it finds
        return 200, render.enrollment_json(sim.state, enrollment), {}


ROUTES: list[Route] = [
    # EnrollmentsApiController#create asks the section's course for the right to add that kind of user.
    _r(
        "POST",
        r"/api/v1/sections/([^/]+)/enrollments",
        ("manage_students", "manage_admin_users"),
        create_section_enrollment,
    ),
]
