"""SIS imports end to end: the api uploads, the simulator applies, the reads return the result."""

from __future__ import annotations

import io
import zipfile

import pytest

from canvas.client import CanvasClient, sis_ref
from canvas.csvfiles import (
    ChangeSisIdRow,
    CourseRow,
    EnrollmentRow,
    SectionRow,
    UserRow,
    build_zip,
    csv_bytes,
)
from canvas.errors import CanvasAuthenticationError, CanvasPermissionError, SisImportTimeoutError
from canvas.simulator import CanvasSimulator


def run_import(api, data, **params):
    started = api.create_sis_import("self", data, **params)
    assert started.workflow_state in ("created", "importing")
    return api.wait_for_sis_import("self", started.id, poll_interval=0.5)


def test_full_roster_import_then_reads_return_it(api, sim, roster_zip):
    seen = []
    started = api.create_sis_import("self", roster_zip(30))
    done = api.wait_for_sis_import("self", started.id, poll_interval=0.5, on_progress=seen.append)

    assert done.workflow_state == "imported", done.processing_warnings
    assert done.progress == 100
    assert done.counts["accounts"] == 2 and done.counts["terms"] == 1 and done.counts["users"] == 32
    assert done.counts["courses"] == 2 and done.counts["sections"] == 4 and done.counts["enrollments"] == 34
    assert seen[-1].workflow_state == "imported"
    assert [s.progress for s in seen] == sorted(s.progress for s in seen)

    users = {u.sis_user_id: u for u in api.iter_users(sim.root_account_id)}
    assert len(users) == 32
    assert users["PS00007"].login_id == "student7@district.example"
    assert users["PS00007"].sortable_name == "Student7, Ana"

    courses = {c.sis_course_id: c for c in api.iter_courses("self")}
    assert set(courses) == {"CRS0", "CRS1"}
    assert courses["CRS0"].workflow_state == "available" and courses["CRS1"].workflow_state == "unpublished"
    assert courses["CRS0"].sis_term_id == "2025-26"
    north = {c.sis_course_id for c in api.iter_courses(sis_ref("account", "SCH1"))}
    assert north == {"CRS0"}

    sections = {s.sis_section_id: s for s in api.iter_sections(sis_ref("course", "CRS0"))}
    assert set(sections) == {"SEC0", "SEC1"}
    in_sec0 = list(api.iter_enrollments(section_id=sections["SEC0"].id))
    assert {e.sis_user_id for e in in_sec0 if e.type == "StudentEnrollment"} == {
        f"PS{i:05d}" for i in range(30) if i % 4 == 0
    }
    assert {e.sis_user_id for e in in_sec0 if e.type == "TeacherEnrollment"} == {"PST0"}
    course_enrollments = list(api.iter_enrollments(course_id=courses["CRS1"].id))
    assert len(course_enrollments) == 7 + 7 + 2  # students of SEC2 and SEC3, and their teacher in each
    assert api.stats.retries == 0


def test_pagination_follows_link_headers_page_by_page(sim, roster_zip, token):
    sim.seed_sis_import(roster_zip(30))
    with CanvasClient(sim.url, token, per_page=7, sleep=lambda s: None) as api:
        users = list(api.iter_users("self"))
        assert len(users) == 32 and len({u.id for u in users}) == 32
        assert api.stats.requests == 5  # ceil(32 / 7) pages, each found through rel="next"


def test_change_sis_id_remaps_every_user_and_back(api, sim, roster_zip):
    sim.seed_sis_import(roster_zip(30))
    before = {u.sis_user_id: u.id for u in api.iter_users("self")}
    to_dcid = [ChangeSisIdRow(old_id=sis, new_id=f"DCID{canvas_id}", type="user") for sis, canvas_id in before.items()]
    # A change_sis_id file is processed first, so a users file in the same zip already uses new ids.
    users_again = [
        UserRow(
            user_id=f"DCID{canvas_id}",
            login_id=(f"student{int(sis[2:])}@district.example" if not sis.startswith("PST") else f"teacher{sis[3:]}"),
            first_name="Ana",
            last_name="Renamed",
        )
        for sis, canvas_id in before.items()
    ]
    done = run_import(api, build_zip({"z_users.csv": users_again, "a_change.csv": to_dcid}))
    assert done.workflow_state == "imported", done.processing_warnings
    after = {u.sis_user_id: u for u in api.iter_users("self")}
    assert {u.id for u in after.values()} == set(before.values())  # same Canvas users, re-keyed
    assert set(after) == {f"DCID{i}" for i in before.values()}
    assert all(u.name == "Ana Renamed" for u in after.values())
    enrolled = {e.sis_user_id for e in api.iter_enrollments(course_id=sis_ref("course", "CRS0"))}
    assert enrolled and all(s.startswith("DCID") for s in enrolled)

    back = [ChangeSisIdRow(old_id=f"DCID{canvas_id}", new_id=sis, type="user") for sis, canvas_id in before.items()]
    done = run_import(api, csv_bytes("change_sis_id", back))
    assert done.workflow_state == "imported"
    assert {u.sis_user_id: u.id for u in api.iter_users("self")} == before


def test_change_sis_id_conflicts_come_back_in_canvas_words(api, sim, roster_zip):
    sim.seed_sis_import(roster_zip(4))
    rows = [
        ChangeSisIdRow(old_id="PS00000", new_id="NEW1", type="user"),
        ChangeSisIdRow(old_id="PS00001", new_id="NEW1", type="user"),  # duplicate new_id
        ChangeSisIdRow(old_id="GONE", new_id="NEW2", type="user"),
        ChangeSisIdRow(old_id="CRS0", new_id="CRS0-2025", type="course"),
    ]
    done = run_import(api, csv_bytes("change_sis_id", rows))
    assert done.workflow_state == "imported_with_messages"
    messages = [e.message for e in api.iter_sis_import_errors("self", done.id)]
    assert messages == [
        "A new_id, 'NEW1', referenced an existing user and the user with sis_user_id 'PS00001' was not updated",
        "An old_id, 'GONE', referenced a non-existent user and was not changed.",
    ]
    assert done.counts["change_sis_ids"] == 2
    assert [c.sis_course_id for c in api.iter_courses("self") if c.name == "Algebra I"] == ["CRS0-2025"]


def test_failed_import_errors_come_back_row_by_row(api, sim, roster_zip):
    sim.seed_sis_import(roster_zip(4))
    bad_enrollments = csv_bytes(
        "enrollments",
        [
            EnrollmentRow(section_id="SEC0", user_id="PS00000", role="student"),
            EnrollmentRow(section_id="SEC0", user_id="NOBODY", role="student"),
            EnrollmentRow(course_id="CRS0", section_id="NOSEC", user_id="PS00001", role="student"),
            EnrollmentRow(course_id="CRS0", user_id="PS00002", role="principal"),
        ],
    )
    bad_users = b"user_id,login_id,status\r\nX1,x1,active\r\nX2,,active\r\nX3,x3,archived\r\n"
    no_status = b"user_id,login_id\r\nX4,x4\r\n"
    unknown = b"student_number,grade\r\n1,9\r\n"
    done = run_import(
        api,
        build_zip(
            {
                "enrollments.csv": bad_enrollments,
                "users.csv": bad_users,
                "users2.csv": no_status,
                "grades.csv": unknown,
            }
        ),
    )
    assert done.workflow_state == "failed_with_messages"
    assert done.processing_errors == [("grades.csv", "Couldn't find Canvas CSV import headers")]
    errors = list(api.iter_sis_import_errors("self", done.id))
    by_row = {(e.file, e.row): e.message for e in errors if e.row is not None}
    assert by_row == {
        ("users.csv", 3): "No login_id given for user X2",
        ("users.csv", 4): 'Improper status "archived" for user X3, skipping',
        ("users2.csv", 2): 'Improper status "" for user X4, skipping',
        ("enrollments.csv", 3): "User not found for enrollment (User ID: NOBODY, Course ID: , Section ID: SEC0)",
        ("enrollments.csv", 4): "An enrollment referenced a non-existent section NOSEC",
        ("enrollments.csv", 5): 'Improper role "principal" for an enrollment',
    }
    assert all(e.row_info for e in errors if e.row is not None)
    assert [e.message for e in api.iter_sis_import_errors("self", done.id, failures_only=True)] == [
        "Couldn't find Canvas CSV import headers"
    ]
    assert done.counts["users"] == 1 and done.counts["enrollments"] == 1


def test_diffing_applies_only_changed_rows_and_drops_missing_ones(api, sim, roster_zip):
    first = run_import(api, roster_zip(8), diffing_data_set_identifier="district-42")
    assert first.workflow_state == "imported" and first.diffed_against_import_id is None
    # Same data again, minus one student's enrollment: only the drop is applied.
    base = roster_zip(8)
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    lines = files["01_enrollments.csv"].decode().split("\r\n")
    dropped = [line for line in lines if ",PS00003," in line]
    files["01_enrollments.csv"] = "\r\n".join(line for line in lines if line not in dropped).encode()
    second = run_import(
        api, build_zip(files), diffing_data_set_identifier="district-42", diffing_drop_status="inactive"
    )
    assert second.diffed_against_import_id == first.id
    assert second.raw["diffed_against_import_id"] is None  # as Canvas: the id is under data (sis_batch.rb#as_json)
    assert second.raw["data"]["diffed_against_sis_batch_id"] == first.id
    assert second.counts["enrollments"] == 1 and second.counts["users"] == 0
    states = {
        e.sis_user_id: e.enrollment_state
        for e in api.iter_enrollments(course_id=sis_ref("course", "CRS1"), states=["active", "inactive"])
    }
    assert states["PS00003"] == "inactive" and states["PS00007"] == "active"


def test_batch_mode_deletes_what_the_term_no_longer_holds_within_the_threshold(api, sim, roster_zip):
    # canvas-lms app/models/sis_batch.rb#remove_previous_imports, #detect_changes, #restore_states_for_batch.
    sim.seed_sis_import(roster_zip(8))
    only_crs0 = build_zip(
        {
            "courses.csv": [
                CourseRow(
                    course_id="CRS0",
                    short_name="ALG1",
                    long_name="Algebra I",
                    account_id="SCH1",
                    term_id="2025-26",
                    status="published",
                )
            ],
            "sections.csv": [SectionRow(section_id=f"SEC{s}", course_id="CRS0", name=f"P{s}") for s in (0, 1)],
        }
    )
    term = sis_ref("term", "2025-26")
    refused = run_import(api, only_crs0, batch_mode=True, batch_mode_term_id=term, change_threshold=10)
    # Over the threshold the batch is aborted (abort_batch) with a warning, and nothing is deleted.
    assert refused.workflow_state == "aborted" and refused.progress == 100
    assert refused.processing_warnings == [("", "1 courses would be deleted and exceeds the set threshold of 10%")]
    assert "batch_courses_deleted" not in refused.counts
    assert {c.sis_course_id for c in api.iter_courses("self")} == {"CRS0", "CRS1"}

    done = run_import(api, only_crs0, batch_mode=True, batch_mode_term_id=term)
    assert done.workflow_state == "imported"
    assert done.counts["batch_courses_deleted"] == 1 and done.counts["batch_sections_deleted"] == 2
    assert {c.sis_course_id for c in api.iter_courses("self")} == {"CRS0"}

    progress = api.restore_states("self", done.id, batch_mode=True)
    assert progress.workflow_state in ("queued", "running", "completed")
    sim.wait_for_imports(10)
    assert {c.sis_course_id for c in api.iter_courses("self")} == {"CRS0", "CRS1"}
    # batch_mode restores only what the cleanup deleted: partially_restored.
    assert api.get_sis_import("self", done.id).workflow_state == "partially_restored"


def test_a_restore_s_progress_is_read_back_by_id(api, sim, roster_zip):
    # app/models/sis_batch.rb#restore_states_later: a Progress (tag sis_batch_state_restore) runs the restore;
    # app/models/progress.rb: queued -> running -> completed (completion 100), read with GET progress/:id.
    done = sim.seed_sis_import(roster_zip(4))
    sim.pause_imports()  # the restore job waits behind the gate: its Progress stays queued
    answer = api.restore_states("self", done.id)
    queued = api.get_progress(answer.id)
    assert (queued.id, queued.workflow_state, queued.is_pending) == (answer.id, "queued", True)
    assert queued.raw["tag"] == "sis_batch_state_restore" and queued.raw["context_id"] == done.id
    sim.resume_imports()
    sim.wait_for_imports(10)
    finished = api.get_progress(answer.id)
    assert (finished.workflow_state, finished.completion, finished.is_pending) == ("completed", 100.0, False)
    assert api.get_sis_import("self", done.id).workflow_state == "restored"


def test_abort_stops_a_waiting_import_and_polling_times_out_cleanly(api, sim, roster_zip):
    sim.pause_imports()
    started = api.create_sis_import("self", roster_zip(4))
    with pytest.raises(SisImportTimeoutError) as waited:
        api.wait_for_sis_import("self", started.id, poll_interval=1.0, timeout=3.0)
    assert waited.value.sis_import.workflow_state == "created"
    aborted = api.abort_sis_import("self", started.id)
    sim.resume_imports()
    assert aborted.workflow_state == "aborted"
    assert api.wait_for_sis_import("self", started.id).workflow_state == "aborted"
    assert list(api.iter_users("self")) == []


def test_skip_deletes_ignores_deleted_rows(api, sim, roster_zip):
    sim.seed_sis_import(roster_zip(4))
    rows = [UserRow(user_id="PS00000", login_id="student0@district.example", status="deleted")]
    done = run_import(api, csv_bytes("users", rows), skip_deletes=True)
    assert done.counts["users"] == 0
    assert "PS00000" in {u.sis_user_id for u in api.iter_users("self")}
    done = run_import(api, csv_bytes("users", rows))
    assert "PS00000" not in {u.sis_user_id for u in api.iter_users("self")}
    assert "PS00000" in {u.sis_user_id for u in api.iter_users("self", include_deleted=True)}


def test_bad_token_and_missing_permission_are_named_without_the_token(sim):
    with CanvasClient(sim.url, "wrong-token-value", sleep=lambda s: None) as api:
        with pytest.raises(CanvasAuthenticationError) as bad:
            list(api.iter_users("self"))
    assert "401" in str(bad.value) and "wrong-token-value" not in str(bad.value)


def test_token_without_the_import_permission_gets_a_named_permission_error(roster_zip, token):
    with CanvasSimulator(token=token, tokens={"roster-reader-token": {"read_roster"}}) as restricted:
        with CanvasClient(restricted.url, "roster-reader-token", sleep=lambda s: None) as api:
            assert list(api.iter_users("self")) == []
            with pytest.raises(CanvasPermissionError) as denied:
                api.create_sis_import("self", roster_zip(2))
    assert denied.value.permission == "import_sis"
    assert "import_sis" in str(denied.value) and "roster-reader-token" not in str(denied.value)
