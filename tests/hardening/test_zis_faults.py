"""A ZIS that is down, slow, failing in HTTP or answering SIF_Errors of every category, through real product
jobs (pull and connection test): bounded attempts, a job error a consultant can act on, nothing complete.

The fake ZIS below is the simulator's own Zone (the real pull protocol, a tiny district) behind an HTTP server
that can delay, hang, drop, answer HTTP errors or garbage, or answer with a SIF_Error it builds with sifclient's
builders; every message it builds itself is checked against the SIF 2.4 schema.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from lxml import etree

from conversion.models import JobKind, JobState, ReceivedMessage, SifRecord, Snapshot, SnapshotState
from conversion.services import connection, pull
from conversion.services.zis import PULL_OBJECTS, source_id
from sifclient import HttpTransport, SifErrorInfo
from sifclient import errors as E
from sifclient.messages import STATUS_SUCCESS, build_ack, build_response, read_message
from sifclient.powerschool import District as SimDistrict
from sifclient.powerschool import DistrictSpec
from sifclient.safexml import parse_message_bytes, q
from sifclient.streaming import scan_message
from sifclient.zis.zone import Zone
from tests.conversion.jobhelpers import run
from tests.sifclient.sifschema import is_valid

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = DistrictSpec(
    students=6,
    schools=1,
    courses_per_school=2,
    sections_per_course=1,
    sections_per_student=2,
    teachers_per_school=2,
    school_year=2027,
    seed=11,
)
ZIS_ID = "FAULTY_ZIS"
MIDDLE = "StaffPersonal"  # an object in the middle of the pull: requested after five others
RETRIES = 2  # the test setting: every message is sent at most three times
HANG_GUARD = 30.0  # seconds: a failing job that took longer than this "hung" (a generous bound)
JOBS = {JobKind.PULL: pull.run_pull, JobKind.TEST_CONNECTION: connection.run_test_connection}

# SIF 2.x error categories 1-13 (infrastructure error tables; /work/shared/sif/README.md): a common code of
# each, the SIF_Desc the fake sends, the category in plain words and a word of the advice that must follow.
CATEGORIES = {
    1: (3, "Generic validation error", "XML validation", "SIF version"),
    2: (1, "Generic encryption error", "Encryption", "encryption level"),
    3: (4, "Invalid certificate", "Authentication", "password"),
    4: (5, "No permission to request this object", "Access and permissions", "access control list (ACL)"),
    5: (2, "The SIF_SourceId is invalid", "Registration", "SourceId"),
    6: (3, "Invalid object", "Provisioning", "must provide"),
    7: (3, "Invalid object", "Subscription", "subscribe"),
    8: (4, "No provider", "Request and response", "PowerSchool SIF agent is running"),
    9: (3, "Invalid event", "Event reporting and processing", "event permissions"),
    10: (4, "Unable to establish connection", "Transport", "PowerSchool SIF agent"),
    11: (1, "Database unavailable", "System", "transient: retry later"),
    12: (5, "Protocol error", "Generic message handling", "SIF version"),
    13: (4, "Incorrect SIF_MsgId in final SIF_Ack", "SMB handling", "queue"),
}


@dataclass
class Fault:
    """What the fake does with one message instead of (or besides) passing it to the zone."""

    delay: float = 0.0  # answer normally, this much later
    hang: float = 0.0  # say nothing for this long (the client times out first)
    drop: bool = False  # close the connection without an answer
    status: int = 200  # an HTTP error status instead of the zone's answer ...
    body: bytes | None = None  # ... or with this body instead of the zone's answer
    processed: bool = False  # the zone did handle the message before the status/body went out
    error: SifErrorInfo | None = None  # a SIF_Ack with this SIF_Error answers the message
    response_error: SifErrorInfo | None = None  # a delivered SIF_Response is replaced by one with this error


Plan = Callable[[str, int], Fault | None]  # (message key, how many times that key came so far) -> fault


class FaultyZis(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, plan: Plan | None = None, *, zone_id: str = "ALPHA"):
        self.zone = Zone(zone_id, SPEC, zis_source_id=ZIS_ID)
        self.plan = plan or (lambda key, n: None)
        self.counts: collections.Counter = collections.Counter()
        self.faults: collections.Counter = collections.Counter()
        self.built: list[bytes] = []  # what the fake built itself (not the zone)
        self.release = threading.Event()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/zones"

    def __enter__(self) -> FaultyZis:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()

    def build(self, outgoing) -> bytes:
        self.built.append(outgoing.data)
        return outgoing.data

    def invalid_built(self) -> list[bytes]:
        return [data for data in self.built if not is_valid(data)]


def message_key(body: bytes) -> tuple[str, object]:
    """SIF_Register, SIF_Request:<object>, SIF_GetMessage, SIF_Ack, ... and the parsed envelope."""
    info = read_message(parse_message_bytes(body))
    if info.kind == "SIF_Request":
        query_object = info.body.find(q("SIF_Query")).find(q("SIF_QueryObject"))
        return f"SIF_Request:{query_object.get('ObjectName')}", info
    if info.kind == "SIF_SystemControl":
        return etree.QName(info.body.find(q("SIF_SystemControlData"))[0]).localname, info
    return info.kind, info


class _Handler(BaseHTTPRequestHandler):
    server: FaultyZis

    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        zis = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key, info = message_key(body)
        with zis.lock:
            zis.counts[key] += 1
            fault = zis.plan(key, zis.counts[key])
            if fault is not None:
                zis.faults[key] += 1
        if fault is None:
            return self.answer(200, zis.zone.handle(body))
        if fault.hang:
            zis.release.wait(fault.hang)
            return  # the client gave up long ago: no answer at all
        if fault.drop:
            self.close_connection = True
            return
        time.sleep(fault.delay)
        if fault.error is not None:
            return self.answer(
                200,
                zis.build(
                    build_ack(ZIS_ID, original_source_id=info.source_id, original_msg_id=info.msg_id, error=fault.error)
                ),
            )
        answer = zis.zone.handle(body) if (fault.processed or fault.body is None) else b""
        if fault.response_error is not None:
            answer = self.with_response_error(answer, info, fault.response_error)
        self.answer(fault.status, answer if fault.body is None else fault.body)

    def with_response_error(self, answer: bytes, info, error: SifErrorInfo) -> bytes:
        """The zone's SIF_GetMessage answer, its SIF_Response replaced by one carrying `error` (same SIF_MsgId,
        so our agent's ack takes the packet off the zone's queue)."""
        delivered = scan_message(answer).delivered
        assert delivered is not None and delivered.kind == "response" and not delivered.more_packets
        response = build_response(
            delivered.source_id,
            destination_id=info.source_id,
            request_msg_id=delivered.request_msg_id,
            packet_number=delivered.packet_number,
            more_packets=False,
            error=error,
            msg_id=delivered.msg_id,
        )
        self.server.built.append(response.data)
        return self.server.build(
            build_ack(
                ZIS_ID,
                original_source_id=info.source_id,
                original_msg_id=info.msg_id,
                status_code=STATUS_SUCCESS,
                data=etree.fromstring(response.data),
            )
        )

    def answer(self, status: int, data: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/xml" if data.lstrip().startswith(b"<?xml") else "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client is gone


@pytest.fixture(autouse=True)
def quick_zis(settings):
    settings.ZIS_CLIENT_OPTIONS = {"timeout": 2.0, "retries": RETRIES, "retry_delay": 0.01}


def point_at(conversion, url: str, zone_id: str = "ALPHA"):
    conversion.zis_url = url
    conversion.zone_id = zone_id
    conversion.save()
    return conversion


def run_against(conversion, zis: FaultyZis, kind=JobKind.PULL):
    point_at(conversion, zis.url)
    started = time.monotonic()
    job = run(conversion, kind, JOBS[kind])
    assert time.monotonic() - started < HANG_GUARD, "the job did not give up in a bounded time"
    return job


def assert_nothing_complete(conversion) -> None:
    assert not Snapshot.objects.filter(conversion=conversion, state=SnapshotState.COMPLETE).exists()
    assert Snapshot.objects.latest_complete(conversion) is None


def assert_stored_once(snapshot) -> None:
    expected = SimDistrict(SPEC).counts()
    assert snapshot.state == SnapshotState.COMPLETE
    assert snapshot.counts == expected
    records = SifRecord.objects.filter(snapshot=snapshot)
    assert records.count() == sum(expected.values())
    assert records.values("object_name", "ref_id").distinct().count() == sum(expected.values())


def on(key: str, fault: Fault, *, times: int | None = None, after: int = 0) -> Plan:
    """A plan: `fault` for message `key` from its (after+1)-th occurrence on, `times` times (None: always)."""

    def plan(seen: str, n: int) -> Fault | None:
        if seen == key and n > after and (times is None or n <= after + times):
            return fault
        return None

    return plan


def every(*plans: Plan) -> Plan:
    def plan(key: str, n: int) -> Fault | None:
        return next((f for f in (p(key, n) for p in plans) if f is not None), None)

    return plan


# ---- slow -------------------------------------------------------------------------------------------


def test_a_slow_zis_within_the_timeout_still_gets_a_complete_pull(conversion, settings):
    slow = Fault(delay=0.6)  # well under the 2 s timeout, far slower than a ZIS answers
    plan = every(
        on("SIF_Register", slow),
        on(f"SIF_Request:{MIDDLE}", slow),
        on("SIF_GetMessage", slow, times=2),
        lambda key, n: Fault(delay=0.03),
    )
    with FaultyZis(plan) as zis:
        job = run_against(conversion, zis)
    assert job.state == JobState.SUCCEEDED, job.error
    assert_stored_once(job.snapshots.get())
    assert zis.counts["SIF_Register"] == 1 and zis.counts[f"SIF_Request:{MIDDLE}"] == 1  # nothing sent twice
    assert ReceivedMessage.objects.filter(kind="response").count() == len(PULL_OBJECTS)


def test_a_zis_slower_than_the_timeout_fails_the_pull_after_bounded_attempts(conversion, settings):
    settings.ZIS_CLIENT_OPTIONS = {"timeout": 0.3, "retries": RETRIES, "retry_delay": 0.01}
    # Three packets come in, then the ZIS stops answering SIF_GetMessage in time.
    with FaultyZis(on("SIF_GetMessage", Fault(hang=5.0), after=3)) as zis:
        job = run_against(conversion, zis)
    assert job.state == JobState.FAILED
    assert "timed out" in job.error and "within 0.3 s" in job.error, job.error
    assert f"on each of {RETRIES + 1} attempts" in job.error and "SIF_GetMessage" in job.error, job.error
    assert zis.faults["SIF_GetMessage"] == RETRIES + 1  # the same GetMessage, sent three times, no more
    assert job.detail["error_kind"] == "timeout" and job.detail["attempts"] == RETRIES + 1
    assert job.detail["timeout_seconds"] == 0.3
    assert_nothing_complete(conversion)
    assert job.snapshots.get().state == SnapshotState.RECEIVING  # what came in waits for the late answers
    assert ReceivedMessage.objects.filter(kind="response").count() == 3  # stored once each, acked

    # Once the ZIS answers again, the next pull completes with every record once.
    settings.ZIS_CLIENT_OPTIONS = {"timeout": 2.0, "retries": RETRIES, "retry_delay": 0.01}
    with FaultyZis() as healthy:
        healthy.zone = zis.zone  # the same zone, its queue as the timed-out pull left it
        again = run_against(conversion, healthy)
    assert again.state == JobState.SUCCEEDED, again.error
    assert_stored_once(again.snapshots.get())


@pytest.mark.parametrize("kind", JOBS)
def test_a_zis_that_never_answers_the_registration_fails_the_job(conversion, settings, kind):
    settings.ZIS_CLIENT_OPTIONS = {"timeout": 0.3, "retries": RETRIES, "retry_delay": 0.01}
    with FaultyZis(on("SIF_Register", Fault(hang=5.0))) as zis:
        job = run_against(conversion, zis, kind)
    assert job.state == JobState.FAILED
    assert "timed out" in job.error and "registration (SIF_Register) within 0.3 s" in job.error, job.error
    assert zis.counts["SIF_Register"] == RETRIES + 1 and sum(zis.counts.values()) == RETRIES + 1
    assert_nothing_complete(conversion)


# ---- down, dropping, HTTP errors, not XML -----------------------------------------------------------------


def test_a_zis_that_is_down_fails_the_pull_after_bounded_attempts(conversion, monkeypatch):
    with FaultyZis() as gone:
        url = gone.url  # a port that was just free and is closed again: connections are refused
    posts = []
    real_post = HttpTransport.post
    monkeypatch.setattr(HttpTransport, "post", lambda self, data: posts.append(data) or real_post(self, data))
    point_at(conversion, url)
    started = time.monotonic()
    job = run(conversion, JobKind.PULL, pull.run_pull)
    assert time.monotonic() - started < HANG_GUARD
    assert job.state == JobState.FAILED
    assert f"Could not reach the ZIS at {url}/ALPHA (on each of {RETRIES + 1} attempts)" in job.error, job.error
    assert "Connection refused" in job.error or "connect" in job.error
    assert len(posts) == RETRIES + 1 and len(set(posts)) == 1  # one SIF_Register, sent three times
    assert job.detail["error_kind"] == "transport"
    assert not SifRecord.objects.exists()
    assert_nothing_complete(conversion)


def test_a_zis_that_drops_connections_mid_pull_fails_after_bounded_attempts(conversion):
    with FaultyZis(on("SIF_GetMessage", Fault(drop=True), after=4)) as zis:
        job = run_against(conversion, zis)
    assert job.state == JobState.FAILED
    assert job.error.startswith(f"Could not reach the ZIS at {zis.url}/ALPHA (on each of {RETRIES + 1} attempts)")
    assert zis.faults["SIF_GetMessage"] == RETRIES + 1
    assert_nothing_complete(conversion)


PROXY_PAGE = b"<html><body><h1>503 Service Temporarily Unavailable</h1>nginx</body></html>"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_zis_that_keeps_failing_in_http_fails_the_pull_after_bounded_attempts(conversion, status):
    with FaultyZis(on(f"SIF_Request:{MIDDLE}", Fault(status=status, body=PROXY_PAGE))) as zis:
        job = run_against(conversion, zis)
    assert job.state == JobState.FAILED
    assert f"answered HTTP {status} to our SIF_Request, on each of {RETRIES + 1} attempts" in job.error, job.error
    assert "retry later" in job.error
    assert zis.counts[f"SIF_Request:{MIDDLE}"] == RETRIES + 1
    assert not any(
        k.startswith("SIF_Request:") and k != f"SIF_Request:{MIDDLE}" and n > 1 for k, n in zis.counts.items()
    )
    assert job.detail["error_kind"] == "http_status" and job.detail["http_status"] == status
    assert not SifRecord.objects.exists()  # the requests come first: nothing was read yet
    assert_nothing_complete(conversion)


def test_http_errors_that_pass_are_retried_and_the_pull_completes_once(conversion):
    plan = every(
        on("SIF_Register", Fault(status=503, body=PROXY_PAGE), times=2),  # not processed
        on(f"SIF_Request:{MIDDLE}", Fault(status=502, body=PROXY_PAGE, processed=True), times=1),  # processed
        on("SIF_GetMessage", Fault(status=500, body=b"oops"), after=2, times=1),
        on("SIF_Ack", Fault(status=503, body=PROXY_PAGE, processed=True), after=3, times=1),  # ack taken, then 503
    )
    with FaultyZis(plan) as zis:
        job = run_against(conversion, zis)
    assert job.state == JobState.SUCCEEDED, job.error
    assert sum(zis.faults.values()) == 5
    assert_stored_once(job.snapshots.get())


@pytest.mark.parametrize(
    "status,advice", [(404, "Check the ZIS URL and the Zone ID"), (401, "Check the ZIS user name and password")]
)
def test_http_client_errors_are_not_retried(conversion, status, advice):
    with FaultyZis(on("SIF_Register", Fault(status=status, body=b"no"))) as zis:
        job = run_against(conversion, zis, JobKind.TEST_CONNECTION)
    assert job.state == JobState.FAILED
    assert f"answered HTTP {status} to our registration (SIF_Register), once. {advice}" in job.error, job.error
    assert zis.counts["SIF_Register"] == 1


NOT_XML = {
    "proxy page": PROXY_PAGE,
    "plain text": b"Service temporarily unavailable",
    "empty": b"",
    "json": b'{"error": "zone offline"}',
}


@pytest.mark.parametrize("kind", sorted(NOT_XML))
def test_a_zis_answering_something_not_xml_fails_the_pull_clearly(conversion, kind):
    with FaultyZis(on(f"SIF_Request:{MIDDLE}", Fault(body=NOT_XML[kind]))) as zis:
        job = run_against(conversion, zis)
    assert job.state == JobState.FAILED
    assert job.error.startswith("The ZIS answered something that is not valid SIF"), job.error
    assert "not a web page" in job.error
    assert zis.counts[f"SIF_Request:{MIDDLE}"] == 1  # the same bytes would come back: not retried
    assert not SifRecord.objects.exists()
    assert_nothing_complete(conversion)


# ---- SIF_Error of every category ----------------------------------------------------------------------


def sif_error(category: int) -> SifErrorInfo:
    code, desc, _, _ = CATEGORIES[category]
    return SifErrorInfo(category, code, f"{desc} (fake ZIS)", f"extended text for category {category}")


def assert_clear_sif_failure(job, zis: FaultyZis, category: int, *, during: str, object_name: str | None) -> None:
    code, desc, words, advice = CATEGORIES[category]
    assert job.state == JobState.FAILED
    assert f"{words}" in job.error and f"(category {category}, code {code})" in job.error, job.error
    assert f"{desc} (fake ZIS)" in job.error  # the ZIS's own SIF_Desc
    assert "What to do:" in job.error and advice in job.error, job.error
    assert words in job.message  # the one line the page shows names the category too
    facts = job.detail["sif_error"]
    assert (facts["category"], facts["code"], facts["during"], facts["object"]) == (category, code, during, object_name)
    assert facts["description"].startswith(f"{desc} (fake ZIS)")
    assert job.detail["error_kind"] == "sif"
    assert zis.built and not zis.invalid_built(), zis.invalid_built()[:1]  # sifclient-built, schema-valid
    assert_nothing_complete(job.conversion)


@pytest.mark.parametrize("kind", JOBS)
@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_a_sif_error_answering_the_registration_fails_the_job(conversion, category, kind):
    with FaultyZis(on("SIF_Register", Fault(error=sif_error(category)))) as zis:
        job = run_against(conversion, zis, kind)
    assert_clear_sif_failure(job, zis, category, during="SIF_Register", object_name=None)
    assert "registration (SIF_Register)" in job.error
    assert dict(zis.counts) == {"SIF_Register": 1}  # not retried, nothing sent after it


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_a_sif_error_answering_a_request_fails_the_pull(conversion, category):
    with FaultyZis(on(f"SIF_Request:{MIDDLE}", Fault(error=sif_error(category)))) as zis:
        job = run_against(conversion, zis)
    assert_clear_sif_failure(job, zis, category, during="SIF_Request", object_name=MIDDLE)
    assert f"our request for {MIDDLE} (SIF_Request)" in job.error
    assert zis.counts[f"SIF_Request:{MIDDLE}"] == 1 and zis.counts["SIF_Register"] == 1
    assert "SIF_GetMessage" not in zis.counts  # the pull stopped at the refusal
    assert not SifRecord.objects.exists()


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_a_sif_response_carrying_a_sif_error_mid_pull_fails_the_pull(conversion, category):
    with FaultyZis() as zis:

        def plan(key: str, n: int) -> Fault | None:
            # The SIF_GetMessage that is to deliver MIDDLE's answer gets a SIF_Response with SIF_Error instead.
            agent = zis.zone.agents.get(source_id(conversion))
            head = zis.zone._head(agent) if agent is not None and key == "SIF_GetMessage" else None
            if getattr(head, "object_name", None) == MIDDLE:
                return Fault(response_error=sif_error(category))
            return None

        zis.plan = plan
        job = run_against(conversion, zis)
    assert_clear_sif_failure(job, zis, category, during="SIF_Response", object_name=MIDDLE)
    assert f"The zone answered our request for {MIDDLE} (SIF_Response)" in job.error
    assert "kept aside and not used" in job.error
    assert zis.faults["SIF_GetMessage"] == 1  # delivered once, acked once, never asked for again
    assert all(n == 1 for k, n in zis.counts.items() if k.startswith("SIF_Request:"))
    snapshot = job.snapshots.get()
    assert snapshot.state == SnapshotState.FAILED
    assert not SifRecord.objects.filter(snapshot=snapshot, object_name=MIDDLE).exists()
    assert snapshot.requests[MIDDLE]["error"].startswith(f"SIF error category {category} ")
    assert not zis.zone.agents[source_id(conversion)].queue  # nothing left blocking the agent's queue


@pytest.mark.parametrize("key", [f"SIF_Request:{MIDDLE}", "SIF_GetMessage"])
def test_a_zis_that_keeps_forgetting_the_agent_gets_one_re_registration(conversion, key):
    """4/9 'SIF_SourceId is not registered' (what a restarted ZIS answers, the code the agent re-registers on) is
    not retried without bound either: one re-registration, the message once more, then the job fails."""
    forgotten = SifErrorInfo(E.CAT_ACCESS, E.CODE_ACCESS_SOURCE_ID_NOT_REGISTERED, "SIF_SourceId is not registered")
    with FaultyZis(on(key, Fault(error=forgotten))) as zis:
        job = run_against(conversion, zis)
    assert job.state == JobState.FAILED
    assert "Access and permissions error" in job.error and "(category 4, code 9)" in job.error, job.error
    assert "does not know agent" in job.error and "re-register" in job.error, job.error
    assert zis.counts["SIF_Register"] == 2 and zis.counts[key] == 2
    assert (job.detail["sif_error"]["category"], job.detail["sif_error"]["code"]) == (4, 9)
    assert_nothing_complete(conversion)


@pytest.mark.parametrize("key", [f"SIF_Request:{MIDDLE}", "SIF_GetMessage"])
def test_a_zis_that_forgot_the_agent_once_gets_a_complete_pull(conversion, key):
    """One 4/9 mid-pull (a ZIS that lost its registrations): the agent registers again, the message goes once
    more and the pull completes."""
    forgotten = SifErrorInfo(E.CAT_ACCESS, E.CODE_ACCESS_SOURCE_ID_NOT_REGISTERED, "SIF_SourceId is not registered")
    with FaultyZis(on(key, Fault(error=forgotten), times=1)) as zis:
        job = run_against(conversion, zis)
    assert job.state == JobState.SUCCEEDED, job.error
    assert zis.counts["SIF_Register"] == 2 and zis.faults[key] == 1
    assert_stored_once(job.snapshots.get())


def test_a_zis_that_holds_the_agent_in_push_mode_fails_the_pull_without_re_registering(conversion):
    """5/9 'Agent is registered for Push mode' answers SIF_GetMessage: not a lost registration, no loop."""
    push = SifErrorInfo(E.CAT_REGISTRATION, E.CODE_REG_REGISTERED_FOR_PUSH, "Agent is registered for Push mode")
    with FaultyZis(on("SIF_GetMessage", Fault(error=push))) as zis:
        job = run_against(conversion, zis)
    assert job.state == JobState.FAILED
    assert "Registration error" in job.error and "(category 5, code 9)" in job.error, job.error
    assert "Pull mode in the ZIS agent settings" in job.error, job.error
    assert zis.counts["SIF_Register"] == 1 and zis.counts["SIF_GetMessage"] == 1
    assert job.detail["sif_error"]["during"] == "SIF_GetMessage"
    assert_nothing_complete(conversion)
