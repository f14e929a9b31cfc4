"""The Canvas simulator against canvas-lms's own source, over HTTP with Canvas-shaped JSON.

Each test names the canvas-lms file (and method) whose behaviour it checks. Raw httpx requests are used where
the exact JSON matters, so nothing of our own client stands between the simulator and the assertion.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from canvas.csvfiles import CourseRow, EnrollmentRow, SectionRow, TermRow, UserRow, build_zip, csv_bytes
from canvas.simulator import CanvasSimulator, FakeClock
from tests.canvas.conftest import TOKEN


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.url + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as c:
        yield c


def post_import(http, data: bytes, name: str = "upload.zip", **params) -> dict:
    response = http.post(
        "/accounts/self/sis_imports",
        files={"attachment": (name, data, "application/zip")},
        data={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()},
    )
    assert response.status_code == 200, response.text
    return response.json()


def finished(sim, http, import_id: int) -> dict:
    assert sim.wait_for_imports(60)
    return http.get(f"/accounts/self/sis_imports/{import_id}").json()


def imported(sim, http, data: bytes, **params) -> dict:
    return finished(sim, http, post_import(http, data, **params)["id"])


def enrollment_states(http, course: str) -> dict[str, str]:
    got = http.get(
        f"/courses/{course}/enrollments",
        params={"state[]": ["active", "completed", "deleted", "inactive"], "per_page": 100},
    )
    assert got.status_code == 200, got.text
    return {e["sis_user_id"]: e["enrollment_state"] for e in got.json()}


# --- 1. csv_attachments: lib/api/v1/sis_import.rb#sis_import_json, lib/sis/csv/import_refactored.rb#prepare --


def test_csv_attachments_name_the_csvs_inside_the_zip_and_are_absent_while_queued(sim, http, roster_zip):
    sim.pause_imports()
    queued = post_import(http, roster_zip(4), name="sync-job17.zip")
    # SisBatch.create_with_attachment leaves the batch `created`; nothing has unzipped it yet, so
    # downloadable_attachments is empty and sis_import_json leaves csv_attachments out.
    assert queued["workflow_state"] == "created"
    assert "csv_attachments" not in queued
    assert "csv_attachments" not in http.get(f"/accounts/self/sis_imports/{queued['id']}").json()
    sim.resume_imports()
    done = finished(sim, http, queued["id"])
    names = [a["display_name"] for a in done["csv_attachments"]]
    # One attachment per CSV of the zip (create_batch_attachment: File.basename), never the zip's own name.
    # Our writers leave out the columns no row fills (canvas/csvfiles.py), so the users file has no password
    # column and keeps its name (the _filtered copy is for a password header: test below).
    assert sorted(names) == [
        "01_enrollments.csv",
        "02_people.csv",
        "03_sections.csv",
        "04_courses.csv",
        "05_terms.csv",
        "06_accounts.csv",
    ]
    assert all("sync-job17" not in (a["display_name"] + a["filename"]) for a in done["csv_attachments"])
    assert {a["content-type"] for a in done["csv_attachments"]} == {"text/csv"}
    assert done["data"]["downloadable_attachment_ids"] == [a["id"] for a in done["csv_attachments"]]


def test_an_import_caught_initializing_lists_no_attachments(sim, http, roster_zip):
    sim.hold_initializing = True  # as if read during SisBatch.create_with_attachment
    held = post_import(http, roster_zip(2))
    assert held["workflow_state"] == "initializing" and "csv_attachments" not in held
    listed = http.get("/accounts/self/sis_imports").json()["sis_imports"]
    assert [(i["id"], i["workflow_state"]) for i in listed] == [(held["id"], "initializing")]
    sim.release_initializing()
    assert finished(sim, http, held["id"])["workflow_state"] == "imported"


def test_a_users_file_with_passwords_is_offered_filtered_and_a_single_csv_is_the_batch_upload(sim, http):
    with_passwords = b"user_id,login_id,password,status\r\nU1,u1,secret,active\r\n"
    done = imported(sim, http, build_zip({"people.csv": with_passwords}))
    # import_refactored.rb#process_file / #create_filtered_csv (HEADERS_TO_EXCLUDE_FOR_DOWNLOAD)
    [attachment] = done["csv_attachments"]
    assert attachment["display_name"] == "people_filtered.csv"
    single = post_import(http, b"user_id,login_id,status\r\nU2,u2,active\r\n", name="people.csv")
    done = finished(sim, http, single["id"])
    # A lone CSV is the batch's own attachment, whose display name create_with_attachment set.
    assert [a["display_name"] for a in done["csv_attachments"]] == [f"sis_upload_{single['id']}.zip"]
    assert [a["filename"] for a in done["csv_attachments"]] == ["people.csv"]


# --- 2. states and JSON: app/models/sis_batch.rb#as_json, #statistics, #populate_old_warnings_and_errors ----


def test_the_sis_import_json_has_canvas_keys_singular_batches_every_count_and_statistics(sim, http, roster_zip):
    done = imported(sim, http, roster_zip(4))
    for key in (
        "id",
        "created_at",
        "started_at",
        "ended_at",
        "updated_at",
        "progress",
        "workflow_state",
        "data",
        "batch_mode",
        "batch_mode_term_id",
        "multi_term_batch_mode",
        "override_sis_stickiness",
        "add_sis_stickiness",
        "update_sis_id_if_login_claimed",
        "clear_sis_stickiness",
        "diffing_data_set_identifier",
        "diffing_remaster",
        "diffed_against_import_id",
        "diffing_drop_status",
        "diffing_user_remove_status",
        "skip_deletes",
        "change_threshold",
        "diff_row_count_threshold",
        "user",
    ):
        assert key in done, key
    assert "processing_warnings" not in done and "processing_errors" not in done  # only when present
    assert "diffing_threshold_exceeded" not in done  # only with a data set identifier
    assert "errors_attachment" not in done  # only when the batch has messages
    data = done["data"]
    # import_refactored.rb#process: importer names, singular, in IMPORTERS order; a count for every importer.
    assert data["supplied_batches"] == ["account", "term", "course", "section", "user", "enrollment"]
    assert set(data["counts"]) == {
        "change_sis_ids",
        "accounts",
        "terms",
        "abstract_courses",
        "courses",
        "sections",
        "xlists",
        "users",
        "enrollments",
        "admins",
        "group_categories",
        "groups",
        "group_memberships",
        "grade_publishing_results",
        "user_observers",
        "error_count",
        "warning_count",
    }
    stats = data["statistics"]
    assert stats["Course"] == {"created": 2, "restored": 0, "concluded": 0, "deleted": 0}
    assert stats["Enrollment"]["created"] == 8 and stats["Enrollment"]["deactivated"] == 0
    assert stats["Pseudonym"] == {"created": 6, "restored": 0, "deleted": 0}  # one login per new user
    assert stats["total_state_changes"] == 2 + 1 + 2 + 4 + 6 + 8


def test_warnings_are_capped_at_24_and_an_errors_attachment_is_written(sim, http):
    rows = "\r\n".join(f"E{i},nobody{i},student,active" for i in range(30))
    bad = f"course_id,user_id,role,status\r\n{rows}\r\n".encode()
    done = imported(sim, http, build_zip({"enrollments.csv": bad}))
    assert done["workflow_state"] == "imported_with_messages"
    warnings = done["processing_warnings"]
    assert len(warnings) == 25
    assert warnings[-1] == [
        "and 6 more warnings that were not included",
        "Download the error file to see all warnings.",
    ]
    assert done["data"]["counts"]["warning_count"] == 30
    assert done["errors_attachment"]["display_name"] == f"sis_errors_attachment_{done['id']}.csv"


def test_list_filters_by_workflow_state_and_pages_without_a_last_link(sim, http, roster_zip):
    for _ in range(3):
        imported(sim, http, roster_zip(2))
    sim.pause_imports()
    waiting = post_import(http, roster_zip(2))
    page = http.get("/accounts/self/sis_imports", params={"per_page": 2})
    # SisImportsApiController#index paginates with total_entries: nil: no rel="last".
    assert 'rel="next"' in page.headers["Link"] and 'rel="last"' not in page.headers["Link"]
    assert [i["id"] for i in page.json()["sis_imports"]][0] == waiting["id"]  # newest first
    created = http.get("/accounts/self/sis_imports", params={"workflow_state[]": "created"}).json()["sis_imports"]
    assert [i["id"] for i in created] == [waiting["id"]]
    # #importing lists SisBatch.importing (importing, cleanup_batch) only: a queued batch is not there.
    assert http.get("/accounts/self/sis_imports/importing").json() == {"sis_imports": []}
    sim.resume_imports()


# --- 3. cascades: lib/sis/section_importer.rb, app/models/course.rb#update_enrolled_users --------------------


def test_deleting_a_section_deletes_its_enrollments(sim, http, roster_zip):
    imported(sim, http, roster_zip(8))
    # No name is needed to delete an existing section (section_importer.rb#add_section).
    done = imported(sim, http, b"section_id,course_id,name,status\r\nSEC0,CRS0,,deleted\r\n")
    assert done["workflow_state"] == "imported"
    states = enrollment_states(http, "sis_course_id:CRS0")
    in_sec0 = {f"PS{i:05d}" for i in range(8) if i % 4 == 0}
    assert all(states[u] == "deleted" for u in in_sec0)
    assert states["PS00001"] == "active"  # SEC1 untouched
    assert done["data"]["statistics"]["Enrollment"]["deleted"] == len(in_sec0) + 1  # and the teacher


def test_deleting_a_course_deletes_and_concluding_it_concludes_its_enrollments(sim, http, roster_zip):
    imported(sim, http, roster_zip(8))
    row = CourseRow(
        course_id="CRS1",
        short_name="BIO",
        long_name="Biology",
        account_id="SCH2",
        term_id="2025-26",
        status="completed",
    )
    done = imported(sim, http, csv_bytes("courses", [row]))
    assert set(enrollment_states(http, "sis_course_id:CRS1").values()) == {"completed"}
    assert done["data"]["statistics"]["Enrollment"]["concluded"] == 6
    # "active" reopens a concluded course as available (course_importer.rb#add_course); enrollments stay concluded.
    reopened = CourseRow(
        course_id="CRS1", short_name="BIO", long_name="Biology", account_id="SCH2", term_id="2025-26", status="active"
    )
    imported(sim, http, csv_bytes("courses", [reopened]))
    assert http.get("/courses/sis_course_id:CRS1").json()["workflow_state"] == "available"
    deleted = CourseRow(
        course_id="CRS0",
        short_name="ALG1",
        long_name="Algebra I",
        account_id="SCH1",
        term_id="2025-26",
        status="deleted",
    )
    imported(sim, http, csv_bytes("courses", [deleted]))
    assert sim.state.by_sis("course", "CRS0").workflow_state == "deleted"
    course_id = sim.state.by_sis("course", "CRS0").id
    assert {e.workflow_state for e in sim.state.course_enrollments(course_id)} == {"deleted"}


def test_moving_a_section_to_another_course_moves_its_enrollments(sim, http, roster_zip):
    imported(sim, http, roster_zip(8))
    imported(sim, http, csv_bytes("sections", [SectionRow(section_id="SEC2", course_id="CRS0", name="Period 2")]))
    crs0 = enrollment_states(http, "sis_course_id:CRS0")
    crs1 = enrollment_states(http, "sis_course_id:CRS1")
    moved = {f"PS{i:05d}" for i in range(8) if i % 4 == 2}
    assert moved <= set(crs0) and not moved & set(crs1)
    enrollments = http.get("/sections/sis_section_id:SEC2/enrollments").json()
    assert {e["course_id"] for e in enrollments} == {http.get("/courses/sis_course_id:CRS0").json()["id"]}


# --- 4. diffing: app/models/sis_batch.rb#generate_diff, lib/sis/csv/diff_generator.rb -----------------------


def users_csv(n: int, *, extra_column: bool = False) -> bytes:
    if extra_column:
        rows = [
            UserRow(user_id=f"U{i}", login_id=f"u{i}", first_name="A", last_name=f"B{i}", email=f"u{i}@x.example")
            for i in range(n)
        ]
        return csv_bytes("users", rows, columns=["user_id", "login_id", "first_name", "last_name", "email", "status"])
    rows = [UserRow(user_id=f"U{i}", login_id=f"u{i}", first_name="A", last_name=f"B{i}") for i in range(n)]
    return csv_bytes("users", rows, columns=["user_id", "login_id", "first_name", "last_name", "status"])


def test_a_changed_header_imports_the_whole_file_with_a_warning(sim, http):
    imported(sim, http, build_zip({"users.csv": users_csv(10)}), diffing_data_set_identifier="d1")
    done = imported(
        sim, http, build_zip({"users.csv": users_csv(9, extra_column=True)}), diffing_data_set_identifier="d1"
    )
    assert done["processing_warnings"] == [
        ["users.csv", "Couldn't generate diff: CSV headers do not match, cannot diff"]
    ]
    assert done["data"]["counts"]["users"] == 9  # the whole file, and nothing of it dropped
    assert sim.state.by_sis("user", "U9").workflow_state == "registered"


def test_change_threshold_with_diffing_is_measured_on_the_whole_upload(sim, http):
    first = imported(
        sim, http, build_zip({"users.csv": users_csv(50)}), diffing_data_set_identifier="d2", change_threshold=10
    )
    assert first["diffing_threshold_exceeded"] is False
    smaller = imported(
        sim, http, build_zip({"users.csv": users_csv(20)}), diffing_data_set_identifier="d2", change_threshold=10
    )
    assert smaller["diffing_threshold_exceeded"] is True
    assert smaller["processing_warnings"] == [
        ["", "Diffing not performed because file size difference exceeded threshold"]
    ]
    assert smaller["data"]["counts"]["users"] == 20  # imported whole: the 30 missing users are not dropped
    assert sim.state.by_sis("user", "U40").workflow_state == "registered"
    # The baseline stays the first import (no diff generated since): the next one diffs against it.
    third = imported(
        sim, http, build_zip({"users.csv": users_csv(49)}), diffing_data_set_identifier="d2", change_threshold=10
    )
    assert third["data"]["diffed_against_sis_batch_id"] == first["id"]
    assert third["data"]["counts"]["users"] == 1  # U49 dropped
    assert sim.state.by_sis("user", "U49").workflow_state == "deleted"


def test_diff_row_count_threshold_and_two_files_of_one_type(sim, http):
    imported(sim, http, build_zip({"users.csv": users_csv(10)}), diffing_data_set_identifier="d3")
    over = imported(
        sim, http, build_zip({"users.csv": users_csv(4)}), diffing_data_set_identifier="d3", diff_row_count_threshold=3
    )
    assert over["diff_row_count_threshold"] == 3 and over["diffing_threshold_exceeded"] is True
    assert over["processing_warnings"] == [
        ["", "Diffing not performed because difference row count exceeded threshold"]
    ]
    assert over["data"]["counts"]["users"] == 4
    two = imported(
        sim, http, build_zip({"a.csv": users_csv(10), "b.csv": users_csv(2)}), diffing_data_set_identifier="d3"
    )
    assert two["processing_warnings"] == [
        ["a.csv", "Can't perform diffing against more than one file of the same type"]
    ]
    assert two["data"]["counts"]["users"] == 12


# --- 5. batch mode: sis_imports_api_controller.rb#create, sis_batch.rb#remove_previous_imports ---------------


def test_batch_mode_without_a_known_term_is_refused_before_anything_is_created(sim, http, roster_zip):
    no_term = http.post(
        "/accounts/self/sis_imports",
        files={"attachment": ("a.zip", roster_zip(2), "application/zip")},
        data={"batch_mode": "true"},
    )
    assert no_term.status_code == 400
    assert no_term.json() == {"message": "Batch mode specified, but the given batch_mode_term_id cannot be found."}
    unknown = http.post(
        "/accounts/self/sis_imports",
        files={"attachment": ("a.zip", roster_zip(2), "application/zip")},
        data={"batch_mode": "true", "batch_mode_term_id": "sis_term_id:NOPE"},
    )
    assert unknown.status_code == 404  # api_find raises RecordNotFound
    assert http.get("/accounts/self/sis_imports").json() == {"sis_imports": []}


def test_batch_mode_with_diffing_ignores_diffing(sim, http, roster_zip):
    imported(sim, http, roster_zip(2))
    done = imported(
        sim,
        http,
        roster_zip(2),
        batch_mode=True,
        batch_mode_term_id="sis_term_id:2025-26",
        diffing_data_set_identifier="d4",
    )
    assert done["batch_mode"] is True and done["diffing_data_set_identifier"] is None
    assert done["batch_mode_term_id"] == sim.state.by_sis("term", "2025-26").id
    assert done["workflow_state"] == "imported"


def test_invalid_drop_status_is_refused(sim, http, roster_zip):
    refused = http.post(
        "/accounts/self/sis_imports",
        files={"attachment": ("a.zip", roster_zip(2), "application/zip")},
        data={"diffing_data_set_identifier": "x", "diffing_drop_status": "gone"},
    )
    assert refused.status_code == 400 and refused.json() == {"message": "Invalid diffing_drop_status"}


# --- 6. restore_states and abort: sis_imports_api_controller.rb#restore_states/#abort, sis_batch.rb ----------


def test_restore_states_runs_behind_a_progress_and_undelete_only_partially_restores(sim, http, roster_zip):
    imported(sim, http, roster_zip(8))
    sim.pause_imports()
    done_id = post_import(http, b"section_id,course_id,name,status\r\nSEC0,CRS0,,deleted\r\n", name="s.csv")["id"]
    sim.resume_imports()
    finished(sim, http, done_id)
    sim.pause_imports()  # the restore job waits, so the Progress is seen queued
    progress = http.put(f"/accounts/self/sis_imports/{done_id}/restore_states", data={"undelete_only": "true"}).json()
    assert progress["workflow_state"] == "queued" and progress["tag"] == "sis_batch_state_restore"
    assert progress["context_type"] == "SisBatch" and progress["context_id"] == done_id
    sim.resume_imports()
    assert sim.wait_for_imports(10)
    assert http.get(f"/progress/{progress['id']}").json()["workflow_state"] == "completed"
    restored = http.get(f"/accounts/self/sis_imports/{done_id}").json()
    assert restored["workflow_state"] == "partially_restored"
    assert restored["data"]["statistics"]["CourseSection"]["restored"] == 1
    assert enrollment_states(http, "sis_course_id:CRS0")["PS00000"] == "active"
    both = http.put(
        f"/accounts/self/sis_imports/{done_id}/restore_states",
        data={"undelete_only": "true", "unconclude_only": "true"},
    )
    assert both.status_code == 400 and both.json() == "cannot set both undelete_only and unconclude_only"


def test_restore_states_needs_manage_sis(roster_zip):
    with CanvasSimulator(token=TOKEN, tokens={"importer": {"import_sis"}}) as sim:
        record = sim.seed_sis_import(roster_zip(2))
        with httpx.Client(base_url=sim.url + "/api/v1", headers={"Authorization": "Bearer importer"}) as http:
            assert http.get(f"/accounts/self/sis_imports/{record.id}").status_code == 200
            assert http.put(f"/accounts/self/sis_imports/{record.id}/restore_states").status_code == 403


def test_aborting_a_finished_import_is_not_found_and_abort_all_pending(sim, http, roster_zip):
    done = imported(sim, http, roster_zip(2))
    assert http.put(f"/accounts/self/sis_imports/{done['id']}/abort").status_code == 404
    sim.pause_imports()
    a = post_import(http, roster_zip(2))
    b = post_import(http, roster_zip(2))
    assert http.put("/accounts/self/sis_imports/abort_all_pending").json() == {"aborted": True}
    sim.resume_imports()
    for pending in (a, b):
        after = finished(sim, http, pending["id"])
        assert (after["workflow_state"], after["progress"]) == ("aborted", 100)


# --- 7. throttling: app/middleware/request_throttle.rb ---------------------------------------------------------


def test_one_request_at_a_time_is_never_throttled_and_pays_its_real_cost(sim, http, roster_zip):
    imported(sim, http, roster_zip(30))
    remaining = []
    for _ in range(120):  # 120 x 50 up front would overflow 600 many times over without the refunds
        response = http.get("/accounts/self/users", params={"per_page": 100})
        assert response.status_code == 200
        remaining.append(float(response.headers["X-Rate-Limit-Remaining"]))
        assert float(response.headers["X-Request-Cost"]) < 5  # CPU seconds, not a flat 50
    assert sim.throttled_count == 0
    assert min(remaining) > 500  # the up-front 50 is refunded each time


def test_many_requests_in_flight_fill_the_bucket_and_get_403_rate_limit_exceeded(token):
    clock = FakeClock()  # no leaking while the requests hang
    with CanvasSimulator(token=token, clock=clock) as sim:
        sim.inject_faults(hang_seconds=3.0, count=11)
        results: list[httpx.Response] = []

        def call() -> None:
            with httpx.Client(timeout=10) as c:
                results.append(c.get(f"{sim.url}/api/v1/accounts/self", headers={"Authorization": f"Bearer {token}"}))

        threads = [threading.Thread(target=call) for _ in range(11)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while sim.faults.pending() and time.monotonic() < deadline:
            time.sleep(0.01)
        # 11 requests in flight hold 11 x 50; the 12th brings the bucket to 600, the high water mark
        # (LeakyBucket#full?: count >= hwm), and is refused.
        refused = httpx.get(f"{sim.url}/api/v1/accounts/self", headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403
        assert refused.text == "403 Forbidden (Rate Limit Exceeded)\n"
        assert "X-Request-Cost" not in refused.headers
        sim.faults.released.set()
        for thread in threads:
            thread.join()
        assert all(r.status_code == 200 for r in results)
        # Once they are done the up-front charges are refunded and requests pass again.
        assert (
            httpx.get(f"{sim.url}/api/v1/accounts/self", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )


# --- 8. endpoints a client commonly calls ----------------------------------------------------------------------


def test_objects_addressed_by_sis_id_logins_and_course_users(sim, http, roster_zip):
    imported(sim, http, roster_zip(4))
    account = http.get("/accounts/self").json()
    assert account["id"] == sim.root_account_id and account["root_account_id"] is None
    assert http.get("/accounts/sis_account_id:SCH1").json()["parent_account_id"] == sim.root_account_id
    user = http.get("/users/sis_user_id:PS00001").json()
    assert user["login_id"] == "student1@district.example"
    [login] = http.get(f"/users/{user['id']}/logins").json()
    assert login["unique_id"] == "student1@district.example" and login["sis_user_id"] == "PS00001"
    assert http.get("/courses/sis_course_id:CRS0").json()["course_code"] == "ALG1"
    assert http.get("/sections/sis_section_id:SEC1").json()["sis_course_id"] == "CRS0"
    users = http.get("/courses/sis_course_id:CRS0/users", params={"enrollment_type[]": "student"}).json()
    assert {u["sis_user_id"] for u in users} == {"PS00000", "PS00001"}
    assert http.get("/users/sis_user_id:NOPE").status_code == 404


# --- 9. other importer behaviour: lib/sis/*_importer.rb ---------------------------------------------------------


def test_a_term_file_and_a_user_status_change(sim, http):
    done = imported(sim, http, csv_bytes("terms", [TermRow(term_id="T1", name="Fall")]))
    assert done["data"]["counts"]["terms"] == 1
    imported(sim, http, csv_bytes("users", [UserRow(user_id="U1", login_id="u1")]))
    imported(sim, http, csv_bytes("users", [UserRow(user_id="U1", login_id="u1", status="suspended")]))
    [login] = http.get("/users/sis_user_id:U1/logins").json()
    assert login["workflow_state"] == "suspended"


# --- 2b. importing and cleanup_batch seen from outside: sis_batch.rb, SisImportsApiController#importing ----------


def test_a_running_import_is_listed_as_importing_and_can_be_aborted(sim, http, roster_zip):
    sim.hold_imports_at("importing")
    started = post_import(http, roster_zip(4))
    assert sim.wait_until_held()
    running = http.get("/accounts/self/sis_imports/importing").json()["sis_imports"]
    assert [(i["id"], i["workflow_state"]) for i in running] == [(started["id"], "importing")]
    assert running[0]["started_at"] is not None
    aborted = http.put(f"/accounts/self/sis_imports/{started['id']}/abort").json()
    assert aborted["workflow_state"] == "aborted"
    sim.release_held_import()
    after = finished(sim, http, started["id"])
    assert after["workflow_state"] == "aborted"  # fast_update_progress raises SisBatch::Aborted
    assert http.get("/accounts/self/users").json() == []


def test_batch_mode_cleans_up_in_cleanup_batch(sim, http, roster_zip):
    imported(sim, http, roster_zip(4))
    sim.hold_imports_at("cleanup_batch")
    started = post_import(
        http,
        csv_bytes(
            "courses", [CourseRow(course_id="CRS0", short_name="ALG1", long_name="Algebra I", term_id="2025-26")]
        ),
        name="c.csv",
        batch_mode=True,
        batch_mode_term_id="sis_term_id:2025-26",
    )
    assert sim.wait_until_held()
    assert http.get(f"/accounts/self/sis_imports/{started['id']}").json()["workflow_state"] == "cleanup_batch"
    assert [i["id"] for i in http.get("/accounts/self/sis_imports/importing").json()["sis_imports"]] == [started["id"]]
    sim.release_held_import()
    done = finished(sim, http, started["id"])
    assert done["workflow_state"] == "imported" and done["data"]["counts"]["batch_courses_deleted"] == 1
    # Course.destroy_batch: the deleted course's enrollments go with it.
    crs1 = sim.state.by_sis("course", "CRS1")
    assert crs1.workflow_state == "deleted"
    assert {e.workflow_state for e in sim.state.course_enrollments(crs1.id)} == {"deleted"}


# --- 9b. users: lib/sis/user_importer.rb#process_batch -----------------------------------------------------------


def test_a_login_claimed_by_another_sis_id_is_skipped_in_canvas_words_unless_asked_to_rekey(sim, http):
    imported(sim, http, b"user_id,login_id,status\r\nU1,shared@x.example,active\r\nU2,other,active\r\n")
    done = imported(
        sim, http, b"user_id,login_id,status\r\nU9,shared@x.example,active\r\nU2,shared@x.example,active\r\n"
    )
    claimed = "An existing Canvas user with the SIS ID U1 has already claimed {}'s user_id requested login information"
    assert [w[1] for w in done["processing_warnings"]] == [
        claimed.format("U9") + ", skipping",
        claimed.format("U2") + ", skipping",
    ]
    rekeyed = imported(
        sim, http, b"user_id,login_id,status\r\nU9,shared@x.example,active\r\n", update_sis_id_if_login_claimed=True
    )
    assert rekeyed["workflow_state"] == "imported" and rekeyed["update_sis_id_if_login_claimed"] is True
    assert http.get("/users/sis_user_id:U9").json()["login_id"] == "shared@x.example"
    assert http.get("/users/sis_user_id:U1").status_code == 404


def test_a_blank_authentication_provider_unbinds_the_login_and_an_unknown_one_is_skipped(sim, http):
    provider = sim.add_authentication_provider()
    imported(sim, http, f"user_id,login_id,authentication_provider_id,status\r\nU1,u1,{provider},active\r\n".encode())
    assert http.get("/users/sis_user_id:U1/logins").json()[0]["authentication_provider_id"] == provider
    imported(sim, http, b"user_id,login_id,authentication_provider_id,status\r\nU1,u1,,active\r\n")
    assert http.get("/users/sis_user_id:U1/logins").json()[0]["authentication_provider_id"] is None
    done = imported(sim, http, b"user_id,login_id,authentication_provider_id,status\r\nU2,u2,999999,active\r\n")
    assert [w[1] for w in done["processing_warnings"]] == [
        "unrecognized authentication provider 999999 for U2, skipping"
    ]


def test_deleting_a_user_deletes_its_login_and_enrollments_and_counts_as_a_pseudonym(sim, http, roster_zip):
    imported(sim, http, roster_zip(4))
    done = imported(
        sim,
        http,
        csv_bytes("users", [UserRow(user_id="PS00001", login_id="student1@district.example", status="deleted")]),
    )
    assert done["data"]["statistics"]["Pseudonym"]["deleted"] == 1
    assert done["data"]["statistics"]["Enrollment"]["deleted"] == 1
    assert enrollment_states(http, "sis_course_id:CRS0")["PS00001"] == "deleted"
    assert http.get("/users/sis_user_id:PS00001/logins").json() == []


def test_a_file_canvas_cannot_read_fails_the_import_below_100_percent_with_an_errors_attachment(sim, http, roster_zip):
    # sis_batch.rb#do_batch_end_work: a failure-level message makes import_finished false, so the state is
    # failed_with_messages and progress is not set to 100; the readable files' rows are still applied.
    done = imported(
        sim,
        http,
        build_zip(
            {
                "grades.csv": b"student_number,grade\r\n1,9\r\n",
                "users.csv": b"user_id,login_id,status\r\nU1,u1,active\r\n",
            }
        ),
    )
    assert done["workflow_state"] == "failed_with_messages" and done["progress"] < 100
    assert done["processing_errors"] == [["grades.csv", "Couldn't find Canvas CSV import headers"]]
    assert done["data"]["counts"]["error_count"] == 1 and done["errors_attachment"]["size"] > 0
    assert [a["display_name"] for a in done["csv_attachments"]] == ["users.csv"]  # only recognised CSVs
    assert http.get("/users/sis_user_id:U1").status_code == 200


# --- 9c. enrollments: lib/sis/enrollment_importer.rb#enrollment_status ------------------------------------------


def test_deleted_last_completed_concludes_the_last_enrollment_and_deletes_the_others(sim, http, roster_zip):
    imported(sim, http, roster_zip(8))
    # PS00000 is a student in SEC0 (CRS0); give them a second student enrollment in SEC1.
    imported(sim, http, csv_bytes("enrollments", [EnrollmentRow(section_id="SEC1", user_id="PS00000", role="student")]))

    def states(section: str) -> str:
        return {
            e["sis_user_id"]: e["enrollment_state"]
            for e in http.get(
                f"/sections/sis_section_id:{section}/enrollments",
                params={"state[]": ["active", "deleted", "completed"]},
            ).json()
        }["PS00000"]

    drop = [EnrollmentRow(section_id="SEC0", user_id="PS00000", role="student", status="deleted_last_completed")]
    imported(sim, http, csv_bytes("enrollments", drop))
    assert (states("SEC0"), states("SEC1")) == ("deleted", "active")  # another one remained
    drop = [EnrollmentRow(section_id="SEC1", user_id="PS00000", role="student", status="deleted_last_completed")]
    imported(sim, http, csv_bytes("enrollments", drop))
    assert states("SEC1") == "completed"  # the last one is concluded


def test_deleted_last_completed_rows_of_one_import_see_each_other_as_active(sim, http, roster_zip):
    imported(sim, http, roster_zip(8))
    imported(sim, http, csv_bytes("enrollments", [EnrollmentRow(section_id="SEC1", user_id="PS00000", role="student")]))
    done = imported(
        sim,
        http,
        csv_bytes(
            "enrollments",
            [
                EnrollmentRow(section_id=s, user_id="PS00000", role="student", status="deleted_last_completed")
                for s in ("SEC0", "SEC1")
            ],
        ),
    )
    # Deletions are applied at the end of the importer's batch, so each row still saw the other as active.
    assert done["data"]["statistics"]["Enrollment"]["deleted"] == 2
    assert done["data"]["statistics"]["Enrollment"]["concluded"] == 0


def test_re_enrolling_a_deleted_login_is_refused_in_canvas_words(sim, http, roster_zip):
    imported(sim, http, roster_zip(4))
    imported(
        sim,
        http,
        csv_bytes("users", [UserRow(user_id="PS00001", login_id="student1@district.example", status="deleted")]),
    )
    done = imported(
        sim, http, csv_bytes("enrollments", [EnrollmentRow(section_id="SEC1", user_id="PS00001", role="student")])
    )
    assert [w[1] for w in done["processing_warnings"]] == [
        "Attempted enrolling with deleted sis login student1@district.example in course "
    ]
