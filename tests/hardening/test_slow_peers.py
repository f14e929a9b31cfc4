"""Slow and oversized peers cannot hold a worker: every ZIS and Canvas request has a wall-clock limit (not only a
per-read timeout), Canvas answers are read up to a size limit, and a stuck Canvas import is waited on for a
bounded time (or until a consultant cancels), then aborted.

The hostile peers here are plain HTTP servers on 127.0.0.1 that trickle their answer a byte at a time (a
per-read timeout never trips) or answer without end.
"""

from __future__ import annotations

import io
import socketserver
import threading
import time
import zipfile

import pytest

from canvas.client import CanvasClient
from canvas.errors import CanvasResponseTooLargeError, CanvasRetriesExhaustedError
from canvas.simulator import CanvasSimulator
from conversion import jobs
from conversion.models import Job, JobKind, JobState
from conversion.services import canvas_import, connection
from sifclient import HttpTransport
from sifclient.errors import ZisTimeoutError
from tests.conversion.jobhelpers import run

pytestmark = pytest.mark.django_db(transaction=True)
DRIP_SECONDS = 0.2  # between two bytes: far below any per-read timeout
DRIP_BYTES = 150  # so a whole trickled answer would take 30 s


class Trickle(socketserver.ThreadingTCPServer):
    """Answers every request by sending `answer` one byte every DRIP_SECONDS (headers first, or all of it)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer: bytes, *, headers_at_once: bool):
        self.answer, self.headers_at_once, self.stop = answer, headers_at_once, threading.Event()
        self.connections = 0
        super().__init__(("127.0.0.1", 0), _TrickleHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.shutdown()
        self.server_close()


class _TrickleHandler(socketserver.StreamRequestHandler):
    def handle(self):
        server: Trickle = self.server
        server.connections += 1
        self.request.recv(65536)  # the request (small here)
        answer = server.answer
        if server.headers_at_once:
            head, _, body = answer.partition(b"\r\n\r\n")
            self.wfile.write(head + b"\r\n\r\n")
            answer = body
        try:
            for i in range(len(answer)):
                if server.stop.wait(DRIP_SECONDS):
                    return
                self.wfile.write(answer[i : i + 1])
                self.wfile.flush()
        except OSError:
            return  # the client gave up: what the limit is for


def http_answer(body: bytes, content_type: str = "application/xml") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: "
        + content_type.encode()
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


@pytest.mark.parametrize("headers_at_once", [True, False], ids=["body-trickled", "headers-trickled"])
def test_a_zis_answering_a_byte_at_a_time_is_cut_off(headers_at_once):
    with Trickle(
        http_answer(b"<SIF_Message>" + b" " * DRIP_BYTES + b"</SIF_Message>"), headers_at_once=headers_at_once
    ) as zis:
        transport = HttpTransport(zis.url + "/zones/ALPHA", timeout=1.0)
        with pytest.raises(ZisTimeoutError):
            transport.post(b"<SIF_Message/>")
        transport.close()


def test_a_connection_test_against_a_trickling_zis_fails_as_timed_out(conversion, settings):
    settings.ZIS_CLIENT_OPTIONS = {"timeout": 1.0, "retries": 1, "retry_delay": 0.01}
    with Trickle(http_answer(b"<SIF_Message>" + b" " * DRIP_BYTES + b"</SIF_Message>"), headers_at_once=True) as zis:
        conversion.zis_url, conversion.zone_id = zis.url + "/zones", "ALPHA"
        conversion.save()
        job = run(conversion, JobKind.TEST_CONNECTION, connection.run_test_connection)
    assert job.state == JobState.FAILED
    assert "timed out" in job.error and "within 1 s" in job.error, job.error
    assert zis.connections == 2  # the first try and the one retry, each cut off


@pytest.mark.parametrize("headers_at_once", [True, False], ids=["body-trickled", "headers-trickled"])
def test_a_canvas_answering_a_byte_at_a_time_is_cut_off(headers_at_once):
    with Trickle(
        http_answer(b'{"id": 1, "padding": "' + b"x" * DRIP_BYTES + b'"}', "application/json"),
        headers_at_once=headers_at_once,
    ) as canvas:
        with CanvasClient(canvas.url, "token", timeout=5.0, deadline=1.0, max_retries=1, sleep=lambda s: None) as api:
            with pytest.raises(CanvasRetriesExhaustedError) as failed:
                api.get_sis_import("self", 1)
    assert "timed out" in failed.value.last_problem
    assert canvas.connections == 2


class Endless(socketserver.ThreadingTCPServer):
    """A Canvas whose JSON answer never ends (chunked, no Content-Length), as fast as the client reads."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.sent = 0
        super().__init__(("127.0.0.1", 0), _EndlessHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class _EndlessHandler(socketserver.StreamRequestHandler):
    def handle(self):
        self.request.recv(65536)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"[" + b'{"id": 1}, ' * 6000
        try:
            while self.server.sent < 256 * 1024**2:  # 256 MB at most, should the client read it all
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.server.sent += len(chunk)
                chunk = b'{"id": 1}, ' * 6000
        except OSError:
            return


def test_a_canvas_answer_over_the_size_limit_is_read_no_further():
    with Endless() as canvas:
        url = f"http://127.0.0.1:{canvas.server_address[1]}"
        with CanvasClient(url, "token", max_retries=0, sleep=lambda s: None) as api:
            api._t.max_response_bytes = 2 * 1024 * 1024
            with pytest.raises(CanvasResponseTooLargeError):
                list(api.iter_users("self"))
        time.sleep(0.2)
        assert canvas.sent < 64 * 1024 * 1024  # the client stopped reading near the limit, not at the end


def test_a_declared_oversized_canvas_answer_is_refused_before_reading():
    body = b"[" + b"0," * 10 + b"0]"
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n" + body
    with Trickle(answer, headers_at_once=True) as canvas:
        with CanvasClient(canvas.url, "token", max_retries=0, sleep=lambda s: None) as api:
            with pytest.raises(CanvasResponseTooLargeError):
                api.get_sis_import("self", 1)


# ---- a stuck Canvas import -------------------------------------------------------------------------------


def roster_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("users.csv", "user_id,login_id,first_name,last_name,status\nu1,u1,A,B,active\n")
    return buffer.getvalue()


@pytest.fixture
def stuck_import():
    with CanvasSimulator(token="t") as sim:
        sim.pause_imports()  # the import stays "created", as a stuck Canvas import queue leaves it
        with CanvasClient(sim.url, "t") as api:
            started = api.create_sis_import("self", roster_zip())
            yield sim, api, started.id
        sim.resume_imports()


def running_job(conversion):
    job, _ = jobs.start_job(conversion, JobKind.SYNC, enqueue=False)
    assert job.claim(jobs.worker_name())
    return job


def test_a_stuck_canvas_import_is_waited_on_for_a_bounded_time_then_aborted(conversion, stuck_import):
    sim, api, import_id = stuck_import
    job = running_job(conversion)
    with pytest.raises(jobs.JobFailed) as failed:
        canvas_import.wait(api, "self", import_id, jobs.Progress(job), label="Sync", poll_interval=0.1, limit=0.5)
    assert f"Canvas import {import_id} was still created" in str(failed.value) and "aborted" in str(failed.value)
    assert api.get_sis_import("self", import_id).workflow_state == "aborted"


def test_the_wait_limit_counts_from_the_first_poll_of_the_job_not_of_the_rerun(conversion, stuck_import):
    sim, api, import_id = stuck_import
    job = running_job(conversion)
    # A run killed earlier had started waiting on this import long ago; the rerun does not wait afresh.
    job.merge_detail({"import_wait_started": time.time() - 3600})
    with pytest.raises(jobs.JobFailed):
        canvas_import.wait(api, "self", import_id, jobs.Progress(job), label="Sync", poll_interval=0.1, limit=60)


def test_a_consultant_cancel_stops_the_wait_at_the_next_poll(conversion, consultant, stuck_import):
    sim, api, import_id = stuck_import
    job = running_job(conversion)
    polls = []
    real_get = api.get_sis_import

    def get(account, import_id):
        polls.append(1)
        if len(polls) == 3:
            jobs.cancel_job(Job.objects.get(pk=job.pk), user=consultant)
        return real_get(account, import_id)

    api.get_sis_import = get
    with pytest.raises(jobs.JobCancelled):
        canvas_import.wait(api, "self", import_id, jobs.Progress(job), label="Sync", poll_interval=0.05, limit=600)
    assert len(polls) == 3
    assert real_get("self", import_id).workflow_state == "aborted"


# ---- a zone that goes quiet, or never finishes ------------------------------------------------------------


@pytest.fixture
def quiet_zone(conversion, monkeypatch):
    """A real simulated zone that takes the registration and the requests, then delivers nothing more."""
    from sifclient import Agent
    from sifclient.agent import DrainStats
    from sifclient.powerschool import DistrictSpec
    from tests.conversion.simulators import simulated_district

    drains = []

    def quiet(self, handler, **kwargs):  # the zone's queue is empty: status 9, as drain reports it
        drains.append(1)
        return DrainStats(stopped_by="empty")

    monkeypatch.setattr(Agent, "drain", quiet)
    with simulated_district(
        conversion, DistrictSpec(students=5, schools=1, school_year=2027, seed=3), seed_canvas=False
    ):
        yield drains


def test_a_consultant_cancel_reaches_a_pull_waiting_on_a_quiet_zone(conversion, consultant, quiet_zone, monkeypatch):
    from conversion.services import pull

    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)

    def cancel_on_third_drain(self, handler, **kwargs):
        quiet_zone.append(1)
        if len(quiet_zone) == 3:
            jobs.cancel_job(Job.objects.get(pk=job.pk), user=consultant)
        return DrainStats(stopped_by="empty")

    from sifclient import Agent
    from sifclient.agent import DrainStats

    monkeypatch.setattr(Agent, "drain", cancel_on_third_drain)
    monkeypatch.setattr(pull, "POLL_SECONDS", 0.01)
    jobs.run_job(job.pk, lambda j, progress: pull.pull(j.conversion, job=j, progress=progress, idle_timeout=5))
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED, job.error
    assert len(quiet_zone) < 50  # stopped at the next step, not at the idle timeout


def test_a_pull_has_a_wall_clock_limit_however_its_zone_keeps_it_going(conversion, quiet_zone, settings, monkeypatch):
    from conversion.services import pull

    settings.PULL_MAX_SECONDS = 0.2
    monkeypatch.setattr(pull, "POLL_SECONDS", 0.05)
    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    # The idle timeout is far away (as when a packet trickles in now and then): the overall limit ends it.
    jobs.run_job(job.pk, lambda j, progress: pull.pull(j.conversion, job=j, progress=progress, idle_timeout=30))
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "the longest a pull may run" in job.error, job.error
