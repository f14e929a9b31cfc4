"""A district-real roster (issue 14): enrollment dates and statuses, teacher roles, courses, logins, by the
district's RosterPolicy, and the policy shown on the district page, changed by consultants, audited."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import pytest

from conversion.models import AuditEvent, RosterPolicy
from conversion.services.legacy import GeneratorSource
from conversion.services.mapping import CanvasUser, diff_users
from conversion.services.roster import DCID, Policy, Roster
from conversion.services.sis_csv import build_package, planned_logins
from sifclient.powerschool import District as SimulatedDistrict
from sifclient.powerschool import DistrictSpec

SPEC = DistrictSpec(students=30, schools=1, school_year=2027, seed=7, departed_students=2, co_teachers=True)
MID_YEAR = dt.date(2027, 4, 20)  # after the departures (March 13th), before the year's end (May 29th)


def roster(policy: Policy | None = None, *, as_of=MID_YEAR, spec=SPEC) -> Roster:
    return Roster(GeneratorSource(spec), school_year=spec.school_year, policy=policy, as_of=as_of)


def rows_of(path, name) -> list[dict]:
    with zipfile.ZipFile(path) as archive:
        return list(csv.DictReader(io.StringIO(archive.read(name).decode(), newline="")))


def departed_numbers(spec=SPEC) -> set[str]:
    district = SimulatedDistrict(spec)
    return {district.student(i).local_id for i in range(spec.students) if district.departed(i)}


def student_rows(package_path, numbers: set[str], r: Roster) -> list[dict]:
    dcids = {p.dcid for p in r.people_by_ref.values() if p.local_id in numbers}
    return [row for row in rows_of(package_path, "enrollments.csv") if row["user_id"] in dcids]


# ---- 1. enrollment lifecycle ---------------------------------------------------------------------------------------
def test_a_student_who_left_is_inactive_by_default_with_their_dates_and_never_active(tmp_path):
    r = roster()
    package = build_package(r, tmp_path / "p.zip", scheme=DCID)
    left = student_rows(package.path, departed_numbers(), r)
    assert len(departed_numbers()) == 2 and left
    gone = [row for row in left if row["end_date"] == "2027-03-13"]
    assert gone and {(row["status"], row["start_date"]) for row in gone} == {("inactive", "2026-08-15")}
    # A first-semester section that ended in December was finished before they left: concluded, at its end.
    finished = [row for row in left if row not in gone]
    assert all(row["status"] == "completed" and row["end_date"] == "2026-12-19" for row in finished)
    others = [row for row in rows_of(package.path, "enrollments.csv") if row not in left and row["role"] == "student"]
    # Everyone else: active, or completed in a first-semester section that is over.
    assert {row["status"] for row in others} == {"active", "completed"}


@pytest.mark.parametrize("status", ["completed", "deleted"])
def test_what_a_student_who_left_becomes_is_the_district_s_choice(tmp_path, status):
    r = roster(Policy(departed_status=status))
    package = build_package(r, tmp_path / "p.zip", scheme=DCID)
    left = student_rows(package.path, departed_numbers(), r)
    assert {row["status"] for row in left if row["end_date"] == "2027-03-13"} == {status}


def test_before_the_exit_date_the_student_is_still_active(tmp_path):
    r = roster(as_of=dt.date(2027, 2, 1))
    package = build_package(r, tmp_path / "p.zip", scheme=DCID)
    rows = student_rows(package.path, departed_numbers(), r)
    assert {row["status"] for row in rows if row["end_date"] != "2026-12-19"} == {"active"}


def test_after_the_term_s_end_every_enrollment_is_concluded(tmp_path):
    r = roster(as_of=dt.date(2027, 6, 10))
    package = build_package(r, tmp_path / "p.zip", scheme=DCID)
    rows = rows_of(package.path, "enrollments.csv")
    left = student_rows(package.path, departed_numbers(), r)
    stayed = [row for row in rows if row not in left]
    assert {row["status"] for row in stayed} == {"completed"}
    assert {row["status"] for row in left if row["end_date"] == "2027-03-13"} == {"inactive"}  # left early


# ---- 3. teacher roles ----------------------------------------------------------------------------------------------
def _roles(r: Roster) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for e in r.iter_enrollments():
        if e.person.kind == "teacher":
            found.setdefault(e.teacher_role, set()).add(e.role)
    return found


def test_lead_co_teacher_and_aide_map_to_canvas_roles_by_the_default_table():
    assert _roles(roster()) == {"lead": {"teacher"}, "co_teacher": {"teacher"}, "aide": {"ta"}}


def test_the_district_s_role_table_decides_what_a_co_teacher_and_an_aide_become(tmp_path):
    policy = Policy(role_map={"co_teacher": "ta", "aide": "observer"})
    assert _roles(roster(policy)) == {"lead": {"teacher"}, "co_teacher": {"ta"}, "aide": {"observer"}}
    package = build_package(roster(policy), tmp_path / "p.zip", scheme=DCID)
    assert {"teacher", "ta", "observer", "student"} == {row["role"] for row in rows_of(package.path, "enrollments.csv")}


# ---- 4. courses ----------------------------------------------------------------------------------------------------
def test_combined_courses_hold_the_sections_of_one_course_term_and_teacher(tmp_path):
    # One teacher, six sections a course: sections 1 and 4 of a course share its term (simulator: (course+p) % 3).
    spec = SPEC.replace(courses_per_school=2, sections_per_course=6, teachers_per_school=1, co_teachers=False)
    per_section = build_package(roster(spec=spec), tmp_path / "a.zip", scheme=DCID)
    combined = build_package(
        roster(
            Policy(course_grouping="combined", course_id_pattern="crs_{course_code}_{term_code}_{teacher_local_id}"),
            spec=spec,
        ),
        tmp_path / "b.zip",
        scheme=DCID,
    )
    sections = rows_of(combined.path, "sections.csv")
    courses = rows_of(combined.path, "courses.csv")
    assert per_section.counts["courses"] == per_section.counts["sections"] == len(sections)
    assert len(courses) < len(sections)
    assert {s["course_id"] for s in sections} == {c["course_id"] for c in courses}
    assert all(c["course_id"].startswith("crs_") for c in courses)


def test_the_course_sis_id_follows_the_district_s_scheme(tmp_path):
    package = build_package(roster(Policy(course_id_pattern="{school_year}-{section_dcid}")), tmp_path / "p.zip")
    r = roster()
    sections = rows_of(package.path, "sections.csv")
    assert {s["course_id"] for s in sections} == {f"2027-{s.dcid}" for s in r.sections.values()}


# ---- 5. logins -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "rule, pattern, expected",
    [
        ("local_id", "", lambda p: p.local_id),
        ("state_id", "", lambda p: p.state_id),
        ("dcid", "", lambda p: p.dcid),
        ("pattern", "{local_id}@students.example.org", lambda p: f"{p.local_id}@students.example.org"),
    ],
)
def test_the_login_follows_the_district_s_rule(rule, pattern, expected):
    r = roster(Policy(login_rule=rule, login_pattern=pattern, staff_login_rule="local_id"))
    logins = planned_logins(r)
    people = r.people_by_ref
    students = {ref: login for ref, login in logins.items() if people[ref].kind == "student"}
    assert students and all(login.casefold() == expected(people[ref]).casefold() for ref, login in students.items())
    # Teachers follow their own rule.
    assert all(login == people[ref].local_id for ref, login in logins.items() if people[ref].kind == "teacher")


def test_a_login_the_rule_gives_two_people_falls_back_to_the_sis_id():
    r = roster(Policy(login_rule="pattern", login_pattern="{last_name}@students.example.org"))
    people = r.people_by_ref
    logins = planned_logins(r)
    students = [p for p in people.values() if p.kind == "student"]
    shared = [p.ref_id for p in students if sum(q.last_name.lower() == p.last_name.lower() for q in students) > 1]
    assert shared and all(logins[ref] == people[ref].dcid for ref in shared)


def test_the_mapping_blocks_when_an_existing_user_s_login_would_change():
    r = roster(Policy(login_rule="email"))
    person = next(p for p in r.people_by_ref.values() if p.kind == "student")
    canvas = [CanvasUser(person.local_id, person.name, login_id=f"{person.local_id}@sso.example.org")]
    rows = [row for row in diff_users([person], canvas, planned_logins(r)) if row.key == person.local_id]
    assert rows[0].blocking and "login would change" in rows[0].reason
    same = [CanvasUser(person.local_id, person.name, login_id=person.email.upper())]
    assert not diff_users([person], same, planned_logins(r))[0].blocking


# ---- the policy on the district page, changed by consultants, audited ------------------------------------------------
def test_the_district_page_shows_the_default_policy(client, consultant, conversion):
    client.force_login(consultant)
    page = client.get(f"/districts/{conversion.district.slug}/{conversion.school_year}/").content.decode()
    assert "Roster policy" in page and "Aide → ta" in page and "one course per section" in page


def test_a_consultant_changes_the_policy_and_the_change_is_audited(client, consultant, conversion):
    client.force_login(consultant)
    district = conversion.district
    data = {
        "departed_status": "completed",
        "drop_status": "inactive",
        "course_grouping": "section",
        "course_id_pattern": "sec_{section_local_id}",
        "login_rule": "pattern",
        "login_pattern": "{local_id}@students.example.org",
        "staff_login_rule": "email",
        "role_lead": "teacher",
        "role_co_teacher": "ta",
        "role_job_share": "teacher",
        "role_aide": "ta",
        "role_observer": "observer",
    }
    response = client.post(f"/districts/{district.slug}/{conversion.school_year}/roster-policy/", data)
    assert response.status_code == 302
    policy = RosterPolicy.for_district(district)
    assert (policy.departed_status, policy.login_rule, policy.canvas_role("co_teacher")) == (
        "completed",
        "pattern",
        "ta",
    )
    event = AuditEvent.objects.get(district=district, action="edit:roster_policy")
    assert event.detail["departed_status"] == {"from": "inactive", "to": "completed"}
    assert "co_teacher → ta" in event.detail["role_map"]["to"]
    page = client.get(f"/districts/{district.slug}/{conversion.school_year}/").content.decode()
    assert "Co-teacher → ta" in page and "{local_id}@students.example.org" in page


def test_a_district_admin_cannot_change_the_policy(client, district_admin, conversion):
    client.force_login(district_admin)
    response = client.post(
        f"/districts/{conversion.district.slug}/{conversion.school_year}/roster-policy/", {"departed_status": "deleted"}
    )
    assert response.status_code == 403
    assert not RosterPolicy.objects.exists()


def test_a_login_pattern_with_an_unknown_field_is_refused(client, consultant, conversion):
    client.force_login(consultant)
    data = {
        "departed_status": "inactive",
        "drop_status": "inactive",
        "course_grouping": "section",
        "course_id_pattern": "sec_{section_local_id}",
        "login_rule": "pattern",
        "login_pattern": "{password}@x",
        "staff_login_rule": "email",
        "role_lead": "teacher",
        "role_co_teacher": "teacher",
        "role_job_share": "teacher",
        "role_aide": "ta",
        "role_observer": "observer",
    }
    client.post(f"/districts/{conversion.district.slug}/{conversion.school_year}/roster-policy/", data)
    assert not RosterPolicy.objects.exists()


# ---- 2. terms ------------------------------------------------------------------------------------------------------
class LateExits:
    """The simulated district, with PowerSchool's exit dates a week after the full-year term's end."""

    def __init__(self, spec):
        self.inner = GeneratorSource(spec)

    def rows(self, object_name, fields=None):
        for ref, local_id, dcid, year, data in self.inner.rows(object_name, fields):
            if object_name == "StudentSectionEnrollment":
                data = {**data, "exit_date": "2027-06-05"}
            yield ref, local_id, dcid, year, data


def test_terms_carry_termInfo_dates_and_courses_sit_in_their_terms(tmp_path):
    r = roster()
    package = build_package(r, tmp_path / "p.zip", scheme=DCID)
    terms = {row["term_id"]: row for row in rows_of(package.path, "terms.csv")}
    assert terms["2027_26-27"]["start_date"] == "2026-08-15" and terms["2027_26-27"]["end_date"] == "2027-05-29"
    assert terms["2027_S1"]["end_date"] == "2026-12-19"
    courses = rows_of(package.path, "courses.csv")
    assert {c["term_id"] for c in courses} <= set(terms) and all(c["term_id"] for c in courses)


def test_a_term_ending_before_its_students_exit_dates_is_warned_before_the_year_ends():
    source = LateExits(SPEC.replace(departed_students=0))
    warnings = Roster(source, school_year=2027, as_of=MID_YEAR).term_date_warnings()
    assert warnings and any("2027_26-27" in w and "2027-06-05" in w for w in warnings)
    assert Roster(GeneratorSource(SPEC), school_year=2027, as_of=MID_YEAR).term_date_warnings() == []
    # After the year's end there is nothing left to correct.
    assert Roster(source, school_year=2027, as_of=dt.date(2027, 7, 1)).term_date_warnings() == []


# ---- 7. the rollover, from the page --------------------------------------------------------------------------------
def test_a_consultant_moves_a_live_district_to_the_next_year_and_it_is_audited(client, consultant, conversion):
    from conversion.models import ConversionState

    client.force_login(consultant)
    url = f"/districts/{conversion.district.slug}/{conversion.school_year}/rollover/"
    year = conversion.school_year
    client.post(url)  # not live yet: refused
    conversion.refresh_from_db()
    assert conversion.school_year == year
    conversion.state = ConversionState.LIVE
    conversion.save()
    page = client.get(f"/districts/{conversion.district.slug}/{year}/").content.decode()
    assert "Move to the next school year" in page
    response = client.post(url)
    conversion.refresh_from_db()
    assert conversion.school_year == year + 1 and response["Location"].endswith(f"/{year + 1}/")
    event = AuditEvent.objects.get(action="rollover")
    assert event.detail == {"from": year, "to": year + 1}


# ---- 6. legacy identifiers -----------------------------------------------------------------------------------------
def test_legacy_ids_are_learned_from_the_section_local_id_and_never_claimed_twice():
    from conversion.services.mapping import CanvasCourse, learn_legacy_ids

    r = roster(spec=SPEC.replace(co_teachers=False))
    a, b, c = list(r.sections.values())[:3]
    courses = [
        CanvasCourse(f"2027-X-{a.local_id}", "A", 1, "T2027-S1", (f"S{a.local_id}",)),
        # A cross-listed legacy course: it becomes the course of its first section.
        CanvasCourse("XL-1", "B", 2, "T2027-S1", (f"S{b.local_id}", f"S{c.local_id}")),
        # Two section ids in one SIS id: ambiguous, left alone.
        CanvasCourse("odd", "C", 3, "", (f"S{a.local_id}-{b.local_id}",)),
        # Already under the sync's ids: nothing to rename.
        CanvasCourse(c.course_id, "D", 4, "", (c.section_id,)),
    ]
    rows = {(row.kind, row.canvas_value): row.key for row in learn_legacy_ids(r, courses)}
    assert rows[("legacy_section", f"S{a.local_id}")] == a.section_id
    assert rows[("legacy_course", f"2027-X-{a.local_id}")] == a.course_id
    assert rows[("legacy_course", "XL-1")] == b.course_id
    assert ("legacy_section", f"S{c.local_id}") not in rows  # c's own id is already in Canvas
    assert ("legacy_course", "odd") not in rows
    # One legacy term maps to one new term, the first one its courses show.
    assert [k for k in rows if k[0] == "legacy_term"] == [("legacy_term", "T2027-S1")]


def test_a_combined_course_id_that_names_one_section_is_refused(client, consultant, conversion):
    client.force_login(consultant)
    data = {
        "departed_status": "inactive",
        "drop_status": "inactive",
        "course_grouping": "combined",
        "course_id_pattern": "sec_{section_local_id}",
        "login_rule": "email",
        "login_pattern": "",
        "staff_login_rule": "email",
        "role_lead": "teacher",
        "role_co_teacher": "teacher",
        "role_job_share": "teacher",
        "role_aide": "ta",
        "role_observer": "observer",
    }
    client.post(f"/districts/{conversion.district.slug}/{conversion.school_year}/roster-policy/", data)
    assert not RosterPolicy.objects.exists()
    data["course_id_pattern"] = "crs_{course_code}_{term_code}_{teacher_local_id}"
    client.post(f"/districts/{conversion.district.slug}/{conversion.school_year}/roster-policy/", data)
    assert RosterPolicy.for_district(conversion.district).course_grouping == "combined"


def test_term_dates_edited_by_hand_in_canvas_are_reported_not_blocking():
    from conversion.services.mapping import CanvasCourse, diff_term_dates

    r = roster()
    same = CanvasCourse("c1", "A", 1, "2027_S1", (), ("2026-08-15T00:00:00Z", "2026-12-19T00:00:00Z"))
    edited = CanvasCourse("c2", "B", 2, "T-FY", (), ("2026-08-15T00:00:00Z", "2027-06-12T00:00:00Z"))
    rows = diff_term_dates(r, [same, edited], renamed={"T-FY": "2027_26-27"})
    assert [(row.key, row.canvas_value, row.sif_value, row.blocking) for row in rows] == [
        ("2027_26-27", "2026-08-15 – 2027-06-12", "2026-08-15 – 2027-05-29", False)
    ]


def test_a_legacy_cross_listed_course_keeps_its_second_section_in_the_sync_s_package(tmp_path):
    from conversion.services.mapping import LEGACY_GROUP, CanvasCourse, learn_legacy_ids

    r = roster(spec=SPEC.replace(co_teachers=False))
    b, c = list(r.sections.values())[1:3]
    rows = learn_legacy_ids(r, [CanvasCourse("XL-1", "B", 2, "T2027-S1", (f"S{b.local_id}", f"S{c.local_id}"))])
    groups = {row.key: row.sif_value for row in rows if row.kind == LEGACY_GROUP}
    assert groups == {c.section_id: b.course_id}
    # The roster built with the learned grouping puts both sections in one course, and writes no course for c.
    grouped = Roster(
        GeneratorSource(SPEC.replace(co_teachers=False)), school_year=2027, as_of=MID_YEAR, course_groups=groups
    )
    build_package(grouped, tmp_path / "p.zip")
    sections = {row["section_id"]: row["course_id"] for row in rows_of(tmp_path / "p.zip", "sections.csv")}
    assert sections[c.section_id] == sections[b.section_id] == b.course_id
    assert c.course_id not in {row["course_id"] for row in rows_of(tmp_path / "p.zip", "courses.csv")}


def test_a_changed_role_s_old_row_is_dropped_and_an_unchanged_one_is_not():
    from conversion.services import enrollment_drops

    def package(rows):
        return enrollment_drops.drop_package(rows, "active")

    before = package([("s1", "u1", "teacher"), ("s1", "u2", "student"), ("s2", "u3", "teacher")])
    after = package([("s1", "u1", "ta"), ("s1", "u2", "student")])  # u3 left: diffing's business, not a role change
    assert enrollment_drops.role_changes(before, after) == [("s1", "u1", "teacher")]
    dropped = enrollment_drops.drop_package(enrollment_drops.role_changes(before, after), "inactive")
    with zipfile.ZipFile(io.BytesIO(dropped)) as archive:
        assert archive.read("enrollments.csv").decode() == "section_id,user_id,role,status\ns1,u1,teacher,inactive\n"
    assert enrollment_drops.drop_package([], "inactive") == b""
