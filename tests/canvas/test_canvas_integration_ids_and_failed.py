"""Two behaviours of canvas-lms the simulator follows, over HTTP with Canvas-shaped JSON: importers that erase an
integration_id the row does not carry, and the plain `failed` state of an import that broke outside the CSV
importer."""

from __future__ import annotations

import httpx
import pytest

from canvas.csvfiles import AccountRow, CourseRow, SectionRow, TermRow, UserRow, build_zip
from tests.canvas.conftest import TOKEN


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.url + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as c:
        yield c


def imported(sim, http, data: bytes) -> dict:
    response = http.post("/accounts/self/sis_imports", files={"attachment": ("u.zip", data, "application/zip")})
    assert response.status_code == 200, response.text
    assert sim.wait_for_imports(60)
    return http.get(f"/accounts/self/sis_imports/{response.json()['id']}").json()


def package(with_ids: bool) -> bytes:
    iid = (lambda v: v) if with_ids else (lambda v: None)
    return build_zip(
        {
            "accounts.csv": [AccountRow(account_id="A1", name="North High", integration_id=iid("lib-A1"))],
            "terms.csv": [TermRow(term_id="T1", name="2027", integration_id=iid("lib-T1"))],
            "courses.csv": [
                CourseRow(
                    course_id="C1",
                    short_name="ALG",
                    long_name="Algebra",
                    account_id="A1",
                    term_id="T1",
                    integration_id=iid("lib-C1"),
                )
            ],
            "sections.csv": [
                SectionRow(section_id="S1", course_id="C1", name="Algebra 1", integration_id=iid("lib-S1"))
            ],
            "users.csv": [UserRow(user_id="U1", login_id="u1@example.org", integration_id=iid("lib-U1"))],
        }
    )


def integration_ids(sim, http) -> dict[str, str | None]:
    got = {
        "account": http.get("/accounts/sis_account_id:A1"),
        "course": http.get("/courses/sis_course_id:C1"),
        "section": http.get("/sections/sis_section_id:S1"),
        "user": http.get("/users/sis_user_id:U1"),
    }
    assert all(r.status_code == 200 for r in got.values()), {k: r.text for k, r in got.items()}
    ids = {kind: response.json()["integration_id"] for kind, response in got.items()}
    # The terms API does not show a term's integration_id (lib/api/v1/enrollment_term.rb#enrollment_term_json):
    # read the simulator's state.
    ids["term"] = sim.state.by_sis("term", "T1").integration_id
    ids["course list"] = {
        c["sis_course_id"]: c["integration_id"] for c in http.get("/accounts/self/courses").json()
    }.get("C1")
    ids["section list"] = {
        s["sis_section_id"]: s["integration_id"] for s in http.get("/courses/sis_course_id:C1/sections").json()
    }.get("S1")
    return ids


def test_rows_without_an_integration_id_erase_it_except_for_users(sim, http):
    assert imported(sim, http, package(with_ids=True))["workflow_state"] == "imported"
    # The API shows what the import set (lib/api/v1/account.rb#account_json, course_json.rb, section.rb, user.rb
    # write integration_id for a caller that may read SIS data).
    assert integration_ids(sim, http) == {
        "account": "lib-A1",
        "course": "lib-C1",
        "section": "lib-S1",
        "user": "lib-U1",
        "term": "lib-T1",
        "course list": "lib-C1",
        "section list": "lib-S1",
    }

    assert imported(sim, http, package(with_ids=False))["workflow_state"] == "imported"
    # account_importer.rb#add_account, term_importer.rb#add_term, course_importer.rb#add_course and
    # section_importer.rb#add_section assign the row's integration_id unconditionally: a row without the column
    # erases it. user_importer.rb sets a login's only when the row has one.
    assert integration_ids(sim, http) == {
        "account": None,
        "course": None,
        "section": None,
        "user": "lib-U1",
        "term": None,
        "course list": None,
        "section list": None,
    }
    # Erased, so free to be claimed by another object (the index forgets it too).
    assert sim.state.by_integration("course", "lib-C1") is None


def test_an_error_outside_the_csv_importer_ends_the_import_plain_failed(sim, http):
    # app/models/sis_batch.rb#process rescues an exception that escapes the import type's callback: the text goes
    # to data["error_message"], the state to `failed`, progress stays where it was; no processing error is added,
    # so no errors_attachment either (lib/api/v1/sis_import.rb writes it only with error messages).
    sim.fail_next_import("Attachment not found")
    failed = imported(sim, http, package(with_ids=True))
    assert failed["workflow_state"] == "failed"
    assert failed["data"]["error_message"] == "Attachment not found"
    assert failed["progress"] == 0
    assert "processing_errors" not in failed and "errors_attachment" not in failed
    assert http.get(f"/accounts/self/sis_imports/{failed['id']}/errors").json() == {"sis_import_errors": []}
    assert http.get("/courses/sis_course_id:C1").status_code == 404  # nothing was imported
    # A fault of one batch: the next import of the account runs as usual.
    assert imported(sim, http, package(with_ids=True))["workflow_state"] == "imported"
