"""The sync sends back the integration ids Canvas holds (canvas-lms's account, course and section importers erase
one a row does not carry), without letting them decide whether a night has new data; and a Canvas import that ends
plain `failed` is reported as Canvas means it. Through the product's sync job and the Canvas simulator over HTTP."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest
from django.utils import timezone

from canvas.client import CanvasClient
from conversion.models import Artifact, Job, JobKind, JobState, Snapshot, SyncRun, SyncState
from conversion.services import canvas_keep, sync
from conversion.services.legacy import GeneratorSource
from conversion.services.roster import DCID, Roster
from conversion.services.sis_csv import build_package
from sifclient.powerschool import DistrictSpec
from tests.conversion.jobhelpers import run as run_job
from tests.conversion.simulators import TOKEN, simulated_district
from tests.conversion.test_remaster import live, nightly

SPEC = DistrictSpec(students=30, schools=1, school_year=2027, seed=3)


def set_in_canvas(canvas_sim) -> dict[str, str]:
    """A district sets integration ids in Canvas (by hand, or another tool): one course, its section, its school."""
    state = canvas_sim.state
    with state.lock:
        course = min((c for c in state.courses.values() if c.sis_id), key=lambda c: c.id)
        section = min((s for s in state.sections.values() if s.sis_id and s.course_id == course.id), key=lambda s: s.id)
        account = state.accounts[course.account_id]
        for kind, obj in (("course", course), ("section", section), ("account", account)):
            state.index[kind].set_integration(obj, f"library-{kind}-{obj.sis_id}")
    return {"course": course.sis_id, "section": section.sis_id, "account": account.sis_id}


def integration_ids(canvas_sim, ids: dict[str, str]) -> dict[str, str | None]:
    with CanvasClient(canvas_sim.url, TOKEN) as client:
        course = next(c for c in client.iter_courses("self") if c.sis_course_id == ids["course"])
        section = next(s for s in client.iter_sections(course.id) if s.sis_section_id == ids["section"])
        account = client.get_account(f"sis_account_id:{ids['account']}")
    return {"course": course.integration_id, "section": section.integration_id, "account": account["integration_id"]}


def expected(ids: dict[str, str]) -> dict[str, str]:
    return {kind: f"library-{kind}-{sis_id}" for kind, sis_id in ids.items()}


def forget_cached_packages(conversion) -> None:
    """As if the night's snapshot matched no earlier one: the package is built (and Canvas read) again."""
    for snapshot in Snapshot.objects.filter(conversion=conversion):
        snapshot.summary = {k: v for k, v in snapshot.summary.items() if k != "sis_packages"}
        snapshot.save(update_fields=["summary"])


@pytest.mark.django_db(transaction=True)
def test_integration_ids_set_in_canvas_survive_a_nightly_sync_that_sends_their_rows(conversion):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        first = nightly(conversion)
        ids = set_in_canvas(canvas_sim)
        # A remap rollback makes the next nightly go whole: every course, section and school row is sent, and
        # course_importer.rb#add_course / section_importer.rb#add_section / account_importer.rb#add_account
        # assign the row's integration_id, erasing Canvas's unless the row carries it.
        Job.objects.create(
            conversion=conversion, kind=JobKind.REMAP_ROLLBACK, state=JobState.SUCCEEDED, finished_at=timezone.now()
        )
        second = nightly(conversion)
        assert second.state == SyncState.IMPORTED and second.full_import_reason
        assert integration_ids(canvas_sim, ids) == expected(ids)
        sent = zipfile.ZipFile(io.BytesIO(bytes(Artifact.objects.get(job=second.job, kind="sync_package").content)))
        courses = list(csv.DictReader(io.StringIO(sent.read("courses.csv").decode())))
        assert {r["course_id"]: r["integration_id"] for r in courses if r["integration_id"]} == {
            ids["course"]: f"library-course-{ids['course']}"
        }
        # The values read from Canvas are not the SIS's data: the same records give the same fingerprint.
        assert second.fingerprint == first.fingerprint


@pytest.mark.django_db(transaction=True)
def test_values_read_from_canvas_neither_make_an_unchanged_night_send_nor_hide_a_change(conversion):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        nightly(conversion)
        ids = set_in_canvas(canvas_sim)
        forget_cached_packages(conversion)
        # Built again, now with Canvas's integration ids in its rows and an integration_id column: still no new
        # data, so nothing is sent (and nothing sent erases nothing).
        quiet = nightly(conversion)
        assert quiet.state == SyncState.SKIPPED and quiet.full_import_reason == ""
        # New data in the SIS is still seen, and the diffed import keeps what Canvas holds.
        zis.bump_day()
        changed = nightly(conversion)
        # (Canvas's diff base has no integration_id column in those files: it imports them whole, with its warning
        # "Couldn't generate diff: CSV headers do not match", sis_batch.rb#generate_diff.)
        assert changed.state in (SyncState.IMPORTED, SyncState.IMPORTED_WITH_MESSAGES) and changed.canvas_import_id
        assert integration_ids(canvas_sim, ids) == expected(ids)
        # Canvas's edit made after a sync does not make the following nights look changed.
        forget_cached_packages(conversion)
        assert nightly(conversion).state == SyncState.SKIPPED


@pytest.mark.django_db(transaction=True)
def test_when_canvas_cannot_be_read_a_quiet_night_is_skipped_and_a_night_to_send_stops_unsent(conversion, settings):
    settings.CANVAS_CLIENT_OPTIONS = {"max_retries": 1, "backoff_base": 0.01, "backoff_cap": 0.02, "timeout": 2.0}
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        nightly(conversion)
        forget_cached_packages(conversion)
        canvas_sim.inject_faults(status=503, count=1000)
        assert nightly(conversion).state == SyncState.SKIPPED
        zis.bump_day()
        job = run_job(conversion, JobKind.SYNC, sync.run_sync)
        assert job.state == JobState.FAILED
        assert "Could not read the integration ids Canvas holds" in job.error
        run = SyncRun.objects.get(job=job)
        assert run.state == SyncState.FAILED and run.canvas_import_id is None
        canvas_sim.faults.clear()
        assert len(canvas_sim.runner.imports) == 1  # only the first night's import reached Canvas


def test_the_package_carries_kept_values_and_its_fingerprint_ignores_them(tmp_path):
    roster = Roster(GeneratorSource(SPEC), school_year=2027)
    plain = build_package(roster, tmp_path / "plain.zip", scheme=DCID)
    section = next(iter(roster.sections.values()))
    school = next(iter(roster.schools.values()))
    kept = canvas_keep.Kept(
        accounts={school.account_id: "lib-a"},
        courses={section.course_id: "lib-c"},
        sections={section.section_id: "lib-s"},
    )
    filled = build_package(
        Roster(GeneratorSource(SPEC), school_year=2027), tmp_path / "kept.zip", scheme=DCID, keep=kept
    )
    assert filled.fingerprint == plain.fingerprint == canvas_keep.Kept().fingerprint(plain.path)
    with zipfile.ZipFile(filled.path) as archive:
        rows = {
            name: list(csv.DictReader(io.StringIO(archive.read(name).decode())))
            for name in ("accounts.csv", "courses.csv", "sections.csv")
        }
    assert [r["integration_id"] for r in rows["accounts.csv"] if r["account_id"] == school.account_id] == ["lib-a"]
    assert [r["integration_id"] for r in rows["courses.csv"] if r["course_id"] == section.course_id] == ["lib-c"]
    assert [r["integration_id"] for r in rows["sections.csv"] if r["section_id"] == section.section_id] == ["lib-s"]
    assert sum(1 for r in rows["sections.csv"] if r["integration_id"]) == 1
    # A different value in Canvas changes the bytes sent, not the fingerprint.
    other = build_package(
        Roster(GeneratorSource(SPEC), school_year=2027),
        tmp_path / "other.zip",
        scheme=DCID,
        keep=canvas_keep.Kept(courses={section.course_id: "lib-other"}),
    )
    assert other.fingerprint == plain.fingerprint


@pytest.mark.django_db(transaction=True)
def test_a_canvas_import_ending_plain_failed_fails_the_sync_as_an_error_inside_canvas(conversion):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        live(conversion)
        nightly(conversion)
        zis.bump_day()
        # app/models/sis_batch.rb#process: an exception outside the CSV importer ends the batch plain `failed`,
        # with data.error_message and no processing error.
        canvas_sim.fail_next_import("PG::ConnectionBad: server closed the connection unexpectedly")
        job = run_job(conversion, JobKind.SYNC, sync.run_sync)
        assert job.state == JobState.FAILED
        run = SyncRun.objects.get(job=job)
        assert (run.state, run.canvas_state, run.error_count) == (SyncState.FAILED, "failed", 0)
        assert f"Canvas import {run.canvas_import_id} failed inside Canvas (PG::ConnectionBad" in job.error
        assert "not in the district's data" in job.error
        assert not Artifact.objects.filter(job=job, kind="sync_errors").exists()
        # Canvas never takes a failed import as the diffing baseline, nor does the product take it as its last
        # sync: the next night sends the same changes again instead of finding "no new data".
        again = nightly(conversion)
        assert again.state == SyncState.IMPORTED and again.fingerprint == run.fingerprint


def test_a_value_of_the_product_s_own_wins_and_stays_in_the_fingerprint(tmp_path):
    from canvas.csv_rows import CourseRow
    from conversion.services.sis_csv import write_package, zip_fingerprint

    def files(own: str | None):
        return [
            (
                "courses.csv",
                "courses",
                [
                    CourseRow(course_id="C1", short_name="a", long_name="a", integration_id=own),
                    CourseRow(course_id="C2", short_name="b", long_name="b"),
                ],
            )
        ]

    kept = canvas_keep.Kept(courses={"C1": "canvas-1", "C2": "canvas-2"})
    write_package(tmp_path / "kept.zip", kept.fill(files("own-1")))
    write_package(tmp_path / "plain.zip", files("own-1"))
    with zipfile.ZipFile(tmp_path / "kept.zip") as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("courses.csv").decode())))
    assert [(r["course_id"], r["integration_id"]) for r in rows] == [("C1", "own-1"), ("C2", "canvas-2")]
    assert kept.fingerprint(tmp_path / "kept.zip") == zip_fingerprint(tmp_path / "plain.zip")
    # A change of the product's own value is a change.
    write_package(tmp_path / "changed.zip", files("own-2"))
    assert zip_fingerprint(tmp_path / "changed.zip") != zip_fingerprint(tmp_path / "plain.zip")


def test_the_read_takes_only_the_package_s_objects_and_stops_at_its_bound():
    from canvas.csvfiles import AccountRow, CourseRow, SectionRow, build_zip
    from canvas.simulator import CanvasSimulator

    with CanvasSimulator(token=TOKEN) as canvas_sim:
        canvas_sim.seed_sis_import(
            build_zip(
                {
                    "accounts.csv": [AccountRow(account_id=a, name=a, integration_id=f"i-{a}") for a in ("A1", "A2")],
                    "courses.csv": [
                        CourseRow(course_id=c, short_name=c, long_name=c, account_id="A1", integration_id=f"i-{c}")
                        for c in ("C1", "C2", "C3")
                    ],
                    "sections.csv": [
                        SectionRow(section_id=f"S{n}", course_id=f"C{n}", name="s", integration_id=f"i-S{n}")
                        for n in (1, 2, 3)
                    ],
                }
            )
        )
        wanted = {"account_ids": ["A1", "A9"], "course_ids": ["C1", "C2", "C9"], "section_ids": ["S1", "S2"]}
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            whole = canvas_keep.read(client, "self", **wanted, max_requests=100)
            bounded = canvas_keep.read(client, "self", **wanted, max_requests=1)
    # Only what the package names (A2, C3, S3 are Canvas's, not ours; A9, C9 are not in Canvas yet).
    assert (whole.accounts, whole.courses, whole.sections, whole.unread) == (
        {"A1": "i-A1"},
        {"C1": "i-C1", "C2": "i-C2"},
        {"S1": "i-S1", "S2": "i-S2"},
        0,
    )
    # One course list page, then one section list per existing course and one read per account.
    assert whole.requests == 1 + 2 + 2
    # The bound: the course list, then one more read (C1's sections); C2's sections and both accounts are left.
    assert (bounded.courses, bounded.sections, bounded.accounts, bounded.unread) == (
        {"C1": "i-C1", "C2": "i-C2"},
        {"S1": "i-S1"},
        {},
        3,
    )
    assert bounded.requests == 2
