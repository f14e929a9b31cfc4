"""HTTP Basic credentials reach a ZIS that asks for them; a wrong password is a clear HTTP error."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sifclient import HttpTransport, ZisHttpStatusError

EXPECTED = "Basic " + base64.b64encode(b"agent:s3cret").decode()


class _Guarded(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ok = self.headers.get("Authorization") == EXPECTED
        body = b"<ok/>" if ok else b""
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def guarded_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Guarded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/zones/Z"
    server.shutdown()
    server.server_close()


def test_basic_credentials_are_sent(guarded_url):
    with HttpTransport(guarded_url, auth=("agent", "s3cret")) as transport:
        assert transport.post(b"<x/>") == b"<ok/>"


def test_wrong_credentials_are_a_clear_error(guarded_url):
    with pytest.raises(ZisHttpStatusError) as info, HttpTransport(guarded_url, auth=("agent", "nope")) as transport:
        transport.post(b"<x/>")
    assert info.value.status_code == 401
    assert "s3cret" not in str(info.value) and "nope" not in str(info.value)
