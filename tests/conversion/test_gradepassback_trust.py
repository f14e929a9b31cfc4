"""Grade passback teachers can trust (issue 16), against the ZIS simulator in both profiles and the Canvas
simulator: categories by group name, Delete of what Canvas no longer passes back, assignments for some students
only, the gradebook table, read-back confirmation and the plug-in as the zone shows it."""

from __future__ import annotations

import pytest
from lxml import etree

from canvas.client import CanvasClient
from conversion.models import Confirmation, GpbStatus, Gradebook, GradePassbackItem, JobKind, JobState, SifRecord
from conversion.services import gradepassback
from conversion.services.sifdata import data_of
from tests.conversion.jobhelpers import run
from tests.conversion.simulators import TOKEN
from tests.conversion.test_gradepassback import DUE, first_course, passback
from tests.sifclient.sifschema import assert_valid

pytestmark = pytest.mark.django_db(transaction=True)


def categories_of(course) -> dict[str, str]:
    """Description -> RefId of the GradingCategory objects of the course's section, as pulled."""
    section = SifRecord.objects.get(object_name="SectionInfo", local_id=course.sis_course_id.removeprefix("sec_"))
    categories = [(data_of(r.xml), r.ref_id) for r in SifRecord.objects.filter(object_name="GradingCategory")]
    return {data["description"]: ref_id for data, ref_id in categories if data["section_ref_id"] == section.ref_id}


def item(name: str, sis_user_id: str = "") -> GradePassbackItem:
    return GradePassbackItem.objects.get(assignment_name=name, student_sis_id=sis_user_id)


def test_each_group_goes_to_the_category_of_its_name_and_an_unmatched_group_is_refused(paused):
    conversion, zis, canvas, _ = paused
    course, _ = first_course(canvas)
    ref = f"sis_course_id:{course.sis_course_id}"
    categories = categories_of(course)
    assert set(categories) == {"Homework", "Tests"}
    canvas.add_assignment(ref, name="Unit test", points_possible=10, group="  TESTS ", post_to_sis=True, due_at=DUE)
    canvas.add_assignment(ref, name="Worksheet", points_possible=10, group="home work", post_to_sis=True, due_at=DUE)
    canvas.add_assignment(ref, name="Poster", points_possible=10, group="Projects", post_to_sis=True, due_at=DUE)

    passback(conversion)

    sent = {w.record.description: w.record.category_ref_id for w in zis.grade_write_backs}
    assert sent == {"Unit test": categories["Tests"], "Worksheet": categories["Homework"]}
    poster = item("Poster")
    assert poster.status == GpbStatus.REFUSED
    assert "\u201cProjects\u201d matches no PowerSchool category" in poster.reason
    assert "Homework" in poster.reason and "Tests" in poster.reason


def test_a_course_override_files_a_group_under_another_category(paused, district_admin):
    conversion, zis, canvas, _ = paused
    course, _ = first_course(canvas)
    categories = categories_of(course)
    canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Poster",
        points_possible=10,
        group="Projects",
        post_to_sis=True,
        due_at=DUE,
    )
    gradepassback.set_category_override(conversion, course.id, "Projects", "tests", district_admin)
    passback(conversion)
    assert [w.record.category_ref_id for w in zis.grade_write_backs] == [categories["Tests"]]
    event = conversion.audit_events.get(action="gpb_category_override")
    assert event.actor == district_admin and event.detail == {
        "canvas_course_id": course.id,
        "group": "Projects",
        "category": "tests",
        "previous": None,
    }

    # An override naming no category of the section is refused with that reason, not filed elsewhere.
    gradepassback.set_category_override(conversion, course.id, "Projects", "Labs", district_admin)
    canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Poster 2",
        points_possible=10,
        group="Projects",
        post_to_sis=True,
        due_at=DUE,
    )
    passback(conversion)
    assert item("Poster 2").status == GpbStatus.REFUSED
    assert "files it under \u201cLabs\u201d" in item("Poster 2").reason


def test_what_canvas_no_longer_passes_back_is_deleted_in_powerschool_with_its_scores(paused):
    conversion, zis, canvas, inbound = paused
    course, (s1, s2, *_) = first_course(canvas)
    ref = f"sis_course_id:{course.sis_course_id}"
    made = {
        name: canvas.add_assignment(ref, name=name, points_possible=10, group="Homework", post_to_sis=True, due_at=DUE)
        for name in ("Deleted", "Unpublished", "Unticked", "Kept")
    }
    for a in made.values():
        canvas.grade(a.id, f"sis_user_id:{s1}", score=9)
        canvas.grade(a.id, f"sis_user_id:{s2}", score=8)
    passback(conversion)
    held = zis.zone.held_grades()
    assert len(held.assignments) == 4 and len(held.scores) == 8

    canvas.delete_assignment(made["Deleted"].id)
    canvas.update_assignment(made["Unpublished"].id, workflow_state="unpublished")
    canvas.update_assignment(made["Unticked"].id, post_to_sis=False)
    sent_before = len(zis.grade_write_backs)
    job = passback(conversion)

    deletes = zis.grade_write_backs[sent_before:]
    assert all(w.action == "Delete" for w in deletes) and len(deletes) == 9  # 3 assignments, 6 scores
    held = zis.zone.held_grades()
    kept = gradepassback.assignment_ref_id(canvas.url, made["Kept"].id)
    assert set(held.assignments) == {kept}
    assert {a for a, _ in held.scores} == {kept} and len(held.scores) == 2
    assert job.detail["counts"]["deleted"] == 9
    for name, why in (
        ("Deleted", "Deleted in Canvas"),
        ("Unpublished", "Unpublished in Canvas"),
        ("Unticked", "No longer marked post to SIS"),
    ):
        rows = GradePassbackItem.objects.filter(assignment_name=name)
        assert {r.status for r in rows} == {GpbStatus.DELETED} and rows.count() == 3
        assert all(r.reason.startswith(why) and r.action == "Delete" for r in rows)
    for data in inbound.events():
        assert_valid(data, "2.4")
    deleted_events = [
        d for d in inbound.events() if etree.fromstring(d).find(".//{*}SIF_EventObject").get("Action") == "Delete"
    ]
    assert len(deleted_events) == 9

    # A rerun sends nothing more.
    sent = len(zis.grade_write_backs)
    again = passback(conversion)
    assert len(zis.grade_write_backs) == sent and "deleted" not in again.detail["counts"]

    # Published and ticked again: the assignment is added anew, its scores with it.
    canvas.update_assignment(made["Unpublished"].id, workflow_state="published")
    passback(conversion)
    assert [(w.object_name, w.action) for w in zis.grade_write_backs[sent:]] == [
        ("GradingAssignment", "Add"),
        ("GradingAssignmentScore", "Add"),
        ("GradingAssignmentScore", "Add"),
    ]


@pytest.mark.parametrize("gradebook", [Gradebook.PTP, Gradebook.LEGACY])
def test_an_assignment_for_some_students_only_follows_the_gradebook(paused, gradebook):
    conversion, zis, canvas, _ = paused
    conversion.gradebook = gradebook
    conversion.save()
    course, (s1, s2, *_) = first_course(canvas)
    only = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Retake",
        points_possible=10,
        group="Tests",
        post_to_sis=True,
        due_at=DUE,
        only_visible_to_overrides=True,
        student_ids=[f"sis_user_id:{s1}"],
    )
    with CanvasClient(canvas.url, TOKEN) as client:
        listed = next(a for a in client.iter_assignments(course.id) if a.id == only.id)
        assert listed.only_visible_to_overrides
    canvas.grade(only.id, f"sis_user_id:{s1}", score=9)
    canvas.grade(only.id, f"sis_user_id:{s2}", score=5)  # a score Canvas keeps for a student not assigned
    passback(conversion)
    rules = gradepassback.GRADEBOOKS[gradebook]
    if gradebook == Gradebook.PTP:
        assert [(w.object_name, getattr(w.record, "score_points", None)) for w in zis.grade_write_backs] == [
            ("GradingAssignment", None),
            ("GradingAssignmentScore", 9),
        ]
        assert not GradePassbackItem.objects.filter(student_sis_id=s2).exists()
    else:
        assert zis.grade_write_backs == []
        assert item("Retake").status == GpbStatus.REFUSED and rules.partial_reason in item("Retake").reason


def test_the_gradebook_table_drives_checks_and_messages(paused):
    conversion, zis, canvas, _ = paused
    course, (s1, s2, s3, *_) = first_course(canvas)
    rules = gradepassback.GRADEBOOKS[Gradebook.PTP]
    a = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="x" * (rules.name_limit + 1),
        points_possible=10,
        group="Tests",
        post_to_sis=True,
        due_at=DUE,
    )
    b = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Lab",
        points_possible=10,
        group="Tests",
        post_to_sis=True,
        due_at=DUE,
    )
    canvas.grade(a.id, f"sis_user_id:{s1}", score=1)
    canvas.grade(b.id, f"sis_user_id:{s1}", score=None, excused=True)
    canvas.grade(b.id, f"sis_user_id:{s2}", score=7, late=True)
    canvas.grade(b.id, f"sis_user_id:{s3}", score=6, grade="D")
    passback(conversion)
    assert f"the gradebook takes {rules.name_limit}" in item("x" * (rules.name_limit + 1)).reason
    assert item("Lab", s1).status == GpbStatus.REFUSED and rules.exempt in item("Lab", s1).reason
    assert item("Lab", s2).status == GpbStatus.ACCEPTED and rules.missing_late in item("Lab", s2).reason
    letters = {w.record.score_letter for w in zis.grade_write_backs if w.object_name == "GradingAssignmentScore"}
    assert "D" in letters
    assert {g: r.partial for g, r in gradepassback.GRADEBOOKS.items()} == {
        Gradebook.PTP: "assigned",
        Gradebook.LEGACY: "refuse",
    }


def test_sent_items_are_read_back_confirmed_or_different(paused):
    conversion, zis, canvas, _ = paused
    zis.zone.grading_provider = True
    course, (s1, s2, *_) = first_course(canvas)
    lab = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Lab",
        points_possible=10,
        group="Tests",
        post_to_sis=True,
        due_at=DUE,
    )
    canvas.grade(lab.id, f"sis_user_id:{s1}", score=9)
    canvas.grade(lab.id, f"sis_user_id:{s2}", score=7.5)
    job = passback(conversion)
    assert {i.confirmation for i in GradePassbackItem.objects.all()} == {Confirmation.CONFIRMED}
    assert job.detail["confirmation"] == {"confirmed": 3, "different": 0, "unconfirmed": 0}
    assert "answers requests" in job.detail["plugin"]

    # A teacher changes the score in PowerTeacher: the next run reads it back as different.
    student = SifRecord.objects.get(object_name="StudentPersonal", local_id=s1).ref_id
    zis.zone.teacher_changes_score(gradepassback.assignment_ref_id(canvas.url, lab.id), student, 4)
    job = passback(conversion)
    changed = item("Lab", s1)
    assert changed.confirmation == Confirmation.DIFFERENT and "score_points 4 (sent 9)" in changed.confirmation_note
    assert job.detail["confirmation"] == {"confirmed": 2, "different": 1, "unconfirmed": 0}


def test_without_a_provider_for_the_grading_objects_items_stay_unconfirmed(paused):
    conversion, zis, canvas, _ = paused
    assert zis.zone.grading_provider is False
    course, (s1, *_) = first_course(canvas)
    lab = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Lab",
        points_possible=10,
        group="Tests",
        post_to_sis=True,
        due_at=DUE,
    )
    canvas.grade(lab.id, f"sis_user_id:{s1}", score=9)
    job = passback(conversion)
    assert job.detail["confirmation"] == {"confirmed": 0, "different": 0, "unconfirmed": 2}
    assert "no provider" in item("Lab").confirmation_note


def test_the_plug_in_is_checked_in_the_zone_not_only_ticked(paused):
    conversion, zis, canvas, _ = paused
    zis.zone.write_back_on = False
    course, (s1, *_) = first_course(canvas)
    canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Lab",
        points_possible=10,
        group="Tests",
        post_to_sis=True,
        due_at=DUE,
    )
    job = run(conversion, JobKind.GRADE_PASSBACK, gradepassback.run_grade_passback)
    assert job.state == JobState.FAILED and "no subscriber for GradingAssignment" in job.error
    assert zis.grade_write_backs == [] and not GradePassbackItem.objects.exists()


def test_the_course_page_and_the_teachers_report(paused, district_admin, other_admin, client):
    """The course page shows read-back counts, PowerSchool's categories beside Canvas's groups (PowerTeacher
    Pro), takes an audited category mapping from the district admin, and hands out the report as HTML and CSV."""
    from django.urls import reverse

    conversion, zis, canvas, _ = paused
    zis.zone.grading_provider = True
    course, (s1, *_) = first_course(canvas)
    ref = f"sis_course_id:{course.sis_course_id}"
    lab = canvas.add_assignment(ref, name="Lab", points_possible=10, group="Tests", post_to_sis=True, due_at=DUE)
    canvas.add_assignment(ref, name="=HYPERLINK(1)", points_possible=10, group="Projects", post_to_sis=True)
    canvas.grade(lab.id, f"sis_user_id:{s1}", score=9)
    passback(conversion)
    kwargs = {"slug": "alpha", "year": 2027, "course_id": course.id}

    client.force_login(district_admin)
    html = client.get(reverse("gpb_course", kwargs=kwargs)).content.decode()
    assert "2 confirmed" in html and "0 different" in html and "0 unconfirmed" in html
    assert "PowerSchool categories of the section (PowerTeacher Pro)" in html
    assert "Homework<br>Tests" in html and 'Projects <span class="badge bad">no category</span>' in html
    assert "<script>" not in html and "onclick" not in html.lower()  # strict CSP: no inline script or handler

    report = client.get(reverse("gpb_course_report", kwargs=kwargs)).content.decode()
    assert "set a due date in Canvas" in report and "Rename the group in Canvas" in report
    assert "Save mapping" not in report  # the teacher's copy is the report alone

    response = client.get(reverse("gpb_course_csv", kwargs=kwargs))
    rows = b"".join(response.streaming_content).decode().splitlines()
    assert rows[0].startswith("Assignment,Canvas assignment group,State in PowerSchool")
    assert any(r.startswith("'=HYPERLINK(1),Projects,Not in PowerSchool") for r in rows)
    assert any(r.startswith("Lab,Tests,In PowerSchool,Confirmed") and ",1,0," in r for r in rows)

    saved = client.post(reverse("gpb_category_override", kwargs=kwargs), {"group": "Projects", "category": "Homework"})
    assert saved.status_code == 302
    assert conversion.gpb_category_overrides.get().category_name == "Homework"
    assert conversion.audit_events.filter(action="gpb_category_override", actor=district_admin).exists()
    html = client.get(reverse("gpb_course", kwargs=kwargs)).content.decode()
    assert "“Projects” → “Homework”" in html and "no category" not in html

    client.force_login(other_admin)  # another district's admin sees nothing of it
    assert (
        client.post(reverse("gpb_category_override", kwargs=kwargs), {"group": "X", "category": "Y"}).status_code == 404
    )


def test_the_zones_acl_is_part_of_the_plug_in_check(paused, zis_profile):
    """A strict zone returns our SIF_AgentACL in the register ack: without publish_delete the run still sends, and
    says what the administrator must grant; without provide it sends nothing."""
    if zis_profile != "strict":
        pytest.skip("only the strict zone sends SIF_AgentACL")
    from conversion.services.zis import source_id
    from sifclient.messages import AgentAcl
    from sifclient.powerschool import PUBLISHED_OBJECTS, WRITE_BACK_OBJECTS

    conversion, zis, canvas, _ = paused
    course, (s1, *_) = first_course(canvas)
    canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Lab",
        points_possible=10,
        group="Tests",
        post_to_sis=True,
        due_at=DUE,
    )
    zis.zone.define_agent(
        source_id(conversion),
        AgentAcl(
            request=PUBLISHED_OBJECTS,
            provide=WRITE_BACK_OBJECTS,
            publish_add=WRITE_BACK_OBJECTS,
            publish_change=WRITE_BACK_OBJECTS,
        ),
    )
    job = passback(conversion)
    assert "does not let this agent publish_delete GradingAssignment" in job.detail["plugin"]
    assert len(zis.grade_write_backs) == 1
    lab = next(a for a in canvas.state.assignments.values() if a.name == "Lab")
    canvas.delete_assignment(lab.id)
    passback(conversion)  # the Delete waits for the right, and says so
    assert len(zis.grade_write_backs) == 1
    assert item("Lab").status == GpbStatus.ACCEPTED and "does not let this agent publish Delete" in item("Lab").reason

    zis.zone.define_agent(source_id(conversion), AgentAcl(request=PUBLISHED_OBJECTS))
    job = run(conversion, JobKind.GRADE_PASSBACK, gradepassback.run_grade_passback)
    assert job.state == JobState.FAILED and "provide GradingAssignment" in job.error
