"""Issue 14 end to end: a district whose legacy Canvas was made by another integration (its own ids and logins, a
cross-listed course, co-teachers, a student who left), through steps 2–6, with Canvas's final state checked row by
row."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from canvas.client import CanvasClient
from conversion import workflow
from conversion.celery import app as celery_app
from conversion.models import ConversionState, JobKind, MappingDiff, RosterPolicy, SyncRun, SyncState
from conversion.services import connection, mapping, pull, remap, schedule
from conversion.services.legacy import LegacyIntegration
from sifclient.powerschool import District as SimDistrict
from sifclient.powerschool import DistrictSpec
from tests.conversion.conftest import fill_step_one
from tests.conversion.jobhelpers import run as run_job
from tests.conversion.simulators import TOKEN, simulated_district

pytestmark = pytest.mark.django_db(transaction=True)
INTEGRATION = LegacyIntegration(student_login="{local_id}@students.example.org", staff_login="{email}")


def _spec(conversion) -> DistrictSpec:
    # The student left yesterday in the district's calendar, during the school year the conversion is for.
    today = timezone.localdate(timezone=conversion.district.tzinfo)
    year = today.year + 1 if today >= dt.date(today.year, 8, 17) else today.year
    return DistrictSpec(
        students=60,
        schools=1,
        school_year=year,
        seed=21,
        departed_students=1,
        departed_on=(today - dt.timedelta(days=1)).isoformat(),
        co_teachers=True,
    )


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def run(conversion, kind, runner):
    return run_job(conversion, kind, runner, expect_success=True)


def canvas_state(canvas_sim):
    with CanvasClient(canvas_sim.url, TOKEN) as client:
        users = {u.sis_user_id: u.login_id for u in client.iter_users("self") if u.sis_user_id}
        enrollments = {}
        for course in client.iter_courses("self"):
            for e in client.iter_enrollments(
                course_id=course.id, states=["active", "invited", "inactive", "completed", "deleted"]
            ):
                enrollments.setdefault((e.sis_section_id, e.sis_user_id), set()).add((e.type, e.enrollment_state))
    return users, enrollments


def test_a_district_with_a_real_legacy_integration_goes_live_without_changing_logins(
    conversion, consultant, district_admin, eager_celery
):
    conversion.school_year = _spec(conversion).school_year
    conversion.save()
    spec = _spec(conversion)
    with simulated_district(conversion, spec, integration=INTEGRATION) as (zis, canvas_sim):
        generated = SimDistrict(spec)
        legacy_users, _ = canvas_state(canvas_sim)
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            legacy_courses = {c.id: c.sis_course_id for c in client.iter_courses("self")}
        fill_step_one(conversion)
        conversion.zis_url = zis.base_url + "/zones"
        conversion.save()
        workflow.perform(conversion, "confirm_agent_setup", user=district_admin)
        run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
        run(conversion, JobKind.PULL, pull.run_pull)
        workflow.perform(conversion, "verify_pull", user=district_admin)
        conversion.pause_date = workflow.local_today(conversion)
        conversion.save()
        schedule.advance_due_dates()
        conversion.refresh_from_db()
        assert conversion.state == ConversionState.MAPPING

        # The default login rule (e-mail) would change every student's SSO login: approval is blocked.
        run(conversion, JobKind.MAPPING, mapping.run_mapping)
        diff = MappingDiff.objects.current(conversion)
        blocked = diff.rows.filter(blocking=True)
        assert blocked.count() == spec.students
        assert all("login would change" in r.reason for r in blocked)
        with pytest.raises(workflow.TransitionRefused):
            workflow.perform(conversion, "approve_mapping", user=district_admin)

        # The district's policy: students sign in as the legacy integration had them; aides are TAs.
        RosterPolicy.objects.create(
            district=conversion.district,
            login_rule="pattern",
            login_pattern="{local_id}@students.example.org",
            staff_login_rule="email",
        )
        run(conversion, JobKind.MAPPING, mapping.run_mapping)
        diff = MappingDiff.objects.current(conversion)
        assert diff.blocking_count == 0
        # The legacy integration's ids were learned: every legacy course, section and term is renamed.
        learned = {
            kind: diff.rows.filter(kind=kind).count()
            for kind in ("legacy_course", "legacy_section", "legacy_term", "legacy_group")
        }
        assert learned == {
            "legacy_course": len(legacy_courses),
            "legacy_section": len(legacy_courses) + 1,
            "legacy_term": 3,
            "legacy_group": 1,  # the cross-listed course's second section stays in it
        }
        workflow.perform(conversion, "approve_mapping", user=district_admin)
        # The dry run (the preview file) names every type the remap renames.
        preview = remap.change_file(remap.plan(conversion).changes).decode()
        assert {line.rsplit(",", 1)[-1] for line in preview.splitlines()[1:]} == {"user", "term", "course", "section"}
        run(conversion, JobKind.REMAP, remap.run_remap)
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            assert all(c.sis_course_id.startswith("sec_") for c in client.iter_courses("self"))
        # The rollback puts every type back, then the remap runs again.
        run(conversion, JobKind.REMAP_ROLLBACK, remap.run_rollback)
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            assert {c.id: c.sis_course_id for c in client.iter_courses("self")} == legacy_courses
        assert canvas_state(canvas_sim)[0] == legacy_users
        run(conversion, JobKind.REMAP, remap.run_remap)
        workflow.perform(conversion, "complete_remap", user=consultant)
        conversion.go_live_date = workflow.local_today(conversion)
        conversion.save()
        schedule.advance_due_dates()
        conversion.refresh_from_db()
        assert conversion.state == ConversionState.LIVE
        night = dt.datetime.combine(
            workflow.local_today(conversion), dt.time(0, 0, 30), tzinfo=conversion.district.tzinfo
        )
        started = schedule.start_nightly_syncs(now=night)["started"]
        assert SyncRun.objects.get(job_id=started[0]).state == SyncState.IMPORTED

        users, enrollments = canvas_state(canvas_sim)
        # Every user is under the DCID, with the login the legacy integration gave them.
        people = [generated.student(i) for i in range(spec.students)] + [
            generated.staff(i) for i in range(generated.staff_per_school)
        ]
        for person in people:
            dcid = person.extended_elements["DCID"]
            assert person.local_id not in users and users[dcid] == legacy_users[person.local_id], person.local_id

        # Every old course is kept, under the sync's id, and Canvas has no empty course.
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            after = {c.id: c.sis_course_id for c in client.iter_courses("self")}
            empty = [c for c in after if not any(True for _ in client.iter_enrollments(course_id=c))]
        assert set(legacy_courses) <= set(after) and not empty
        assert all(new.startswith("sec_") for new in after.values())
        assert len(after) == len(legacy_courses)  # the cross-listed pair's second section stays in the shared course
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            shared = [c for c in after if sum(1 for _ in client.iter_sections(c)) > 1]
        assert len(shared) == 1

        # The student who left is not active anywhere.
        left = next(generated.student(i) for i in range(spec.students) if generated.departed(i))
        theirs = [states for (_, user), states in enrollments.items() if user == left.extended_elements["DCID"]]
        assert theirs and all(state != "active" for states in theirs for _, state in states)

        # A co-teacher is a teacher (the default table) and the aide a TA, in the same section as the lead.
        aide = generated.staff(generated.aide_index(0)).extended_elements["DCID"]
        aide_rows = [states for (_, user), states in enrollments.items() if user == aide]
        assert any(("TaEnrollment", "active") in states for states in aide_rows)
        # ... and the legacy integration's own TeacherEnrollment of the aide went with the district's drop status.
        policy = RosterPolicy.objects.get(district=conversion.district)
        assert all(
            ("TeacherEnrollment", "active") not in states and ("TeacherEnrollment", policy.drop_status) in states
            for states in aide_rows
            if any(t == "TaEnrollment" for t, _ in states)
        ), aide_rows
        # A co-teacher (the default table: `teacher`) beside the lead: a section with two active teachers.
        teachers: dict[str, int] = {}
        for (section, _), states in enrollments.items():
            teachers[section] = teachers.get(section, 0) + (("TeacherEnrollment", "active") in states)
        assert max(teachers.values()) == 2

        # 7. Rollover: the same conversion moves on to the next school year; the first night of the new year
        # creates its terms and courses and is not held, although none of last year's enrollments are in it.
        from conversion.services import rollover

        rollover.roll_over(conversion, user=consultant)
        conversion.refresh_from_db()
        assert conversion.school_year == spec.school_year + 1
        zis.update_spec(school_year=spec.school_year + 1)
        started = schedule.start_nightly_syncs(now=night + dt.timedelta(days=1))["started"]
        new_year = SyncRun.objects.get(job_id=started[0])
        assert new_year.state == SyncState.IMPORTED, new_year.held_reason
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            terms = {c.sis_term_id for c in client.iter_courses("self")}
            courses = {c.id for c in client.iter_courses("self")}
        assert {f"{spec.school_year + 1}_S1", f"{spec.school_year}_S1"} <= terms
        assert set(legacy_courses) <= courses  # last year's courses stay
        # ... and every enrollment of last year is concluded (the student who left stays not active).
        _, after_rollover = canvas_state(canvas_sim)
        old_year = {
            key: states for key, states in after_rollover.items() if key[0].startswith(f"sec_{spec.school_year % 100}")
        }
        still = {key: states for key, states in old_year.items() if any(s == "active" for _, s in states)}
        assert old_year and not still, still
        new_year_rows = [
            states for key, states in after_rollover.items() if key[0].startswith(f"sec_{(spec.school_year + 1) % 100}")
        ]
        assert new_year_rows and any(state == "active" for states in new_year_rows for _, state in states)
