"""Streaming reads of SIF_Response / SIF_Event payloads.

A packet is read twice with lxml iterparse: once to the start of SIF_ObjectData for its envelope
facts (cheap, stops early), then again record by record, clearing each object once it is typed,
so memory does not grow with the number of objects. Input is bytes in any declared encoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from .errors import SifErrorInfo, SifProtocolError, SifXmlError
from .messages import read_error
from .records import SifRecord, UnknownRecord, UnreadableRecord, record_from_xml
from .safexml import DEFAULT_MAX_MESSAGE_BYTES, iterparse_message, q

_MESSAGE = q("SIF_Message")
_PAYLOAD_KINDS = {q("SIF_Response"): "response", q("SIF_Event"): "event"}


@dataclass
class Delivered:
    """One SIF_Response packet or SIF_Event, as delivered (possibly inside a SIF_Ack)."""

    msg_id: str
    source_id: str
    kind: str  # "response" | "event"
    version: str
    request_msg_id: str | None = None
    packet_number: int | None = None
    more_packets: bool = False
    object_name: str | None = None
    action: str | None = None  # events: Add | Change | Delete
    error: SifErrorInfo | None = None  # a SIF_Response carrying SIF_Error
    destination_id: str | None = None
    raw: bytes = field(default=b"", repr=False)
    max_bytes: int = field(default=DEFAULT_MAX_MESSAGE_BYTES, repr=False)

    def records(self, *, strict: bool = False) -> Iterator[SifRecord | UnknownRecord | UnreadableRecord]:
        """Typed objects of this packet/event, one at a time; see iter_payload_records for ``strict``."""
        return iter_payload_records(self.raw, max_bytes=self.max_bytes, strict=strict)


@dataclass
class AckEnvelope:
    """The outer SIF_Ack of a reply, and the message it delivers (if any)."""

    status_code: int | None
    status_desc: str | None
    error: SifErrorInfo | None
    original_msg_id: str | None
    delivered: Delivered | None


def _is_payload_body(element: etree._Element) -> bool:
    parent = element.getparent()
    return element.tag in _PAYLOAD_KINDS and parent is not None and parent.tag == _MESSAGE


def scan_message(data: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> AckEnvelope:
    """Read envelope facts of a SIF_Ack reply or of a bare SIF_Response/SIF_Event, stopping early."""
    outer_kind: str | None = None
    ack: dict[str, Any] = {"status_code": None, "status_desc": None, "error": None, "original_msg_id": None}
    body: etree._Element | None = None
    facts: dict[str, Any] = {}
    stop_after_first_object = False
    for event, element in iterparse_message(data, max_bytes=max_bytes):
        parent = element.getparent()
        if event == "start":
            if outer_kind is None and parent is not None and parent.tag == _MESSAGE:
                outer_kind = str(element.tag)
            if _is_payload_body(element):
                body = element
                facts["kind"] = _PAYLOAD_KINDS[str(element.tag)]
                facts["version"] = parent.get("Version", "") if parent is not None else ""
            elif body is not None and element.tag == q("SIF_EventObject"):
                facts["object_name"] = element.get("ObjectName")
                facts["action"] = element.get("Action")
                break
            elif stop_after_first_object:
                facts["object_name"] = etree.QName(element).localname
                break
            elif body is not None and element.tag == q("SIF_ObjectData") and parent is body:
                if facts["kind"] == "response":
                    stop_after_first_object = True
            continue
        # "end" events: texts are complete.
        if stop_after_first_object and element.tag == q("SIF_ObjectData"):
            break  # an empty packet
        text = (element.text or "").strip()
        parent_tag = parent.tag if parent is not None else None
        if body is None:
            # Facts of the outer SIF_Ack.
            if outer_kind == q("SIF_Ack"):
                if element.tag == q("SIF_OriginalMsgId") and parent_tag == q("SIF_Ack"):
                    ack["original_msg_id"] = text
                elif element.tag == q("SIF_Code") and parent_tag == q("SIF_Status"):
                    ack["status_code"] = _number(text, "SIF_Ack/SIF_Status/SIF_Code")
                elif element.tag == q("SIF_Desc") and parent_tag == q("SIF_Status"):
                    ack["status_desc"] = text
                elif element.tag == q("SIF_Error") and parent_tag == q("SIF_Ack"):
                    ack["error"] = read_error(element)
            continue
        if parent is not None and parent.tag == q("SIF_Header") and parent.getparent() is body:
            key = {
                q("SIF_MsgId"): "msg_id",
                q("SIF_SourceId"): "source_id",
                q("SIF_DestinationId"): "destination_id",
            }.get(str(element.tag))
            if key:
                facts[key] = text
        elif parent is body:
            if element.tag == q("SIF_RequestMsgId"):
                facts["request_msg_id"] = text
            elif element.tag == q("SIF_PacketNumber"):
                facts["packet_number"] = _number(text, "SIF_Response/SIF_PacketNumber", least=1)
            elif element.tag == q("SIF_MorePackets"):
                if text not in ("Yes", "No"):
                    raise SifProtocolError(f"SIF_Response/SIF_MorePackets: {text!r} is neither Yes nor No")
                facts["more_packets"] = text == "Yes"
            elif element.tag == q("SIF_Error"):
                facts["error"] = read_error(element)
    if outer_kind is None:
        raise SifProtocolError("empty SIF_Message")
    delivered = None
    if body is not None:
        if "msg_id" not in facts or "source_id" not in facts:
            raise SifProtocolError("delivered message lacks SIF_MsgId or SIF_SourceId")
        delivered = Delivered(raw=bytes(data), max_bytes=max_bytes, **facts)
    elif outer_kind != q("SIF_Ack"):
        raise SifProtocolError(f"expected SIF_Ack, SIF_Response or SIF_Event, got {outer_kind}")
    return AckEnvelope(delivered=delivered, **ack)


def _number(text: str, where: str, *, least: int = 0) -> int:
    """A whole number the envelope must hold (xs:unsignedInt / xs:positiveInteger), or a SifProtocolError
    naming the element: a packet whose number cannot be read is refused whole, never stored as packet 0."""
    if not text.isascii() or not text.isdigit() or int(text) < least:
        raise SifProtocolError(f"{where}: {text!r} is not a {'positive' if least else 'whole'} number")
    return int(text)


def iter_payload_records(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, strict: bool = False
) -> Iterator[SifRecord | UnknownRecord | UnreadableRecord]:
    """Yield the objects of the SIF_Response or SIF_Event inside ``data``, clearing as it goes.

    An object whose values cannot be typed (a date that is no date, an object outside the SIF namespace) does
    not end the packet: it is yielded in its place as an ``UnreadableRecord`` (its XML as delivered, its RefId
    and the SifXmlError's text naming the element), and the objects after it are read as usual. The caller
    stores it or reports it, then acks the packet; raising would leave the packet unacked, and the ZIS would
    redeliver it, with the same bad object, forever. With ``strict=True`` the first such object raises instead.
    A packet that is not well-formed XML still raises SifXmlError: nothing in it can be trusted.
    """
    body = None
    container = None
    for event, element in iterparse_message(data, max_bytes=max_bytes):
        parent = element.getparent()
        if event == "start":
            if _is_payload_body(element):
                body = element
            elif (
                body is not None
                and container is None
                and (
                    (element.tag == q("SIF_ObjectData") and parent is body and body.tag == q("SIF_Response"))
                    or element.tag == q("SIF_EventObject")
                )
            ):
                container = element
            continue
        if container is not None and parent is container:
            record: SifRecord | UnknownRecord | UnreadableRecord
            try:
                record = record_from_xml(element)
            except SifXmlError as exc:
                if strict:
                    raise
                record = UnreadableRecord(
                    etree.QName(element).localname, etree.tostring(element), element.get("RefId"), str(exc)
                )
            yield record
            element.clear()
            while element.getprevious() is not None:
                del container[0]
        elif element is container:
            return
