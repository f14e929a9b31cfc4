"""The seeds' troubleshooting, detected from data: each ZIS simulator switch shows exactly its diagnostic."""

from __future__ import annotations

import contextlib

import pytest
from django.urls import reverse

from conversion import jobs
from conversion.models import AuditEvent, Diagnostic, JobKind, JobState
from conversion.services import connection, diagnostics, pull
from conversion.services.dcid import DCID_OBJECTS
from sifclient.powerschool import District as SimDistrict
from sifclient.powerschool import DistrictSpec
from sifclient.zis import ZisSimulator

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = DistrictSpec(students=60, schools=2, school_year=2027, seed=5)
REGULAR_SCHOOLS = ["100", "200"]


@contextlib.contextmanager
def zone(conversion, *, tls: bool = False, **switches):
    with ZisSimulator(SPEC.replace(**switches), zone_id="ALPHA", tls=tls) as zis:
        conversion.zis_url = zis.base_url + "/zones"
        conversion.zone_id = "ALPHA"
        conversion.save()
        yield zis


def run(conversion, kind):
    runner = {JobKind.PULL: pull.run_pull, JobKind.TEST_CONNECTION: connection.run_test_connection}[kind]
    job, _ = jobs.start_job(conversion, kind, enqueue=False)
    jobs.run_job(job.pk, runner)
    job.refresh_from_db()
    return job


def current(conversion) -> dict[str, Diagnostic]:
    return {d.code: d for d in conversion.diagnostics.current()}


@pytest.fixture(autouse=True)
def quick_pulls(monkeypatch):
    monkeypatch.setattr(pull, "POLL_SECONDS", 0.05)


def test_a_clean_district_shows_no_diagnostic(conversion):
    with zone(conversion):
        assert run(conversion, JobKind.TEST_CONNECTION).state == JobState.SUCCEEDED
        assert run(conversion, JobKind.PULL).state == JobState.SUCCEEDED
    assert current(conversion) == {}
    assert not Diagnostic.objects.exists()


def test_lost_agent_cfg_mappings(conversion):
    with zone(conversion, mappings_missing=True):
        job = run(conversion, JobKind.PULL)
    assert job.state == JobState.SUCCEEDED, job.error
    found = current(conversion)
    assert set(found) == {"mappings_missing"}
    diag = found["mappings_missing"]
    counts = SimDistrict(SPEC).counts()
    assert diag.evidence["records_without_dcid"] == sum(counts[name] for name in DCID_OBJECTS)
    assert diag.evidence["objects"]["StudentPersonal"]["without_dcid"] == counts["StudentPersonal"]
    assert len(diag.evidence["objects"]["StudentPersonal"]["examples"]) == diagnostics.EXAMPLES
    assert diag.severity == "error" and "restart the sif agent" in diag.advice.lower()


def test_previous_school_years(conversion):
    with zone(conversion, previous_school_years=True):
        run(conversion, JobKind.PULL)
    found = current(conversion)
    assert set(found) == {"previous_school_years"}
    evidence = found["previous_school_years"].evidence
    assert evidence["previous_years"] == ["2026"]
    assert evidence["per_object"]["SectionInfo"] == {"2026": 32, "2027": 32}
    assert evidence["per_object"]["StudentSchoolEnrollment"]["2026"] == SPEC.students
    assert "Default Zone Settings / School Year" in found["previous_school_years"].advice


def test_state_messaging_plugins(conversion):
    with zone(conversion, smp_on=True):
        run(conversion, JobKind.PULL)
    found = current(conversion)
    assert set(found) == {"smp_on"}
    evidence = found["smp_on"].evidence
    students = SimDistrict(SPEC).count("StudentPersonal")
    assert evidence["state_elements"] == {"StudentPersonal": {"CO_FundingCode": students, "CO_SASID": students}}
    assert evidence["unsolicited_events"] == {"StudentDailyAttendance:Add": 3}
    assert "Agent Settings / Plugins" in found["smp_on"].advice


def test_several_family_emails_show_the_chosen_address_and_the_rest(conversion, district_admin, client):
    with zone(conversion, family_emails=True):
        job = run(conversion, JobKind.PULL)
    assert job.state == JobState.SUCCEEDED, job.error
    found = current(conversion)
    assert set(found) == {"several_emails"}
    evidence = found["several_emails"].evidence
    students = [s for _, s in SimDistrict(SPEC.replace(family_emails=True)).iter_records("StudentPersonal")]
    with_lists = sorted((s for s in students if "," in s.email), key=lambda s: s.local_id)
    assert evidence["people"] == len(with_lists) > 0 and set(evidence["objects"]) == {"StudentPersonal"}
    first = with_lists[0]
    family, second, own = [part.strip() for part in first.email.split(",")]
    assert evidence["objects"]["StudentPersonal"]["examples"][0] == {
        "local_id": first.local_id,
        "chosen": family,
        "not_used": [second, own],
        "not_an_address": [],
    }
    assert (
        found["several_emails"].severity == "warning" and "first well-formed address" in found["several_emails"].advice
    )
    client.force_login(district_admin)
    page = client.get(
        reverse("district_section", kwargs={"slug": "alpha", "year": 2027, "section": "diagnostics"})
    ).content.decode()
    assert "Several e-mail addresses" in page and family in page and second in page


def test_schools_the_district_did_not_choose(conversion):
    conversion.expected_school_ids = REGULAR_SCHOOLS
    conversion.save()
    with zone(conversion, excluded_schools=True):
        run(conversion, JobKind.PULL)
    found = current(conversion)
    assert set(found) == {"excluded_schools"}
    schools = found["excluded_schools"].evidence["schools"]
    assert [(s["local_id"], s["name"]) for s in schools] == [
        ("900", "District Office"),
        ("910", "Summer School"),
        ("999", "Graduated Students"),
    ]
    assert found["excluded_schools"].evidence["students"] == len(
        SimDistrict(SPEC.replace(excluded_schools=True)).excluded_student_schools
    )
    assert "Zone Settings / Zone / District" in found["excluded_schools"].advice


def test_extra_schools_need_the_districts_list_to_be_flagged(conversion):
    """Names that look non-instructional are not evidence: without the district's list nothing is flagged."""
    with zone(conversion, excluded_schools=True):
        run(conversion, JobKind.PULL)
    assert current(conversion) == {}


def test_push_mode(conversion):
    with zone(conversion, push_mode=True):
        test = run(conversion, JobKind.TEST_CONNECTION)
        pulled = run(conversion, JobKind.PULL)
    assert test.state == JobState.SUCCEEDED  # the zone answers; only its status shows the Push provider
    assert pulled.state == JobState.FAILED and pulled.detail["sif_error"]["category"] == 10
    found = current(conversion)
    assert set(found) == {"push_mode"}
    seen = found["push_mode"].evidence["seen_in"]
    assert [s["kind"] for s in seen] == ["pull", "test_connection"]
    assert "category 10, code 4" in seen[0]["request_errors"][0]
    assert seen[1]["nodes"][0]["mode"] == "Push" and "StudentPersonal" in seen[1]["nodes"][0]["provides"]
    assert "Messaging Mode" in found["push_mode"].advice


def test_zone_not_ready(conversion):
    with zone(conversion, zone_not_ready=True):
        test = run(conversion, JobKind.TEST_CONNECTION)
        pulled = run(conversion, JobKind.PULL)
    assert test.state == JobState.FAILED and pulled.state == JobState.FAILED
    found = current(conversion)
    assert set(found) == {"zone_not_ready"}
    assert [s["kind"] for s in found["zone_not_ready"].evidence["seen_in"]] == ["pull", "test_connection"]
    assert "Zone Settings / Zone / General" in found["zone_not_ready"].advice


def test_certificate_error(conversion):
    with zone(conversion, tls=True):  # the ZIS's private CA is not pasted into the conversion
        test = run(conversion, JobKind.TEST_CONNECTION)
    assert test.state == JobState.FAILED and test.detail["error_kind"] == "tls"
    found = current(conversion)
    assert set(found) == {"certificate"}
    assert "Java's trusted certificates" in found["certificate"].advice


def test_a_clean_pull_clears_earlier_diagnostics(conversion):
    with zone(conversion, mappings_missing=True, push_mode=True) as zis:
        run(conversion, JobKind.TEST_CONNECTION)
        assert set(current(conversion)) == {"push_mode"}
        zis.update_spec(push_mode=False)
        run(conversion, JobKind.PULL)
        assert set(current(conversion)) == {"mappings_missing"}  # the pull went through: Push is fixed
        first_seen = Diagnostic.objects.get(code="mappings_missing").first_seen
        zis.update_spec(mappings_missing=False)
        assert run(conversion, JobKind.PULL).state == JobState.SUCCEEDED
    assert current(conversion) == {}
    cleared = {d.code: d for d in conversion.diagnostics.cleared()}
    assert set(cleared) == {"push_mode", "mappings_missing"}
    assert cleared["mappings_missing"].first_seen == first_seen and cleared["mappings_missing"].cleared_at


def test_a_failed_pull_keeps_the_data_findings_of_the_last_complete_one(conversion):
    with zone(conversion, previous_school_years=True) as zis:
        run(conversion, JobKind.PULL)
        zis.update_spec(zone_not_ready=True)
        assert run(conversion, JobKind.PULL).state == JobState.FAILED
    assert set(current(conversion)) == {"previous_school_years", "zone_not_ready"}


def test_district_page_shows_diagnostics_with_evidence(conversion, district_admin, client):
    with zone(conversion, mappings_missing=True):
        run(conversion, JobKind.PULL)
    client.force_login(district_admin)
    html = client.get(
        reverse("district_section", kwargs={"slug": "alpha", "year": 2027, "section": "diagnostics"})
    ).content.decode()
    assert 'role="alert"' in html and "agent.cfg mappings are not coming over" in html
    assert "StudentPersonal" in html


def test_choosing_schools_is_audited_and_flags_the_others(conversion, district_admin, client):
    with zone(conversion, excluded_schools=True):
        run(conversion, JobKind.PULL)
    client.force_login(district_admin)
    url = reverse("setup_schools", kwargs={"slug": "alpha", "year": 2027})
    response = client.post(url, {"school": REGULAR_SCHOOLS})
    assert response.status_code == 302
    conversion.refresh_from_db()
    assert conversion.expected_school_ids == REGULAR_SCHOOLS
    event = AuditEvent.objects.get(action="edit:schools")
    assert event.actor == district_admin and event.detail["expected_school_ids"]["to"] == REGULAR_SCHOOLS
    assert set(current(conversion)) == {"excluded_schools"}
    # A school that the pull did not bring is refused, and nothing changes.
    client.post(url, {"school": ["100", "12345"]})
    conversion.refresh_from_db()
    assert conversion.expected_school_ids == REGULAR_SCHOOLS
