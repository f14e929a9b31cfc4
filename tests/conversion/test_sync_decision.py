"""The nightly sync's decision, alone: skip, hold or send, from the facts and the district's policy (no database,
no Canvas). Also the removal list's comparison of two packages, per school."""

from __future__ import annotations

import csv
import io
import zipfile

from conversion.services import removals
from conversion.services.sync_policy import Decision, Removals, SchoolRemovals, SyncPolicy, decide

POLICY = SyncPolicy(deletion_threshold=10, school_thresholds={"SCH-B": 5})


def removed(total_before=100, total=0, schools=()):
    return Removals(enrollments_before=total_before, enrollments=total, schools=tuple(schools))


def test_same_fingerprint_as_the_last_successful_sync_is_skipped():
    decision = decide(POLICY, full_reason="", previous_fingerprint="abc", fingerprint="abc", removals=None)
    assert decision.action == "skip"


def test_the_first_sync_and_new_data_are_sent():
    assert decide(POLICY, full_reason="", previous_fingerprint=None, fingerprint="abc", removals=None).action == "send"
    assert (
        decide(POLICY, full_reason="", previous_fingerprint="old", fingerprint="new", removals=removed(total=10)).action
        == "send"
    )  # 10% is allowed: only more is held


def test_more_than_the_district_threshold_is_held_with_the_figures_in_words():
    decision = decide(POLICY, full_reason="", previous_fingerprint="old", fingerprint="new", removals=removed(total=11))
    assert decision.action == "hold"
    assert decision.reason == "11 of 100 enrollments (11%) would be dropped, more than the 10% allowed without a look."


def test_a_school_over_its_own_threshold_holds_the_sync_though_the_district_is_under_its_own():
    schools = [
        SchoolRemovals("SCH-A", "Alpha High", enrollments_before=80, enrollments=2),
        SchoolRemovals("SCH-B", "Beta Middle", enrollments_before=20, enrollments=2),
    ]
    decision = decide(
        POLICY, full_reason="", previous_fingerprint="o", fingerprint="n", removals=removed(total=4, schools=schools)
    )
    assert decision.action == "hold"
    assert decision.reason == "Beta Middle: 2 of 20 enrollments (10%) would be dropped, more than the school's 5%."
    # A school without a threshold of its own is judged only within the district's total.
    other = SyncPolicy(deletion_threshold=10)
    assert (
        decide(
            other, full_reason="", previous_fingerprint="o", fingerprint="n", removals=removed(total=4, schools=schools)
        ).action
        == "send"
    )


def test_a_remaster_is_never_skipped_nor_held():
    decision = decide(
        POLICY, full_reason="requested", previous_fingerprint="abc", fingerprint="abc", removals=removed(total=90)
    )
    assert decision == Decision("send", "requested")


def test_the_policy_comes_from_the_district_and_gives_canvas_its_change_threshold():
    class District:
        sync_deletion_threshold = 25
        sync_school_thresholds = {"SCH-A": 3}

    policy = SyncPolicy.for_district(District())
    assert (policy.deletion_threshold, dict(policy.school_thresholds), policy.drop_status) == (
        25,
        {"SCH-A": 3},
        "deleted",
    )
    assert policy.canvas_change_threshold == 25


def _zip(files: dict[str, list[list[str]]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, rows in files.items():
            text = io.StringIO()
            csv.writer(text).writerows(rows)
            archive.writestr(name, text.getvalue())
    return out.getvalue()


ACCOUNTS = [
    ["account_id", "parent_account_id", "name", "status"],
    ["SCH-A", "", "Alpha High", "active"],
    ["SCH-B", "", "Beta Middle", "active"],
]


def package(courses, sections, users, enrollments) -> bytes:
    return _zip(
        {
            "accounts.csv": ACCOUNTS,
            "courses.csv": [["course_id", "short_name", "long_name", "account_id", "status"]] + courses,
            "sections.csv": [["section_id", "course_id", "name", "status"]] + sections,
            "users.csv": [["user_id", "login_id", "first_name", "last_name", "status"]] + users,
            "enrollments.csv": [["section_id", "user_id", "role", "status"]] + enrollments,
        }
    )


def test_the_removal_list_names_each_removed_row_under_its_school():
    courses = [["C1", "Alg", "Algebra", "SCH-A", "active"], ["C2", "Art", '=HYPERLINK("x")', "SCH-B", "active"]]
    sections = [["S1", "C1", "Algebra 1", "active"], ["S2", "C2", "Art 1", "active"]]
    users = [["U1", "u1@x", "Ann", "Lee", "active"], ["U2", "u2@x", "Bo", "Ray", "active"]]
    enrollments = [
        ["S1", "U1", "student", "active"],
        ["S2", "U2", "student", "active"],
        ["S1", "U2", "student", "active"],
    ]
    before = package(courses, sections, users, enrollments)
    after = package(courses[:1], sections[:1], users[:1], enrollments[:1])
    found, rows = removals.compare(before, after)
    assert (found.users, found.courses, found.sections, found.enrollments, found.enrollments_before) == (1, 1, 1, 2, 3)
    by_school = {s.account_id: s for s in found.schools}
    assert (
        by_school["SCH-B"].courses,
        by_school["SCH-B"].sections,
        by_school["SCH-B"].enrollments,
        by_school["SCH-B"].enrollments_before,
    ) == (1, 1, 1, 1)
    assert (by_school["SCH-A"].enrollments, by_school["SCH-A"].enrollments_before) == (1, 2)
    assert ["SCH-B", "Beta Middle", "users", "U2", "Bo Ray", "u2@x"] in rows  # the school of their enrollments
    assert ["SCH-A", "Alpha High", "enrollments", "U2", "student", "section S1"] in rows
    text = removals.csv_bytes(rows).decode()
    assert text.splitlines()[0] == ",".join(removals.CSV_HEADER)
    assert "'=HYPERLINK" in text  # opened in a spreadsheet, no cell starts a formula (SafeWriter)
    summary = removals.as_json(found)
    assert summary["totals"] == {"users": 1, "courses": 1, "sections": 1, "enrollments": 2}
    assert [s["account_id"] for s in summary["schools"]] == ["SCH-A", "SCH-B"]


def test_nothing_removed_gives_an_empty_list():
    content = package(
        [["C1", "A", "A", "SCH-A", "active"]],
        [["S1", "C1", "A", "active"]],
        [["U1", "u@x", "A", "B", "active"]],
        [["S1", "U1", "student", "active"]],
    )
    found, rows = removals.compare(content, content)
    assert rows == [] and found.enrollments == 0 and found.enrollments_before == 1
