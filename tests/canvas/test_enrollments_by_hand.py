"""An enrollment a person adds in Canvas carries no sis_import_id; one an SIS import makes or takes over carries
that import's id (canvas-lms app/models/course.rb#enroll_user, lib/sis/enrollment_importer.rb,
lib/api/v1/enrollment.rb#enrollment_json)."""

from __future__ import annotations

import httpx
import pytest

from canvas.csvfiles import EnrollmentRow, build_zip
from canvas.simulator import CanvasSimulator
from tests.canvas.conftest import TOKEN


@pytest.fixture
def http(sim):
    with httpx.Client(base_url=sim.url + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as c:
        yield c


def enroll(http, section: str, user: str, kind: str, **extra: str) -> httpx.Response:
    data = {"enrollment[user_id]": f"sis_user_id:{user}", "enrollment[type]": kind}
    data.update({f"enrollment[{k}]": v for k, v in extra.items()})
    return http.post(f"/sections/sis_section_id:{section}/enrollments", data=data)


def section_rows(http, section: str) -> dict[tuple[str, str], dict]:
    response = http.get(
        f"/sections/sis_section_id:{section}/enrollments",
        params=[("state[]", s) for s in ("active", "invited", "inactive", "completed", "deleted")],
    )
    return {(e["sis_user_id"], e["type"]): e for e in response.json()}


def test_an_enrollment_made_by_hand_has_no_sis_import_until_an_import_takes_it_over(sim, http, roster_zip):
    seed = sim.seed_sis_import(roster_zip())
    # Made by hand: no SIS import; `invited` unless a state is given (Course#enroll_user).
    made = enroll(http, "SEC0", "PST1", "TaEnrollment")
    assert made.status_code == 200, made.text
    assert (made.json()["sis_import_id"], made.json()["enrollment_state"]) == (None, "invited")
    active = enroll(http, "SEC0", "PS00002", "StudentEnrollment", enrollment_state="active").json()
    assert (active["sis_import_id"], active["enrollment_state"]) == (None, "active")
    rows = section_rows(http, "SEC0")
    assert rows[("PS00000", "StudentEnrollment")]["sis_import_id"] == seed.id  # the seed import's own
    assert rows[("PST1", "TaEnrollment")]["sis_import_id"] is None

    # An SIS import naming the same user, role and section finds it (enrollment_importer.rb) and stamps its id.
    later = sim.seed_sis_import(
        build_zip({"enrollments.csv": [EnrollmentRow(user_id="PST1", role="ta", section_id="SEC0")]})
    )
    taken = section_rows(http, "SEC0")[("PST1", "TaEnrollment")]
    assert (taken["id"], taken["sis_import_id"], taken["enrollment_state"]) == (made.json()["id"], later.id, "active")


def test_an_unknown_type_is_refused_and_a_read_only_token_cannot_enroll(roster_zip):
    with CanvasSimulator(token=TOKEN, tokens={"reader": {"read_roster"}}) as sim:
        sim.seed_sis_import(roster_zip())
        with httpx.Client(base_url=sim.url + "/api/v1", headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            assert enroll(http, "SEC0", "PST1", "WizardEnrollment").status_code == 400
        with httpx.Client(base_url=sim.url + "/api/v1", headers={"Authorization": "Bearer reader"}) as reader:
            assert enroll(reader, "SEC0", "PST1", "TaEnrollment").status_code == 403
