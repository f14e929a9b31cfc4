"""A ZIS that answers SIF_GetMessage with hostile XML: the pull fails clearly and stores nothing from it."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conversion.models import JobState, ReceivedMessage, SifRecord
from tests.hardening.fakezis import ack_for, pull_against

pytestmark = pytest.mark.django_db(transaction=True)
NS = 'xmlns="http://www.sifinfo.org/infrastructure/2.x"'
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    f'<SIF_Message {NS} Version="2.4"><SIF_Ack><SIF_OriginalMsgId>&lol2;</SIF_OriginalMsgId>'
    "</SIF_Ack></SIF_Message>"
).encode()
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    f'<SIF_Message {NS} Version="2.4"><SIF_Ack><SIF_OriginalMsgId>&x;</SIF_OriginalMsgId></SIF_Ack>'
    "</SIF_Message>"
).encode()
HOSTILE = {
    "entity expansion": BILLION_LAUGHS,
    "external entity": EXTERNAL,
    "huge body": b'<?xml version="1.0"?><SIF_Message '
    + NS.encode()
    + b"><SIF_Ack>"
    + b"<x>a</x>" * 700_000
    + b"</SIF_Ack></SIF_Message>",
    "invalid encoding": b'<?xml version="1.0" encoding="UTF-8"?><SIF_Message '
    + NS.encode()
    + b"><SIF_Ack><SIF_Desc>\xff\xfe\xc3</SIF_Desc></SIF_Ack></SIF_Message>",
    "wrong namespace": b'<?xml version="1.0"?><SIF_Message xmlns="urn:not-sif"><SIF_Ack/></SIF_Message>',
}


class HostileZis(ThreadingHTTPServer):
    """Acks register and requests like a ZIS; answers every SIF_GetMessage with `hostile`."""

    def __init__(self, hostile: bytes):
        self.hostile = hostile
        self.get_messages = 0
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if b"SIF_GetMessage" in body:
            self.server.get_messages += 1
            answer = self.server.hostile
        else:
            answer = ack_for(body, "HOSTILE_ZIS")
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_answers_fail_the_pull_clearly_and_store_nothing(kind, conversion):
    server = HostileZis(HOSTILE[kind])
    job = pull_against(server, conversion)
    assert server.get_messages >= 1  # the hostile answer was really received
    assert job.state == JobState.FAILED
    assert "not valid SIF" in job.error or job.error.startswith("Could not reach the ZIS"), job.error
    assert "root:" not in job.error and "lollol" not in job.error  # nothing expanded or read from disk
    assert not SifRecord.objects.exists()
    assert not ReceivedMessage.objects.exists()
