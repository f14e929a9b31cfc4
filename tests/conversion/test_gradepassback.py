"""Step 7 against the ZIS and Canvas simulators over HTTP: assignments and scores flagged "post to SIS"
reach the zone as schema-valid SIF_Events, while the roster sync is paused, and only once."""

from __future__ import annotations

import pytest
from django.urls import reverse
from lxml import etree

from canvas.client import CanvasClient
from canvas.csvfiles import ChangeSisIdRow, EnrollmentRow, UserRow, csv_bytes
from conversion import jobs
from conversion.models import (
    ConversionState,
    GpbStatus,
    GradePassbackItem,
    JobKind,
    JobState,
    SifRecord,
)
from conversion.services import gradepassback
from conversion.services.sifdata import data_of
from tests.conversion.jobhelpers import run
from tests.conversion.simulators import TOKEN
from tests.sifclient.sifschema import assert_valid

pytestmark = pytest.mark.django_db(transaction=True)
DUE = "2026-10-01T18:00:00Z"


def first_course(canvas):
    with CanvasClient(canvas.url, TOKEN) as client:
        for course in client.iter_courses("self"):
            students = [e for e in client.iter_enrollments(course_id=course.id) if e.type == "StudentEnrollment"]
            if (course.sis_course_id or "").startswith("sec_") and len(students) >= 3:
                return course, [e.sis_user_id for e in students]
    raise AssertionError("no section course with three students")


def passback(conversion):
    job = run(conversion, JobKind.GRADE_PASSBACK, gradepassback.run_grade_passback)
    assert job.state == JobState.SUCCEEDED, job.error
    return job


def test_assignments_and_scores_reach_the_zone_while_the_sync_is_paused(paused):
    conversion, zis, canvas, inbound = paused
    course, (s1, s2, s3, *_) = first_course(canvas)
    ref = f"sis_course_id:{course.sis_course_id}"
    # s3 has been remapped in Canvas: the DCID is its sis_user_id now (both schemes are accepted).
    dcid = SifRecord.objects.get(object_name="StudentPersonal", local_id=s3).dcid
    canvas.seed_sis_import(csv_bytes("change_sis_id", [ChangeSisIdRow(type="user", old_id=s3, new_id=dcid)]))
    # A Canvas-only student in the course, unknown to PowerSchool.
    canvas.seed_sis_import(csv_bytes("users", [UserRow(user_id="guest1", login_id="guest1", full_name="Guest One")]))
    canvas.seed_sis_import(
        csv_bytes("enrollments", [EnrollmentRow(course_id=course.sis_course_id, user_id="guest1", role="student")])
    )

    essay = canvas.add_assignment(
        ref, name="Essay 1", points_possible=20, group="Homework", post_to_sis=True, due_at=DUE
    )
    undated = canvas.add_assignment(ref, name="Quiz 2", points_possible=10, group="Homework", post_to_sis=True)
    canvas.add_assignment(
        ref,
        name="A very long assignment name over thirty",
        points_possible=5,  # over the limit
        group="Homework",
        post_to_sis=True,
        due_at=DUE,
    )
    private = canvas.add_assignment(ref, name="Practice", points_possible=5, post_to_sis=False, due_at=DUE)
    canvas.grade(essay.id, f"sis_user_id:{s1}", score=18)
    canvas.grade(essay.id, f"sis_user_id:{s2}", score=17.5)
    canvas.grade(essay.id, f"sis_user_id:{dcid}", score=20)
    canvas.grade(essay.id, "sis_user_id:guest1", score=10)
    canvas.grade(undated.id, f"sis_user_id:{s1}", score=7)
    canvas.grade(private.id, f"sis_user_id:{s1}", score=5)

    job = passback(conversion)

    section = SifRecord.objects.get(object_name="SectionInfo", local_id=course.sis_course_id.removeprefix("sec_"))
    written = [(w.object_name, w.action, w.record) for w in zis.grade_write_backs]
    assert [(o, a) for o, a, _ in written] == [("GradingAssignment", "Add")] + [("GradingAssignmentScore", "Add")] * 3
    assignment = written[0][2]
    assert assignment.ref_id == gradepassback.assignment_ref_id(canvas.url, essay.id)
    assert (
        assignment.section_ref_id == section.ref_id
        and assignment.term_ref_id == data_of(section.xml)["schedules"][0]["term_ref_id"]
    )
    assert assignment.description == "Essay 1" and assignment.points_possible == 20
    assert str(assignment.due_date) == "2026-10-01"
    category = SifRecord.objects.get(ref_id=assignment.category_ref_id)
    assert data_of(category.xml)["section_ref_id"] == section.ref_id
    scores = {w.student_ref_id: w for _, _, w in written[1:]}
    student = {s: SifRecord.objects.get(object_name="StudentPersonal", local_id=s).ref_id for s in (s1, s2, s3)}
    assert scores[student[s1]].score_points == 18
    assert scores[student[s2]].score_points is None and str(scores[student[s2]].score_percent) == "87.50"
    assert scores[student[s3]].score_points == 20

    # What went over the wire is valid SIF 2.4, one SIF_Event per record.
    events = inbound.events()
    assert len(events) == 4
    for data in events:
        assert_valid(data, "2.4")
    assert all(etree.fromstring(d).find(".//{*}SIF_EventObject").get("Action") == "Add" for d in events)

    items = {(i.assignment_name, i.student_sis_id): i for i in GradePassbackItem.objects.all()}
    assert items[("Essay 1", "")].status == GpbStatus.ACCEPTED
    assert "ScorePercent" in items[("Essay 1", s2)].reason and items[("Essay 1", s2)].status == GpbStatus.ACCEPTED
    assert items[("Quiz 2", "")].status == GpbStatus.REFUSED and "due date" in items[("Quiz 2", "")].reason
    assert items[("Quiz 2", s1)].status == GpbStatus.REFUSED
    long_item = items[("A very long assignment name over thirty", "")]
    assert long_item.status == GpbStatus.REFUSED and "takes 30" in long_item.reason
    assert items[("Essay 1", "guest1")].status == GpbStatus.REFUSED
    assert "not in the latest pull" in items[("Essay 1", "guest1")].reason
    assert not any(i.assignment_name == "Practice" for i in items.values())
    assert job.detail["counts"] == {"accepted": 4, "refused": 4, "unchanged": 0}
    conversion.refresh_from_db()
    assert conversion.state == ConversionState.PAUSE and conversion.gpb_last_run_at is not None


def test_a_rerun_resends_only_what_changed(paused):
    conversion, zis, canvas, inbound = paused
    course, (s1, s2, *_) = first_course(canvas)
    essay = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Lab 1",
        points_possible=10,
        group="Homework",
        post_to_sis=True,
        due_at=DUE,
    )
    canvas.grade(essay.id, f"sis_user_id:{s1}", score=9)
    canvas.grade(essay.id, f"sis_user_id:{s2}", score=8)
    passback(conversion)
    assert len(zis.grade_write_backs) == 3

    # Same data, even read in full (as if the last run were forgotten): the ledger sends nothing again.
    passback(conversion)
    type(conversion).objects.filter(pk=conversion.pk).update(gpb_last_run_at=None)
    job = passback(conversion)
    assert len(zis.grade_write_backs) == 3
    assert job.detail["counts"]["unchanged"] == 3

    # A new score for one student: one Change, for that score only.
    canvas.grade(essay.id, f"sis_user_id:{s1}", score=10)
    passback(conversion)
    latest = zis.grade_write_backs[3:]
    assert [(w.object_name, w.action, w.record.score_points) for w in latest] == [
        ("GradingAssignmentScore", "Change", 10)
    ]
    assert GradePassbackItem.objects.filter(status=GpbStatus.ACCEPTED).count() == 3
    assert GradePassbackItem.objects.count() == 3
    for data in inbound.events():
        assert_valid(data, "2.4")


def test_the_district_page_shows_what_was_passed_back(paused, district_admin, client):
    conversion, zis, canvas, _ = paused
    course, (s1, *_) = first_course(canvas)
    ok = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Essay",
        points_possible=4,
        group="Homework",
        post_to_sis=True,
        due_at=DUE,
    )
    canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}", name="No date", points_possible=4, group="Homework", post_to_sis=True
    )
    canvas.grade(ok.id, f"sis_user_id:{s1}", score=3)
    passback(conversion)
    client.force_login(district_admin)
    html = client.get(
        reverse("district_section", kwargs={"slug": "alpha", "year": 2027, "section": "grade-passback"})
    ).content.decode()
    assert course.sis_course_id in html and "It has no due date" in html
    detail = client.get(reverse("gpb_course", kwargs={"slug": "alpha", "year": 2027, "course_id": course.id}))
    assert detail.status_code == 200 and s1 in detail.content.decode()


def test_the_progress_gives_each_course_its_own_counts(paused, monkeypatch):
    conversion, zis, canvas, _ = paused
    graded = []
    with CanvasClient(canvas.url, TOKEN) as client:
        for course in client.iter_courses("self"):
            students = [
                e.sis_user_id for e in client.iter_enrollments(course_id=course.id) if e.type == "StudentEnrollment"
            ]
            if (course.sis_course_id or "").startswith("sec_") and len(students) >= 3:
                graded.append((course, students))
            if len(graded) == 2:
                break
    for n, (course, students) in enumerate(graded, start=1):
        assignment = canvas.add_assignment(
            f"sis_course_id:{course.sis_course_id}",
            name=f"Quiz {n}",
            points_possible=4,
            group="Homework",
            post_to_sis=True,
            due_at=DUE,
        )
        for student in students[:n]:
            canvas.grade(assignment.id, f"sis_user_id:{student}", score=3)
    messages = []
    real_add = jobs.Progress.add

    def add(self, n=1, **kwargs):
        messages.append(kwargs.get("message", ""))
        return real_add(self, n, **kwargs)

    monkeypatch.setattr(jobs.Progress, "add", add)
    passback(conversion)
    for course, _ in graded:
        own = GradePassbackItem.objects.filter(
            conversion=conversion, canvas_course_id=course.id, status=GpbStatus.ACCEPTED
        ).count()
        said = next(m for m in messages if m.startswith(f"{course.name}:"))
        assert said.startswith(f"{course.name}: {own} accepted, 0 refused; all courses so far:"), said
    assert GradePassbackItem.objects.filter(status=GpbStatus.ACCEPTED).count() == 5  # 2 assignments, 3 scores


def test_grades_a_sleeping_zone_did_not_take_are_sent_on_the_next_run(paused, zis_profile, settings):
    """A sleeping zone answers every event with SIF_Status 8 (OpenZIS: SifProcessRequest.php checkIfZoneIsSleeping):
    nothing is counted accepted, the job says the zone is asleep, and the next run sends it all. The default
    profile sleeps per agent (SIF_Sleep), so the strict profile alone can put the zone to sleep."""
    if zis_profile != "strict":
        pytest.skip("the zone sleeps in the strict profile")
    settings.ZIS_CLIENT_OPTIONS = {"timeout": 10.0, "retries": 1, "retry_delay": 0.01}
    conversion, zis, canvas, inbound = paused
    course, (s1, *_) = first_course(canvas)
    essay = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Lab 2",
        points_possible=10,
        group="Homework",
        post_to_sis=True,
        due_at=DUE,
    )
    canvas.grade(essay.id, f"sis_user_id:{s1}", score=9)
    zis.zone.set_asleep(True)
    job = run(conversion, JobKind.GRADE_PASSBACK, gradepassback.run_grade_passback)
    assert job.state == JobState.FAILED and job.error.startswith("The zone is asleep"), job.error
    assert zis.grade_write_backs == []
    assert not GradePassbackItem.objects.filter(status=GpbStatus.ACCEPTED).exists()
    conversion.refresh_from_db()
    assert conversion.gpb_last_run_at is None

    zis.zone.set_asleep(False)
    again = passback(conversion)
    assert [(w.object_name, w.action) for w in zis.grade_write_backs] == [
        ("GradingAssignment", "Add"),
        ("GradingAssignmentScore", "Add"),
    ]
    assert again.detail["counts"]["accepted"] == 2


def test_grade_passback_provisions_what_it_publishes(paused, zis_profile):
    """event/Event.php: only the provider of an object may publish its events (6/5 otherwise)."""
    conversion, zis, canvas, inbound = paused
    course, (s1, *_) = first_course(canvas)
    essay = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Lab 3",
        points_possible=10,
        group="Homework",
        post_to_sis=True,
        due_at=DUE,
    )
    canvas.grade(essay.id, f"sis_user_id:{s1}", score=9)
    passback(conversion)
    provisions = [m for m in inbound.messages if b"<SIF_Provision" in m]
    assert len(provisions) == 1
    provided = etree.fromstring(provisions[0]).xpath("//*[local-name()='SIF_ProvideObjects']/*/@ObjectName")
    assert provided == ["GradingAssignment", "GradingAssignmentScore"]
    assert len(zis.grade_write_backs) == 2
