"""A ZIS that answers SIF_GetMessage with a 1 GB body: the pull stops reading at the message limit, fails
clearly, stores nothing, and its memory stays flat (the body is never held whole)."""

from __future__ import annotations

import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conversion.models import JobState, ReceivedMessage, SifRecord, Snapshot, SnapshotState
from tests.hardening.fakezis import ack_for, pull_against

pytestmark = pytest.mark.django_db(transaction=True)

GIGABYTE = 1 << 30
CHUNK = b"<x>" + b"a" * 65_530 + b"</x>"  # 64 KiB of well-formed XML, sent again and again


class EndlessZis(ThreadingHTTPServer):
    """Acks register and requests; answers SIF_GetMessage with a 1 GB chunked body (no Content-Length)."""

    def __init__(self):
        self.sent = 0
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if b"SIF_GetMessage" not in body:
            answer = ack_for(body, "ENDLESS_ZIS")
            self.send_response(200)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        head = b'<SIF_Message xmlns="http://www.sifinfo.org/infrastructure/2.x" Version="2.4"><SIF_Ack>'
        try:
            for piece in [head] + [CHUNK] * (GIGABYTE // len(CHUNK)):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.server.sent += len(piece)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            pass  # the agent hung up once it had read its limit: what the test wants
        self.close_connection = True


def test_a_1_gb_answer_is_cut_off_at_the_limit_with_flat_memory(conversion):
    server = EndlessZis()
    tracemalloc.start()
    try:
        job = pull_against(server, conversion)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job.state == JobState.FAILED
    assert "over" in job.error and "bytes" in job.error, job.error
    # The agent read a few MB of the gigabyte (the limit plus what was in flight), never the whole of it.
    assert 0 < server.sent < 64 * 2**20, server.sent
    assert peak < 64 * 2**20, f"peak Python allocation {peak / 2**20:.0f} MiB"
    assert not SifRecord.objects.exists() and not ReceivedMessage.objects.exists()
    assert not Snapshot.objects.filter(state=SnapshotState.COMPLETE).exists()
