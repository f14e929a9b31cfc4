"""The product against the strict ZIS profile (sifclient/zis/strict.py, modelled on OpenZIS): what a real zone
does that the default simulator hides. Each test names the OpenZIS file (OpenZIS/ZIT_APPLICATION/main_lib/...)
whose behaviour it meets."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conversion.forms import ZisSettingsForm
from conversion.models import Diagnostic, JobKind, JobState, ReceivedMessage, SifRecord, Snapshot
from conversion.services import connection, pull
from conversion.services import zis as zis_service
from conversion.services.zis import MAX_BUFFER_SIZE
from sifclient.errors import ERROR_CATEGORIES, ERROR_CODES
from sifclient.messages import AgentAcl
from sifclient.powerschool import District as SimDistrict
from sifclient.powerschool import DistrictSpec
from sifclient.zis import ZisSimulator
from sifclient.zis.strict import DEFAULT_ACL
from tests.conversion.jobhelpers import run
from tests.conversion.test_gradepassback import DUE, first_course

pytestmark = pytest.mark.django_db(transaction=True)
SPEC = DistrictSpec(students=40, schools=1, school_year=2027, seed=8)


@pytest.fixture(autouse=True)
def quick(monkeypatch, settings):
    monkeypatch.setattr(pull, "POLL_SECONDS", 0.02)
    settings.ZIS_CLIENT_OPTIONS = {"timeout": 10.0, "retries": 2, "retry_delay": 0.01}


@pytest.fixture
def strict_zone(conversion):
    with ZisSimulator(SPEC, zone_id="ALPHA", profile="strict", agents=(zis_service.source_id(conversion),)) as zis:
        conversion.zis_url = zis.base_url + "/zones"
        conversion.zone_id = "ALPHA"
        conversion.save()
        yield zis


class LoseReply:
    """The zone handles the message, then the connection drops before the reply (once per kind listed)."""

    def __init__(self, zone, *kinds: str):
        self.kinds = list(kinds)
        self._handle = zone.handle
        zone.handle = self

    def __call__(self, data: bytes) -> bytes:
        reply = self._handle(data)
        for kind in self.kinds:
            if f"<{kind}>".encode() in data:
                self.kinds.remove(kind)
                raise ConnectionResetError(f"reply to {kind} lost")
        return reply


def assert_complete_once(job):
    snapshot = job.snapshots.get()
    assert snapshot.counts == {k: v for k, v in SimDistrict(SPEC).counts().items() if v}
    assert SifRecord.objects.filter(snapshot=snapshot).count() == sum(snapshot.counts.values())
    for name, info in snapshot.requests.items():
        assert info["packets"] == info["last_packet"], name


# --- request/Request.php setupRequest: a re-sent SIF_Request is queued twice ------------------------------------


def test_a_request_sent_twice_is_answered_twice_and_stored_once(conversion, strict_zone):
    LoseReply(strict_zone.zone, "SIF_Request")
    job = run(conversion, JobKind.PULL, pull.run_pull)
    assert job.state == JobState.SUCCEEDED, job.error
    assert_complete_once(job)
    assert ReceivedMessage.objects.filter(conversion=conversion, kind="duplicate").exists()


# --- ack/Ack.php updateMessageQueue: a re-sent ack is answered 9/1 ------------------------------------------------


def test_an_ack_the_zis_took_before_its_reply_was_lost_does_not_fail_the_pull(conversion, strict_zone):
    LoseReply(strict_zone.zone, "SIF_Ack")
    job = run(conversion, JobKind.PULL, pull.run_pull)
    assert job.state == JobState.SUCCEEDED, job.error
    assert_complete_once(job)


# --- RegisterError.php notRegisteredError (5/1) and Agent.php updateRegistration ---------------------------------


def test_a_registration_the_zis_dropped_is_renewed_once_and_the_job_says_so(conversion, strict_zone):
    zone = strict_zone.zone
    real = zone._strict_request

    def forget_before_the_third(agent, info):
        real_calls.append(info.msg_id)
        if len(real_calls) == 3:
            zone.forget(agent.source_id)
            return zone._ack(info, error=zone_error)
        return real(agent, info)

    from sifclient.zis.strict import NOT_REGISTERED, _error

    zone_error = _error(NOT_REGISTERED)
    real_calls: list[str] = []
    zone._strict_request = forget_before_the_third
    # The connection test registers, and the pull registers again within the same second (5/1 once, cured).
    assert run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection).state == JobState.SUCCEEDED
    job = run(conversion, JobKind.PULL, pull.run_pull)
    assert job.state == JobState.SUCCEEDED, job.error
    assert_complete_once(job)
    notes = job.detail["agent_notes"]
    assert any("not registered: registered again" in n for n in notes), notes
    assert "registered again" in job.message


# --- SifProcessRequest.php retrieveVersion: one version per zone (12/3) -----------------------------------------


def test_the_agent_speaks_the_districts_version_and_learns_the_zones(conversion):
    with ZisSimulator(
        SPEC, zone_id="ALPHA", profile="strict", zone_version="2.0r1", agents=(zis_service.source_id(conversion),)
    ) as zis:
        conversion.zis_url, conversion.zone_id, conversion.sif_version = zis.base_url + "/zones", "ALPHA", "2.4"
        conversion.save()
        job = run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
        assert job.state == JobState.SUCCEEDED, job.error
        conversion.refresh_from_db()
        assert conversion.sif_version == "2.0r1" and "SIF 2.0r1" in job.message
        pulled = run(conversion, JobKind.PULL, pull.run_pull)
        assert pulled.state == JobState.SUCCEEDED, pulled.error
        assert {m["version"] for m in zis.zone.received} >= {"2.0r1"}
        assert all(m["version"] == "2.0r1" for m in list(zis.zone.received)[2:])


def test_step_one_shows_and_edits_the_sif_version(conversion, consultant, client):
    form = ZisSettingsForm(instance=conversion)
    assert "sif_version" in form.fields
    assert [v for v, _ in form.fields["sif_version"].choices if v] == ["2.0r1", "2.1", "2.2", "2.3", "2.4", "2.5"]
    bound = ZisSettingsForm(
        {
            "zis_url": "https://127.0.0.1:8443/zis",
            "zone_id": "ALPHA",
            "sif_version": "2.1",
            "hosting": conversion.hosting,
        },
        instance=conversion,
    )
    assert bound.is_valid(), bound.errors
    assert bound.save().sif_version == "2.1"
    client.force_login(consultant)
    page = client.get(reverse("district_year", args=[conversion.district.slug, conversion.school_year]))
    assert b"SIF 2.1" in page.content


# --- SifProcessRequest.php checkIfZitIsSleeping / checkIfZoneIsSleeping: status 8 ---------------------------------


def test_a_sleeping_zone_fails_the_pull_saying_so_at_once(conversion, strict_zone):
    strict_zone.zone.set_asleep(True)
    job = run(conversion, JobKind.PULL, pull.run_pull)
    assert job.state == JobState.FAILED
    assert job.error.startswith("The zone is asleep"), job.error
    assert "stopped answering" not in job.error
    assert job.detail["error_kind"] == "asleep"
    assert Diagnostic.objects.filter(conversion=conversion, code="zone_asleep", cleared_at__isnull=True).exists()


def test_a_zone_that_falls_asleep_mid_pull_is_reported_as_asleep(conversion, strict_zone):
    zone = strict_zone.zone
    real = zone._strict_get_message
    count = []

    def sleep_after_two(agent, info):
        count.append(1)
        if len(count) == 2:
            zone.set_asleep(True)
        return real(agent, info)

    zone._strict_get_message = sleep_after_two
    job = run(conversion, JobKind.PULL, pull.run_pull)
    assert job.state == JobState.FAILED and job.error.startswith("The zone is asleep"), job.error
    assert "(SIF_Ack)" in job.error  # the ack of the delivered packet met the sleeping zone
    # Woken, the next pull gets the unacked packet again, knows it, and completes with every record once.
    zone.set_asleep(False)
    zone._strict_get_message = real
    again = run(conversion, JobKind.PULL, pull.run_pull)
    assert again.state == JobState.SUCCEEDED, again.error


# --- response/Response.php setupResponseNew: an empty answer is dropped -------------------------------------------


def test_requests_never_answered_while_the_rest_arrived_are_explained_as_possibly_empty(conversion):
    snapshot = Snapshot(
        conversion=conversion,
        requests={
            "SchoolInfo": {"msg_id": "A", "packets": 1, "last_packet": 1, "records": 1, "error": None},
            "GradingCategory": {"msg_id": "B", "packets": 0, "last_packet": None, "records": 0, "error": None},
        },
    )
    text = pull.no_answer_message(snapshot, 120, conversion)
    assert text.startswith("No answer for GradingCategory within 120 s.")
    assert "no records in PowerSchool" in text and "stopped answering" not in text
    snapshot.requests["SchoolInfo"]["packets"] = 0
    assert pull.no_answer_message(snapshot, 120, conversion).startswith("The zone stopped answering")


# --- response/Response.php processResponse: a packet over the request's buffer is dropped, and all after it --------


def test_an_answer_that_stopped_half_way_while_the_rest_arrived_names_the_oversized_packet(conversion):
    snapshot = Snapshot(
        conversion=conversion,
        requests={
            "SchoolInfo": {"msg_id": "A", "packets": 1, "last_packet": 1, "records": 1, "error": None},
            "StudentPersonal": {"msg_id": "B", "packets": 3, "last_packet": None, "records": 900, "error": None},
            "GradingCategory": {"msg_id": "C", "packets": 0, "last_packet": None, "records": 0, "error": None},
        },
    )
    text = pull.no_answer_message(snapshot, 120, conversion)
    assert text.startswith("No answer for GradingCategory within 120 s.") and "stopped answering" not in text
    assert "StudentPersonal stopped after packet 3" in text
    assert "8/11" in text and f"{MAX_BUFFER_SIZE:,} bytes" in text
    snapshot.requests["SchoolInfo"]["packets"] = 0  # nothing complete: the zone itself went quiet
    assert pull.no_answer_message(snapshot, 120, conversion).startswith("The zone stopped answering")


# --- register/Register.php createAclAckMessage + acl/ACL.php; no ZoneReady -----------------------------------------


def test_the_connection_test_reads_the_acl_and_says_what_to_ask_for(conversion, strict_zone):
    job = run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.detail["zone"]["ready"] is None
    assert "zone readiness not reported" in job.message and "NOT ready" not in job.message
    assert job.detail["acl"]["reported"] and all(job.detail["acl"]["request"].values())

    strict_zone.zone.define_agent(
        zis_service.source_id(conversion),
        AgentAcl(request=tuple(n for n in DEFAULT_ACL.request if n != "StudentPersonal")),
    )
    job = run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
    assert job.state == JobState.FAILED
    assert "may NOT request StudentPersonal" in job.error
    assert f"let agent {zis_service.source_id(conversion)} request StudentPersonal" in job.error
    assert job.detail["acl"]["missing_publish"] == ["GradingAssignment", "GradingAssignmentScore"]
    assert any("provide and publish" in ask for ask in job.detail["asks"])


def test_the_default_profile_reports_no_acl_and_a_ready_zone(conversion):
    with ZisSimulator(SPEC, zone_id="ALPHA") as zis:
        conversion.zis_url, conversion.zone_id = zis.base_url + "/zones", "ALPHA"
        conversion.save()
        job = run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
    assert job.state == JobState.SUCCEEDED, job.error
    assert not job.detail["acl"]["reported"] and "permissions (ACL) not reported" in job.message


# --- one advice table -------------------------------------------------------------------------------------------


def test_every_sif_error_and_http_failure_has_advice_from_the_one_table(conversion):
    for category in ERROR_CATEGORIES:
        for code in [1, *ERROR_CODES.get(category, {})]:
            text = zis_service.advice(("sif", category, code), conversion, object="StudentPersonal")
            assert text and "{" not in text, (category, code)
    for status in (400, 401, 403, 404, 500, 502, 503):
        assert "{" not in zis_service.advice(("http", status), conversion)
    source = zis_service.source_id(conversion)
    # OpenZIS's 8/2 is "The SIF_SourceId is invalid": about the agent, never the request advice.
    unknown = zis_service.advice(("sif", 8, 2), conversion, object="StudentPersonal")
    assert source in unknown and "define the agent" in unknown and "PowerSchool SIF agent is running" not in unknown
    assert "user name and password" in zis_service.advice(("http", 500), conversion)
    assert "access control list" in zis_service.advice(("sif", 4, 5), conversion, object="StudentPersonal")
    assert "step 1" in zis_service.advice(("sif", 12, 3), conversion)
    assert "provide" in zis_service.advice(("sif", 6, 5), conversion, object="GradingAssignment")


# --- SifProcessRequest.php authenticateAgent: a missing credential is an HTTP 500, not a SIF answer --------------


def test_a_missing_credential_reads_as_such_not_only_retry_later(conversion):
    with ZisSimulator(
        SPEC,
        zone_id="ALPHA",
        profile="strict",
        agents=(zis_service.source_id(conversion),),
        credentials=("kimono", "s3cret"),
    ) as zis:
        conversion.zis_url, conversion.zone_id = zis.base_url + "/zones", "ALPHA"
        conversion.save()
        job = run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
        assert job.state == JobState.FAILED and job.detail["http_status"] == 500
        assert "user name and password" in job.error and "permissions" in job.error, job.error
        conversion.zis_username, conversion.zis_password = "kimono", "s3cret"
        conversion.save()
        job = run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
        assert job.state == JobState.SUCCEEDED, job.error


# --- the advice as a strict zone makes it read: Agent.php checkSourceId (8/2), Request.php (4/5) ---------------


def test_an_agent_the_zone_does_not_know_is_told_to_define_it(conversion):
    with ZisSimulator(SPEC, zone_id="ALPHA", profile="strict", agents=("SOMEONE_ELSE",)) as zis:
        conversion.zis_url, conversion.zone_id = zis.base_url + "/zones", "ALPHA"
        conversion.save()
        job = run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
    assert job.state == JobState.FAILED
    assert (job.detail["sif_error"]["category"], job.detail["sif_error"]["code"]) == (8, 2)
    assert "define the agent in the ZIS" in job.error and "PowerSchool SIF agent is running" not in job.error


def test_a_pull_of_an_object_outside_the_acl_says_which_permission_to_ask_for(conversion, strict_zone):
    strict_zone.zone.define_agent(
        zis_service.source_id(conversion),
        AgentAcl(request=tuple(n for n in DEFAULT_ACL.request if n != "StaffPersonal")),
    )
    job = run(conversion, JobKind.PULL, pull.run_pull)
    assert job.state == JobState.FAILED
    assert job.detail["sif_error"]["object"] == "StaffPersonal"
    assert "may not request StaffPersonal" in job.error and "access control list (ACL)" in job.error, job.error


def test_a_pull_whose_empty_answers_the_zone_dropped_says_they_may_be_empty(conversion):
    """response/Response.php setupResponseNew drops an answer without records; the default profile delivers it."""
    from conversion import jobs
    from conversion.jobs import JobFailed

    spec = DistrictSpec(students=10, schools=1, courses_per_school=0, sections_per_student=0, seed=8)
    empty = ["SchoolCourseInfo", "SectionInfo", "StudentSectionEnrollment", "GradingCategory"]
    for profile in ("default", "strict"):
        with ZisSimulator(spec, zone_id="ALPHA", profile=profile, agents=(zis_service.source_id(conversion),)) as zis:
            conversion.zis_url, conversion.zone_id = zis.base_url + "/zones", "ALPHA"
            conversion.save()
            job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
            if profile == "default":
                assert pull.pull(conversion, job=job, idle_timeout=5).counts.get("SectionInfo", 0) == 0
                job.state = "succeeded"  # done: one active pull at a time (the database refuses a second)
                job.save(update_fields=["state"])
                continue
            with pytest.raises(JobFailed) as failed:
                pull.pull(conversion, job=job, idle_timeout=0.5)
            assert len(zis.zone.dropped_empty) == len(empty)
    text = str(failed.value)
    assert text.startswith(f"No answer for {', '.join(empty)} within 0 s."), text
    assert "no records in PowerSchool" in text


# --- event/Event.php publishEvent: an event nobody subscribes to ends in a PHP fatal error ----------------------


@pytest.fixture
def zis_profile():
    return "strict"  # for the grade passback fixture borrowed below: this behaviour is the strict profile's


def test_grades_for_a_zone_where_powerschool_does_not_subscribe_fail_with_advice_and_go_later(paused, settings):
    from conversion.models import GpbStatus, GradePassbackItem
    from conversion.models import JobKind as Kind
    from conversion.services import gradepassback

    settings.ZIS_CLIENT_OPTIONS = {"timeout": 10.0, "retries": 1, "retry_delay": 0.01}
    conversion, zis, canvas, inbound = paused
    course, (s1, *_) = first_course(canvas)
    essay = canvas.add_assignment(
        f"sis_course_id:{course.sis_course_id}",
        name="Lab 9",
        points_possible=10,
        group="Homework",
        post_to_sis=True,
        due_at=DUE,
    )
    canvas.grade(essay.id, f"sis_user_id:{s1}", score=7)
    zis.zone.provider_subscribes = False  # PowerSchool's grade write-back is off: no subscriber at all
    job = run(conversion, Kind.GRADE_PASSBACK, gradepassback.run_grade_passback)
    # The plug-in check reads the zone's status before anything is sent, so the zone's HTTP 500 to an event no
    # one subscribes to (Event.php, see test_sif_openzis_gaps) is never met: the job says what is missing at once.
    assert job.state == JobState.FAILED and "no subscriber for GradingAssignment" in job.error, job.error
    assert "write-back is off" in job.error
    assert zis.grade_write_backs == []
    assert not GradePassbackItem.objects.filter(status=GpbStatus.ACCEPTED).exists()
    zis.zone.provider_subscribes = True
    again = run(conversion, Kind.GRADE_PASSBACK, gradepassback.run_grade_passback)
    assert again.state == JobState.SUCCEEDED, again.error
    assert [(w.object_name, w.action) for w in zis.grade_write_backs] == [
        ("GradingAssignment", "Add"),
        ("GradingAssignmentScore", "Add"),
    ]
