"""What the fake ZIS servers of the hardening tests share: acking what the agent posts, as a ZIS does."""

from __future__ import annotations

import re
import threading

from sifclient.messages import build_ack


def ack_for(posted: bytes, zis_source_id: str = "FAKE_ZIS") -> bytes:
    """A success SIF_Ack (status 1) answering the message the agent posted."""
    msg_id = re.search(rb"<SIF_MsgId>([^<]+)</SIF_MsgId>", posted).group(1).decode()
    source = re.search(rb"<SIF_SourceId>([^<]+)</SIF_SourceId>", posted).group(1).decode()
    return build_ack(zis_source_id, original_source_id=source, original_msg_id=msg_id, status_code=1).data


def pull_against(server, conversion):
    """Serve `server` (an HTTPServer on 127.0.0.1) while a pull job of `conversion` runs against it."""
    from conversion.models import JobKind
    from conversion.services import pull
    from tests.conversion.jobhelpers import run

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conversion.zis_url = f"http://127.0.0.1:{server.server_address[1]}/zones"
        conversion.zone_id = "ALPHA"
        conversion.save()
        return run(conversion, JobKind.PULL, pull.run_pull)
    finally:
        server.shutdown()
        server.server_close()
