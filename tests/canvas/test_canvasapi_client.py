"""The simulator driven by canvasapi, a Canvas client nobody on this project wrote, for every endpoint the
product uses: what canvasapi can parse and page through is what a real Canvas client expects."""

from __future__ import annotations

from pathlib import Path

import pytest
from canvasapi import Canvas
from canvasapi.exceptions import ResourceDoesNotExist

from canvas.csvfiles import EnrollmentRow, build_zip
from tests.canvas.conftest import TOKEN

# canvasapi warns about plain-HTTP URLs; the simulator listens on loopback only.
pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning")


@pytest.fixture
def canvas(sim):
    return Canvas(sim.url, TOKEN)


def wait(sim, account, import_id: int, timeout: float = 60.0):
    """The import as canvasapi reads it once the simulator has run it (its runner idle: no polling, no sleep)."""
    assert sim.wait_for_imports(timeout), f"import {import_id} did not finish"
    sis_import = account.get_sis_import(import_id)
    assert sis_import.workflow_state not in ("initializing", "created", "importing", "cleanup_batch", "restoring")
    return sis_import


def test_an_import_with_the_products_options_polled_listed_and_restored(canvas, sim, roster_zip, tmp_path: Path):
    account = canvas.get_account(sim.root_account_id)
    assert account.id == sim.root_account_id
    upload = tmp_path / "sync-job7.zip"
    upload.write_bytes(roster_zip(12))
    # The options conversion/services/sync.py sends, and the others the product's client can send.
    started = account.create_sis_import(
        str(upload),
        diffing_data_set_identifier="district-7",
        diffing_drop_status="deleted",
        change_threshold=50,
        override_sis_stickiness=True,
        add_sis_stickiness=True,
    )
    assert started.workflow_state == "created"
    assert not hasattr(started, "csv_attachments")  # sis_import_json leaves it out while queued
    done = wait(sim, account, started.id)
    assert done.workflow_state == "imported"
    assert done.data["counts"]["users"] == 14 and done.data["supplied_batches"][0] == "account"
    assert done.diffing_data_set_identifier == "district-7" and done.change_threshold == 50
    assert done.override_sis_stickiness is True and done.add_sis_stickiness is True
    assert "sync-job7.zip" not in {a["display_name"] for a in done.csv_attachments}

    # A second upload without one student's enrollment: diffed, the drop applied as `deleted`.
    rows = [EnrollmentRow(section_id=f"SEC{i % 4}", user_id=f"PS{i:05d}", role="student") for i in range(1, 12)]
    rows += [EnrollmentRow(section_id=f"SEC{s}", user_id=f"PST{s // 2}", role="teacher") for s in range(4)]
    second = account.create_sis_import(
        _zip_file(tmp_path, roster_zip(12), {"01_enrollments.csv": rows}),
        diffing_data_set_identifier="district-7",
        diffing_drop_status="deleted",
    )
    second = wait(sim, account, second.id)
    assert second.data["diffed_against_sis_batch_id"] == done.id
    assert second.data["counts"]["enrollments"] == 1

    listed = list(account.get_sis_imports(per_page=1))
    assert [i.id for i in listed] == [second.id, done.id]  # newest first, paged through Link rel="next"
    assert list(account.get_sis_imports_running()) == []

    progress = second.restore_states()
    assert progress.tag == "sis_batch_state_restore"
    assert sim.wait_for_imports(10)  # the restore runs in the runner's job, as SisBatch#restore_states_later
    assert canvas.get_progress(progress.id).workflow_state == "completed"
    assert account.get_sis_import(second.id).workflow_state == "restored"


def _zip_file(tmp_path: Path, base: bytes, replace: dict) -> str:
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    files.update(replace)
    path = tmp_path / "second.zip"
    path.write_bytes(build_zip(files))
    return str(path)


def test_users_courses_sections_and_enrollments_page_through_link_headers(canvas, sim, roster_zip):
    sim.seed_sis_import(roster_zip(30))
    account = canvas.get_account(sim.root_account_id)
    users = list(account.get_users(per_page=7))
    assert len(users) == 32 and len({u.id for u in users}) == 32
    courses = {c.sis_course_id: c for c in account.get_courses(per_page=1, include=["term"])}
    assert set(courses) == {"CRS0", "CRS1"} and courses["CRS0"].term["sis_term_id"] == "2025-26"
    course = canvas.get_course("CRS0", use_sis_id=True)
    assert course.id == courses["CRS0"].id
    sections = list(course.get_sections(per_page=1))
    assert {s.sis_section_id for s in sections} == {"SEC0", "SEC1"}
    enrollments = list(course.get_enrollments(per_page=5))
    assert len(enrollments) == 16 + 2  # SEC0/SEC1 students and their teacher in each
    section = canvas.get_section("SEC0", use_sis_id=True)
    assert {e.sis_user_id for e in section.get_enrollments() if e.type == "TeacherEnrollment"} == {"PST0"}
    assert {u.sis_user_id for u in course.get_users(enrollment_type=["teacher"])} == {"PST0"}


def test_a_user_by_sis_id_and_its_logins(canvas, sim, roster_zip):
    sim.seed_sis_import(roster_zip(4))
    user = canvas.get_user("PS00002", "sis_user_id")
    assert user.login_id == "student2@district.example"
    [login] = list(user.get_user_logins())
    assert login.unique_id == "student2@district.example" and login.sis_user_id == "PS00002"
    with pytest.raises(ResourceDoesNotExist):
        canvas.get_user("NOBODY", "sis_user_id")


def test_abort_and_abort_all_pending(canvas, sim, roster_zip, tmp_path: Path):
    account = canvas.get_account(sim.root_account_id)
    path = tmp_path / "a.zip"
    path.write_bytes(roster_zip(2))
    sim.pause_imports()
    first = account.create_sis_import(str(path))
    second = account.create_sis_import(str(path))
    assert first.abort().workflow_state == "aborted"
    assert account.abort_sis_imports_pending() is True
    sim.resume_imports()
    assert wait(sim, account, second.id).workflow_state == "aborted"
    with pytest.raises(ResourceDoesNotExist):  # a finished import cannot be aborted: not_completed.find → 404
        account.get_sis_import(first.id).abort()
