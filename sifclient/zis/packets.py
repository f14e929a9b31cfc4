"""SIF_Response packets for a provider's records, cut to the requester's SIF_MaxBufferSize.

Packets are produced lazily from a raw record offset, so a response of any size is never held
in memory: only the packet being delivered exists, and the next one starts at ``next_raw``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from lxml import etree

from ..errors import CAT_REQUEST_RESPONSE, CODE_REQ_MAX_BUFFER_SIZE_UNSUPPORTED, SifErrorInfo
from ..messages import DEFAULT_VERSION, response_envelope
from ..powerschool import District, DistrictSpec
from ..query import Condition, Query
from ..records import SifRecord, UnknownRecord, UnreadableRecord
from ..safexml import NS, q

DEFAULT_PROVIDER_ID = "PowerSchool"


class RecordSource(Protocol):
    """What a provider answers from: a District, or the grades PowerSchool holds (zone.HeldGrades)."""

    def raw_count(self, object_name: str) -> int: ...

    def iter_records(self, object_name: str, start: int = 0) -> Iterator[tuple[int, SifRecord]]: ...


@dataclass(frozen=True)
class Packet:
    packet_number: int
    msg_id: str
    data: bytes
    record_count: int
    more_packets: bool
    next_raw: int  # raw record index where the next packet starts


def packet_msg_id(request_msg_id: str, packet_number: int) -> str:
    """Stable SIF_MsgId of a packet, so a redelivered packet keeps its id across restarts."""
    return hashlib.blake2b(f"{request_msg_id}:{packet_number}".encode(), digest_size=16).hexdigest().upper()


def _condition_holds(element: etree._Element, condition: Condition) -> bool:
    steps = [s for s in condition.element.strip("/").split("/") if s]
    path = "/".join(s if s.startswith("@") else f"sif:{s}" for s in steps)
    found = element.xpath(path, namespaces=NS) if path else []
    values = [v if isinstance(v, str) else (v.text or "") for v in found]
    op = condition.operator
    target = condition.value
    for value in values:
        value = value.strip()
        if (
            (op == "EQ" and value == target)
            or (op == "NE" and value != target)
            or (op == "LT" and value < target)
            or (op == "GT" and value > target)
            or (op == "LE" and value <= target)
            or (op == "GE" and value >= target)
        ):
            return True
    return op == "NE" and not values


def matches(element: etree._Element, query: Query | None) -> bool:
    if query is None or not query.conditions:
        return True
    results = (_condition_holds(element, c) for c in query.conditions)
    return any(results) if query.conditions_type == "Or" else all(results)


def _project(element: etree._Element, query: Query | None) -> etree._Element:
    """Keep only the SIF_Element list asked for (plus the object's key attributes)."""
    if query is None or not query.elements:
        return element
    wanted = {e.strip("/").split("/")[0] for e in query.elements}
    for child in list(element):
        if etree.QName(child).localname not in wanted:
            element.remove(child)
    return element


def build_packet(
    district: RecordSource,
    object_name: str,
    *,
    request_msg_id: str,
    packet_number: int,
    start_raw: int,
    max_buffer_size: int,
    destination_id: str,
    source_id: str = DEFAULT_PROVIDER_ID,
    version: str = DEFAULT_VERSION,
    query: Query | None = None,
    timestamp: str | None = None,
    msg_id: str | None = None,
) -> Packet:
    """One packet from raw index ``start_raw``: as many records as fit in ``max_buffer_size``."""
    msg_id = msg_id or packet_msg_id(request_msg_id, packet_number)

    def envelope(more: bool) -> tuple[etree._Element, etree._Element, str]:
        return response_envelope(
            source_id,
            destination_id=destination_id,
            request_msg_id=request_msg_id,
            packet_number=packet_number,
            more_packets=more,
            version=version,
            msg_id=msg_id,
            timestamp=timestamp,
        )

    root, body, _ = envelope(True)
    data_el = etree.SubElement(body, q("SIF_ObjectData"))
    overhead = len(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    budget = max_buffer_size - overhead
    used = 0
    count = 0
    next_raw = district.raw_count(object_name)
    more = False
    for raw_index, record in district.iter_records(object_name, start_raw):
        element = record.to_xml(version)
        if not matches(element, query):
            continue
        element = _project(element, query)
        # Serialized alone the object repeats the namespace declaration, so this over-counts:
        # the packet never exceeds the buffer.
        size = len(etree.tostring(element, encoding="UTF-8"))
        if used + size > budget:
            if count == 0:
                # 8/8 "Responder does not support requested SIF_MaxBufferSize": the responder's own answer
                # (8/11 is the ZIS refusing a SIF_Response that is larger than the buffer).
                error_root, error_body, _ = envelope(False)
                holder = etree.SubElement(error_body, q("SIF_Error"))
                info = SifErrorInfo(
                    CAT_REQUEST_RESPONSE,
                    CODE_REQ_MAX_BUFFER_SIZE_UNSUPPORTED,
                    "SIF_MaxBufferSize is too small to hold one object",
                    f"{object_name} needs {size + overhead} bytes; SIF_MaxBufferSize is {max_buffer_size}",
                )
                for tag, value in (
                    ("SIF_Category", info.category),
                    ("SIF_Code", info.code),
                    ("SIF_Desc", info.description),
                    ("SIF_ExtendedDesc", info.extended_description),
                ):
                    etree.SubElement(holder, q(tag)).text = str(value)
                data = etree.tostring(error_root, xml_declaration=True, encoding="UTF-8")
                return Packet(packet_number, msg_id, data, 0, False, district.raw_count(object_name))
            next_raw = raw_index
            more = True
            break
        data_el.append(element)
        used += size
        count += 1
    if not more:
        more_packets = body.find(q("SIF_MorePackets"))
        assert more_packets is not None  # response_envelope writes it
        more_packets.text = "No"
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return Packet(packet_number, msg_id, data, count, more, next_raw)


def iter_response_packets(
    spec: DistrictSpec,
    object_name: str,
    max_buffer_size: int,
    *,
    request_msg_id: str = "0" * 32,
    destination_id: str = "sifclient",
    source_id: str = DEFAULT_PROVIDER_ID,
    version: str = DEFAULT_VERSION,
    query: Query | None = None,
    timestamp: str = "2026-01-01T00:00:00+00:00",
) -> Iterator[Packet]:
    """Every SIF_Response packet of a full answer, lazily (for benchmarks and tests).

    With the default fixed timestamp the packets are byte-identical for the same spec.
    """
    district = District(spec)
    start_raw = 0
    packet_number = 1
    while True:
        packet = build_packet(
            district,
            object_name,
            request_msg_id=request_msg_id,
            packet_number=packet_number,
            start_raw=start_raw,
            max_buffer_size=max_buffer_size,
            destination_id=destination_id,
            source_id=source_id,
            version=version,
            query=query,
            timestamp=timestamp,
        )
        yield packet
        if not packet.more_packets:
            return
        start_raw = packet.next_raw
        packet_number += 1


def records_of(packet: Packet) -> list[SifRecord | UnknownRecord | UnreadableRecord]:
    """Convenience for tests: the typed records of one packet (not streaming)."""
    from ..streaming import iter_payload_records

    return list(iter_payload_records(packet.data))
