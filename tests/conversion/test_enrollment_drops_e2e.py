"""The enrollment drops (services/enrollment_drops.py) end to end through the sync against the Canvas simulator:
what a person added by hand survives the first night after go-live, and a held night's drops go with its release."""

from __future__ import annotations

import httpx
import pytest

from canvas.client import CanvasClient
from conversion import jobs
from conversion.models import Artifact, ConversionState, Job, JobKind, JobState, RosterPolicy, SyncRun, SyncState
from conversion.services import enrollment_drops, sync
from sifclient.powerschool import DistrictSpec
from tests.conversion.jobhelpers import run as run_job
from tests.conversion.simulators import TOKEN, simulated_district

pytestmark = pytest.mark.django_db(transaction=True)
SPEC = DistrictSpec(students=30, schools=1, school_year=2027, seed=5, co_teachers=True)


@pytest.fixture(autouse=True)
def quick_polls(settings):
    settings.CANVAS_PROGRESS_POLL_SECONDS = 0.02


def nightly(conversion) -> SyncRun:
    conversion.state = ConversionState.LIVE
    conversion.save()
    return SyncRun.objects.get(job=run_job(conversion, JobKind.SYNC, sync.run_sync))


def section_rows(canvas_sim, section_id: str) -> dict[tuple[str, str], dict]:
    """{(sis_user_id, type): enrollment JSON} of one section, in every state."""
    with canvas_sim.state.lock:
        course_id = canvas_sim.state.by_sis("section", section_id).course_id
    with CanvasClient(canvas_sim.url, TOKEN) as client:  # read through the API: its JSON is what the sync reads
        return {
            (e.sis_user_id, e.type): e.raw
            for e in client.iter_enrollments(
                course_id=course_id, states=["active", "invited", "inactive", "completed", "deleted"]
            )
            if e.sis_section_id == section_id
        }


def package_rows(run: SyncRun, kind: str = "sync_package") -> list[dict[str, str]]:
    content = bytes(Artifact.objects.filter(job=run.job, kind=kind).latest("id").content)
    return enrollment_drops._enrollments(content)


def test_enrollments_added_by_hand_survive_the_first_night_after_go_live(conversion):
    # The legacy Canvas an SIS import made; then a person adds two enrollments by hand in one of its sections.
    with simulated_district(conversion, SPEC) as (zis, canvas_sim):
        with canvas_sim.state.lock:
            section = next(s for s in canvas_sim.state.sections.values() if s.sis_id)
            legacy = canvas_sim.state.section_enrollments(section.id)
            users = [u for u in canvas_sim.state.users.values() if u.sis_id]
        assert legacy and all(e.sis_batch_id is not None for e in legacy)
        enrolled = {canvas_sim.state.users[e.user_id].sis_id for e in legacy}
        helper, visitor = [u.sis_id for u in users if u.sis_id not in enrolled][:2]
        by_hand = {}
        with httpx.Client(base_url=canvas_sim.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            for user, kind, state in ((helper, "TaEnrollment", "active"), (visitor, "StudentEnrollment", None)):
                data = {"enrollment[user_id]": f"sis_user_id:{user}", "enrollment[type]": kind}
                if state:
                    data["enrollment[enrollment_state]"] = state
                response = http.post(f"/api/v1/sections/{section.id}/enrollments", data=data)
                assert response.status_code == 200, response.text
                by_hand[(user, kind)] = response.json()
        # canvas-lms: only the SIS importer sets sis_batch_id; made by hand, `invited` unless a state is given.
        assert [(e["sis_import_id"], e["enrollment_state"]) for e in by_hand.values()] == [
            (None, "active"),
            (None, "invited"),
        ]
        before = section_rows(canvas_sim, section.sis_id)
        legacy_keys = {k for k, e in before.items() if e["sis_import_id"] is not None}
        assert legacy_keys and all(before[k]["sis_import_id"] is None for k in by_hand)

        run = nightly(conversion)

        assert run.state in (SyncState.IMPORTED, SyncState.IMPORTED_WITH_MESSAGES)  # (no remap: login clashes)
        assert section.sis_id in {r["section_id"] for r in package_rows(run)}  # the night's package holds it
        after = section_rows(canvas_sim, section.sis_id)
        drop_status = RosterPolicy.for_district(conversion.district).drop_status
        # The legacy integration's rows the package does not hold went with the drop status, by the drop import
        # (which stamps its own id on what it changed) ...
        drop_import = Job.objects.get(pk=run.job_id).detail["enrollment_drops"]["import_id"]
        held = {(r["user_id"], r["role"]) for r in package_rows(run) if r["section_id"] == section.sis_id}
        dropped = {k for k in legacy_keys if (k[0], enrollment_drops.CSV_ROLE[k[1]]) not in held}
        assert dropped
        assert {after[k]["enrollment_state"] for k in dropped} == {drop_status}
        assert {after[k]["sis_import_id"] for k in dropped} == {drop_import}
        # ... and what a person added by hand is as it was, in its state and still without an SIS import.
        for key, made in by_hand.items():
            assert (after[key]["enrollment_state"], after[key]["sis_import_id"]) == (made["enrollment_state"], None)
        # The drop file named none of them.
        sent = package_rows(run, "enrollment_drops")
        assert not {(r["section_id"], r["user_id"], r["role"]) for r in sent} & {
            (section.sis_id, user, enrollment_drops.CSV_ROLE[kind]) for user, kind in by_hand
        }


@pytest.mark.parametrize("kept", [True, False], ids=["kept", "held-before-drop-files"])
def test_a_released_sync_sends_the_role_changes_its_held_run_found(conversion, district_admin, kept):
    with simulated_district(conversion, SPEC, seed_canvas=False) as (zis, canvas_sim):
        # Night 1: the district had aides enrolled as teachers.
        RosterPolicy.objects.create(district=conversion.district, role_map={"aide": "teacher"})
        first = nightly(conversion)
        assert first.state == SyncState.IMPORTED
        # Night 2: aides become TAs (the default table), and half of every student's classes vanish: held.
        RosterPolicy.objects.filter(district=conversion.district).update(role_map={})
        zis.update_spec(sections_per_student=2)
        held = nightly(conversion)
        assert held.state == SyncState.HELD and held.canvas_import_id is None
        changes = enrollment_drops.role_changes(
            bytes(Artifact.objects.get(job=first.job, kind="sync_package").content),
            bytes(Artifact.objects.get(job=held.job, kind="sync_package").content),
        )
        assert changes and {role for _, _, role in changes} == {"teacher"}
        # The held run kept the drop file it computed, though nothing was sent.
        assert {(r["section_id"], r["user_id"], r["role"]) for r in package_rows(held, "enrollment_drops")} == set(
            changes
        )

        if not kept:  # a run held before runs kept their drop file: the release recomputes it
            Artifact.objects.filter(job=held.job, kind="enrollment_drops").delete()

        release = sync.release_held_sync(held, user=district_admin, note="Schedules were rebuilt on purpose")
        jobs.run_job(release.pk, sync.run_sync)
        release.refresh_from_db()
        assert release.state == JobState.SUCCEEDED, release.error
        assert release.sync_run.state == SyncState.IMPORTED
        # The release sent the held run's drops after its package, as their own import ...
        drop_import = release.detail["enrollment_drops"]["import_id"]
        with CanvasClient(canvas_sim.url, TOKEN) as client:
            sent = client.get_sis_import("self", drop_import)
        assert sent.workflow_state == "imported" and drop_import != release.sync_run.canvas_import_id
        # ... and each aide's teacher enrollment is in the district's drop status, the TA one active.
        drop_status = RosterPolicy.for_district(conversion.district).drop_status
        for section_id, user_id, _ in changes:
            rows = section_rows(canvas_sim, section_id)
            assert rows[(user_id, "TeacherEnrollment")]["enrollment_state"] == drop_status
            assert rows[(user_id, "TeacherEnrollment")]["sis_import_id"] == drop_import
            assert rows[(user_id, "TaEnrollment")]["enrollment_state"] == "active"
