"""Hostile or broken input gives a clear SifXmlError, never a crash, a silent drop or a network call."""

import pytest

from sifclient.errors import SifXmlError
from sifclient.messages import build_response
from sifclient.records import StudentPersonal
from sifclient.safexml import parse_message_bytes
from sifclient.streaming import iter_payload_records, scan_message

NS = b'xmlns="http://www.sifinfo.org/infrastructure/2.x"'
HEADER = (
    b"<SIF_Header><SIF_MsgId>0123456789ABCDEF0123456789ABCDEF</SIF_MsgId>"
    b"<SIF_Timestamp>2026-01-01T00:00:00Z</SIF_Timestamp><SIF_SourceId>ps</SIF_SourceId></SIF_Header>"
)

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE SIF_Message [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<SIF_Message "
    + NS
    + b' Version="2.4"><SIF_Ack>'
    + HEADER
    + b"<SIF_OriginalSourceId>&lol3;</SIF_OriginalSourceId></SIF_Ack></SIF_Message>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE SIF_Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<SIF_Message "
    + NS
    + b' Version="2.4"><SIF_Ack>'
    + HEADER
    + b"<SIF_OriginalSourceId>&xxe;</SIF_OriginalSourceId></SIF_Ack></SIF_Message>"
)
EXTERNAL_DTD = (
    b'<?xml version="1.0"?><!DOCTYPE SIF_Message SYSTEM "http://127.0.0.1:9/evil.dtd">'
    b"<SIF_Message " + NS + b' Version="2.4"><SIF_Ack>' + HEADER + b"</SIF_Ack></SIF_Message>"
)
WRONG_NAMESPACE = b'<SIF_Message xmlns="http://example.com/not-sif" Version="2.4"><SIF_Ack/></SIF_Message>'
NO_NAMESPACE = b'<SIF_Message Version="2.4"><SIF_Ack/></SIF_Message>'
INVALID_ENCODING = (
    b'<?xml version="1.0" encoding="UTF-8"?><SIF_Message ' + NS + b' Version="2.4">\xff\xfe</SIF_Message>'
)
UNKNOWN_ENCODING = b'<?xml version="1.0" encoding="x-no-such-charset"?><SIF_Message ' + NS + b' Version="2.4"/>'
TEXT_NOT_BYTES = "<SIF_Message/>"


def _truncated() -> bytes:
    data = build_response(
        "ps",
        destination_id="me",
        request_msg_id="0" * 32,
        records=[StudentPersonal(ref_id="A" * 32, local_id=str(i)) for i in range(20)],
    ).data
    return data[: len(data) // 2]


CASES = {
    "billion laughs": BILLION_LAUGHS,
    "external entity": EXTERNAL_ENTITY,
    "external DTD": EXTERNAL_DTD,
    "wrong namespace": WRONG_NAMESPACE,
    "no namespace": NO_NAMESPACE,
    "invalid encoding": INVALID_ENCODING,
    "unknown encoding": UNKNOWN_ENCODING,
    "truncated": _truncated(),
    "empty": b"",
    "not XML": b"HTTP/1.1 502 Bad Gateway",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tree_parser_refuses(name):
    with pytest.raises(SifXmlError):
        parse_message_bytes(CASES[name])


@pytest.mark.parametrize("name", sorted(CASES))
def test_streaming_parser_refuses(name):
    if name == "truncated":
        # The envelope scan stops at the first object; the cut shows when the records are read.
        delivered = scan_message(CASES[name]).delivered
        with pytest.raises(SifXmlError):
            list(delivered.records())
    else:
        with pytest.raises(SifXmlError):
            scan_message(CASES[name])
    with pytest.raises(SifXmlError):
        list(iter_payload_records(CASES[name]))


def test_entity_text_never_reaches_the_caller():
    with pytest.raises(SifXmlError, match="DOCTYPE"):
        parse_message_bytes(EXTERNAL_ENTITY)


def test_oversize_message_is_refused_before_parsing():
    data = build_response(
        "ps",
        destination_id="me",
        request_msg_id="0" * 32,
        records=[StudentPersonal(ref_id="A" * 32, local_id=str(i)) for i in range(200)],
    ).data
    with pytest.raises(SifXmlError, match="over the limit"):
        parse_message_bytes(data, max_bytes=1000)
    with pytest.raises(SifXmlError, match="over the limit"):
        list(iter_payload_records(data, max_bytes=1000))
    assert len(list(iter_payload_records(data, max_bytes=len(data)))) == 200


def test_decoded_text_is_refused():
    with pytest.raises(SifXmlError, match="bytes"):
        parse_message_bytes(TEXT_NOT_BYTES)


def test_undeclared_entity_reference_is_refused():
    data = (
        b"<SIF_Message "
        + NS
        + b' Version="2.4"><SIF_Ack>'
        + HEADER
        + b"<SIF_OriginalSourceId>&nope;</SIF_OriginalSourceId></SIF_Ack></SIF_Message>"
    )
    with pytest.raises(SifXmlError):
        parse_message_bytes(data)
