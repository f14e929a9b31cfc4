"""The ZIS zone: registrations, per-agent queues with SIF ack semantics, request routing.

Pure logic, no HTTP: ``Zone.handle(bytes) -> bytes``. The PowerSchool provider lives inside the
zone (its answers are generated lazily from the district spec, never queued whole).
"""

from __future__ import annotations

import base64
import json
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

from lxml import etree

from .. import errors as E
from ..errors import SifErrorInfo, SifProtocolError, SifXmlError
from ..messages import (
    STATUS_DUPLICATE,
    STATUS_FINAL,
    STATUS_IMMEDIATE,
    STATUS_INTERMEDIATE,
    STATUS_NO_MESSAGES,
    STATUS_SLEEPING,
    STATUS_SUCCESS,
    SUPPORTED_VERSIONS,
    MessageInfo,
    Outgoing,
    build_ack,
    build_event,
    choose_version,
    read_ack,
    read_message,
)
from ..powerschool import PUBLISHED_OBJECTS, WRITE_BACK_OBJECTS, District, DistrictSpec
from ..query import Query
from ..records import GradingAssignment, GradingAssignmentScore, SifRecord, StudentDailyAttendance
from ..safexml import DEFAULT_MAX_MESSAGE_BYTES, parse_message_bytes, q
from ..zonestatus import ZoneNode, ZoneStatus
from .packets import DEFAULT_PROVIDER_ID, Packet, RecordSource, build_packet

ZIS_SOURCE_ID = "SimZIS"
SEEN_IDS_PER_AGENT = 10_000


@dataclass
class EventItem:
    msg_id: str
    data: bytes
    object_name: str


@dataclass
class ResponseJob:
    request_msg_id: str
    object_name: str
    destination_id: str
    max_buffer_size: int
    version: str
    query_xml: bytes | None
    next_raw: int = 0
    packet_number: int = 1
    # The how-many-th time this request was queued (strict profile: a re-sent SIF_Request is queued
    # again, and the provider answers each copy with messages of their own SIF_MsgIds).
    copy: int = 0
    # The packet being delivered, kept so redeliveries and the ack do not rebuild it (not persisted).
    cached: Packet | None = field(default=None, repr=False, compare=False)

    @property
    def msg_id(self) -> str:
        from .packets import packet_msg_id

        seed = self.request_msg_id if not self.copy else f"{self.request_msg_id}/{self.copy}"
        return packet_msg_id(seed, self.packet_number)


# What waits in an agent's queue: an event to hand over as it came, or a request whose answer is built packet by
# packet.
QueueItem = EventItem | ResponseJob


@dataclass
class AgentState:
    source_id: str
    name: str
    mode: str
    versions: list[str]
    max_buffer_size: int
    version: str
    sleeping: bool = False
    subscriptions: set[str] = field(default_factory=set)
    provides: set[str] = field(default_factory=set)
    queue: deque[QueueItem] = field(default_factory=deque)
    frozen_msg_id: str | None = None  # SMB: event acked with status 2, events held until status 3
    seen_msg_ids: OrderedDict[str, bool] = field(default_factory=OrderedDict)


@dataclass
class GradeWriteBack:
    """A grade passback event the zone accepted, as the provider would store it."""

    msg_id: str
    source_id: str
    object_name: str
    action: str
    record: SifRecord


class HeldGrades:
    """What the simulated PowerSchool holds of the grade write-back objects: the accepted events replayed in order.

    PowerSchool subscribes to GradingAssignment / GradingAssignmentScore once write-back is on (its SIF agent
    documentation, summarised in /work/shared/sif/README.md): an Add or Change stores the object, a Delete removes
    it; a GradingAssignment's Delete takes its scores with it, as deleting an assignment in PowerTeacher does.
    GradingAssignmentScore has no RefId in SIF 2.x: the 2.4 schema keys it by StudentPersonalRefId +
    GradingAssignmentRefId (xs:unique GradingAssignmentScoreKey1 in xsd/openzis_us_2_4/SIF_Message.xsd.xml).
    Shaped like District (raw_count / iter_records, packets.RecordSource) so build_packet answers a SIF_Request
    for them.
    """

    def __init__(self, write_backs: list[GradeWriteBack]):
        # Keyed as the records hold their keys (optional in the typed records; the zone refuses an event without).
        self.assignments: dict[str | None, GradingAssignment] = {}
        self.scores: dict[tuple[str | None, str | None], GradingAssignmentScore] = {}
        for w in write_backs:
            record = w.record
            if isinstance(record, GradingAssignment):
                if w.action == "Delete":
                    self.assignments.pop(record.ref_id, None)
                    for key in [k for k in self.scores if k[0] == record.ref_id]:
                        del self.scores[key]
                else:
                    self.assignments[record.ref_id] = record
            elif isinstance(record, GradingAssignmentScore):
                key = (record.assignment_ref_id, record.student_ref_id)
                if w.action == "Delete":
                    self.scores.pop(key, None)
                else:
                    self.scores[key] = record

    def _records(self, object_name: str) -> list[SifRecord]:
        if object_name == "GradingAssignment":
            return list(self.assignments.values())
        return list(self.scores.values())

    def raw_count(self, object_name: str) -> int:
        return len(self._records(object_name))

    def iter_records(self, object_name: str, start: int = 0) -> Iterator[tuple[int, SifRecord]]:
        for index, record in enumerate(self._records(object_name)):
            if index >= start:
                yield index, record


class ZoneOptions(TypedDict, total=False):
    """Zone's keyword-only options, which a profile's zone (strict.StrictZone) passes on."""

    provider_id: str
    zis_source_id: str
    max_message_bytes: int
    on_send: Callable[[bytes], None] | None
    state_file: Path | None


class Zone:
    # Whether PowerSchool answers SIF_Request for GradingAssignment / GradingAssignmentScore. Its SIF agent
    # documentation lists them as subscribed, not published, so by default the zone has no provider for them
    # (a request gets 8/4 "no provider"); a zone whose PowerSchool plug-in provides them sets this.
    grading_provider = False
    write_back_on = True

    def __init__(
        self,
        zone_id: str,
        spec: DistrictSpec,
        *,
        provider_id: str = DEFAULT_PROVIDER_ID,
        zis_source_id: str = ZIS_SOURCE_ID,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        on_send: Callable[[bytes], None] | None = None,
        state_file: Path | None = None,
    ):
        self.zone_id = zone_id
        self.spec = spec
        self.provider_id = provider_id
        self.zis_source_id = zis_source_id
        self.max_message_bytes = max_message_bytes
        self.on_send = on_send
        self.state_file = state_file
        self.agents: dict[str, AgentState] = {}
        self.grade_write_backs: list[GradeWriteBack] = []
        self.received: deque[dict[str, str]] = deque(maxlen=2000)
        self._lock = threading.RLock()
        self._district_cache: District | None = None
        self._writeback_assignments: set[str] = set()
        self.url: str | None = None  # advertised in SIF_ZoneStatus; set by the HTTP server
        if state_file is not None and state_file.exists():
            self._load(state_file)

    # --- grade write-back ------------------------------------------------------------------------
    def held_grades(self) -> HeldGrades:
        with self._lock:
            return HeldGrades(self.grade_write_backs)

    def teacher_changes_score(self, assignment_ref_id: str, student_ref_id: str, score_points: int) -> None:
        """A teacher edits a passed-back score in PowerTeacher: PowerSchool now holds another value."""
        with self._lock:
            record = self.held_grades().scores[(assignment_ref_id, student_ref_id)]
            changed = GradingAssignmentScore.from_xml(record.to_xml())
            changed.score_points, changed.score_percent = score_points, None
            self.grade_write_backs.append(
                GradeWriteBack("", self.provider_id, "GradingAssignmentScore", "Change", changed)
            )
            self._save()

    def provides_grading(self) -> tuple[str, ...]:
        return tuple(WRITE_BACK_OBJECTS) if self.grading_provider else ()

    # --- district ------------------------------------------------------------------------
    @property
    def district(self) -> District:
        if self._district_cache is None or self._district_cache.spec != self.spec:
            self._district_cache = District(self.spec)
        return self._district_cache

    def set_spec(self, spec: DistrictSpec) -> None:
        with self._lock:
            self.spec = spec
            self._save()

    # --- entry point ---------------------------------------------------------------------
    def handle(self, data: bytes) -> bytes:
        """Answer one SIF message (bytes in, bytes out); never raises on bad input."""
        with self._lock:
            try:
                root = parse_message_bytes(data, max_bytes=self.max_message_bytes)
                info = read_message(root)
            except (SifXmlError, SifProtocolError) as exc:
                return self._send(
                    build_ack(
                        self.zis_source_id,
                        original_source_id="unknown",
                        original_msg_id="0" * 32,
                        error=SifErrorInfo(
                            E.CAT_XML_VALIDATION,
                            E.CODE_XML_NOT_WELL_FORMED,
                            "Message is not a well-formed SIF_Message",
                            str(exc)[:500],
                        ),
                    )
                )
            self.received.append(
                {"kind": info.kind, "source_id": info.source_id, "msg_id": info.msg_id, "version": info.version}
            )
            reply = self._dispatch(info)
            self._save()
            return self._send(reply)

    def _send(self, outgoing: Outgoing) -> bytes:
        if self.on_send is not None:
            self.on_send(outgoing.data)
        return outgoing.data

    def _ack(
        self,
        info: MessageInfo,
        *,
        code: int | None = STATUS_SUCCESS,
        desc: str | None = None,
        error: SifErrorInfo | None = None,
        data: etree._Element | None = None,
    ) -> Outgoing:
        agent = self.agents.get(info.source_id)
        version = agent.version if agent else (info.version if info.version in SUPPORTED_VERSIONS else "2.4")
        if error is not None and error.category == E.CAT_ZONE_SERVICES and version == "2.0r1":
            # SIF 2.0r1 has no "zone services" category; its agents get the generic one.
            error = SifErrorInfo(E.CAT_GENERIC, E.CODE_GENERIC, error.description, error.extended_description)
        return build_ack(
            self.zis_source_id,
            original_source_id=info.source_id,
            original_msg_id=info.msg_id,
            status_code=None if error else code,
            status_desc=desc,
            error=error,
            data=data,
            version=version,
        )

    def _dispatch(self, info: MessageInfo) -> Outgoing:
        if info.kind == "SIF_Register":
            return self._register(info)
        agent = self.agents.get(info.source_id)
        if agent is None:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_ACCESS,
                    E.CODE_ACCESS_SOURCE_ID_NOT_REGISTERED,
                    "SIF_SourceId is not registered in this zone",
                    f"SIF_SourceId {info.source_id} must send SIF_Register first",
                ),
            )
        if info.msg_id in agent.seen_msg_ids:
            return self._ack(info, code=STATUS_DUPLICATE, desc="Duplicate SIF_MsgId; message ignored")
        agent.seen_msg_ids[info.msg_id] = True
        while len(agent.seen_msg_ids) > SEEN_IDS_PER_AGENT:
            agent.seen_msg_ids.popitem(last=False)
        handler = {
            "SIF_Unregister": self._unregister,
            "SIF_Subscribe": self._subscribe,
            "SIF_Provision": self._provision,
            "SIF_SystemControl": self._system_control,
            "SIF_Request": self._request,
            "SIF_Ack": self._agent_ack,
            "SIF_Event": self._event,
        }.get(info.kind)
        if handler is None:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_GENERIC, E.CODE_GENERIC_MESSAGE_UNSUPPORTED, f"{info.kind} is not supported by this ZIS"
                ),
            )
        try:
            return handler(agent, info)
        except SifProtocolError as exc:
            # A message that parses but lacks what the SIF 2.x message schema requires (a SIF_Query without its
            # SIF_QueryObject, a SIF_Object without ObjectName) fails validation at a ZIS, which answers with
            # category 1 (SIF 2.x Infrastructure, Error Codes: XML Validation); the handler raised out of handle
            # before, and the HTTP server dropped the connection without an answer.
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_XML_VALIDATION, E.CODE_XML_INVALID, "Message is not a valid SIF message", str(exc)[:500]
                ),
            )

    # --- registration --------------------------------------------------------------------
    def _register(self, info: MessageInfo) -> Outgoing:
        body = info.body
        patterns = [(v.text or "").strip() for v in body.findall(q("SIF_Version"))]
        version = choose_version(patterns)
        if version is None:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_REGISTRATION,
                    E.CODE_REG_VERSION_UNSUPPORTED,
                    "None of the requested SIF_Version values is supported",
                    f"asked {patterns}; ZIS supports {list(SUPPORTED_VERSIONS)}",
                ),
            )
        mode = (body.findtext(q("SIF_Mode")) or "").strip()
        if mode != "Pull":
            # SIF has no "mode not supported" code: a Pull-only ZIS has no transport protocol to push with.
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_REGISTRATION,
                    E.CODE_REG_TRANSPORT_UNSUPPORTED,
                    "Push mode needs a reachable SIF_Protocol URL; register in Pull mode",
                ),
            )
        existing = self.agents.get(info.source_id)
        agent = AgentState(
            source_id=info.source_id,
            name=(body.findtext(q("SIF_Name")) or "").strip(),
            mode=mode,
            versions=patterns,
            max_buffer_size=int(body.findtext(q("SIF_MaxBufferSize")) or 0),
            version=version,
        )
        if existing is not None:  # re-registration keeps the queue and the subscriptions
            agent.queue, agent.subscriptions, agent.provides = existing.queue, existing.subscriptions, existing.provides
            agent.seen_msg_ids, agent.frozen_msg_id = existing.seen_msg_ids, existing.frozen_msg_id
        agent.seen_msg_ids[info.msg_id] = True
        self.agents[info.source_id] = agent
        if self.spec.smp_on and existing is None:
            self._queue_smp_events(agent)
        return self._ack(info, desc="Registered")

    def _queue_smp_events(self, agent: AgentState) -> None:
        """State messaging plug-in: attendance events nobody subscribed to reach the agent."""
        district = self.district
        for index in range(min(3, district.total_students)):
            student = district.student(index)
            record = StudentDailyAttendance(
                student_ref_id=student.ref_id,
                school_ref_id=district.ref_id("SchoolInfo", district.student_school(index)),
                date=district.year_start(self.spec.school_year),
                school_year=self.spec.school_year,
                extended_elements={f"{self.spec.state}_AttendanceCode": "P"},
            )
            event = build_event(self.provider_id, record, "Add", version=agent.version, destination_id=agent.source_id)
            agent.queue.append(EventItem(event.msg_id, event.data, record.OBJECT_NAME))

    def _unregister(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        del self.agents[agent.source_id]
        return self._ack(info, desc="Unregistered")

    def _subscribe(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        names = [o.get("ObjectName") for o in info.body.findall(q("SIF_Object"))]
        named = [name for name in names if name]
        if len(named) != len(names):
            # ObjectName is required on SIF_Subscribe/SIF_Object; a None among the subscriptions broke every later
            # SIF_GetZoneStatus and state save (sorting None among names).
            raise SifProtocolError("SIF_Subscribe has a SIF_Object without ObjectName")
        agent.subscriptions.update(named)
        return self._ack(info)

    def _provision(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        from ..messages import Provision

        provision = Provision.from_xml(info.body)
        taken = [o for o in provision.provide if o in PUBLISHED_OBJECTS]
        if taken:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_PROVISIONING,
                    E.CODE_PROV_ALREADY_HAS_PROVIDER,
                    "Object already has a provider in this zone",
                    f"{', '.join(taken)} provided by {self.provider_id}",
                ),
            )
        agent.provides.update(provision.provide)
        agent.subscriptions.update(provision.subscribe)
        return self._ack(info)

    # --- system control --------------------------------------------------------------------
    def _system_control(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        data = info.body.find(q("SIF_SystemControlData"))
        command = etree.QName(data[0]).localname if data is not None and len(data) else ""
        if command == "SIF_Ping":
            return self._ack(info, desc="Pong")
        if command == "SIF_Sleep":
            agent.sleeping = True
            return self._ack(info, desc="Sleeping")
        if command == "SIF_Wakeup":
            agent.sleeping = False
            return self._ack(info, desc="Awake")
        if command == "SIF_GetZoneStatus":
            return self._ack(info, data=self.zone_status().to_xml())
        if command == "SIF_GetMessage":
            return self._get_message(agent, info)
        return self._ack(
            info, error=SifErrorInfo(E.CAT_GENERIC, E.CODE_GENERIC_MESSAGE_UNSUPPORTED, f"{command} is not supported")
        )

    def zone_status(self) -> ZoneStatus:
        nodes = [
            ZoneNode(
                self.provider_id,
                "PowerSchool SIF Agent",
                "Agent",
                "Push" if self.spec.push_mode else "Pull",
                tuple(SUPPORTED_VERSIONS),
                262144,
            )
        ]
        for agent in self.agents.values():
            nodes.append(
                ZoneNode(
                    agent.source_id,
                    agent.name,
                    "Agent",
                    agent.mode,
                    tuple(agent.versions),
                    agent.max_buffer_size,
                    agent.sleeping,
                )
            )
        providers = {self.provider_id: tuple(PUBLISHED_OBJECTS) + self.provides_grading()}
        providers.update({a.source_id: tuple(sorted(a.provides)) for a in self.agents.values() if a.provides})
        # PowerSchool subscribes to the write-back objects only once grade write-back is on (its SIF agent
        # documentation): a district that has not installed the plug-in shows no subscriber for them.
        subscribers: dict[str, tuple[str, ...]] = {self.provider_id: WRITE_BACK_OBJECTS if self.write_back_on else ()}
        subscribers.update(
            {a.source_id: tuple(sorted(a.subscriptions)) for a in self.agents.values() if a.subscriptions}
        )
        return ZoneStatus(
            zone_id=self.zone_id,
            name=f"{self.spec.district_name} zone",
            ready=not self.spec.zone_not_ready,
            nodes=tuple(nodes),
            providers=providers,
            subscribers=subscribers,
            supported_versions=tuple(SUPPORTED_VERSIONS),
            url=self.url,
        )

    # --- queue -----------------------------------------------------------------------------
    def _head(self, agent: AgentState) -> QueueItem | None:
        for item in agent.queue:
            if agent.frozen_msg_id and isinstance(item, EventItem):
                continue  # SMB: events wait behind the frozen one
            return item
        return None

    def current_packet(self, job: ResponseJob) -> Packet:
        cached = job.cached
        if cached is not None and cached.packet_number == job.packet_number:
            return cached
        source: RecordSource = self.held_grades() if job.object_name in WRITE_BACK_OBJECTS else self.district
        job.cached = build_packet(
            source,
            job.object_name,
            request_msg_id=job.request_msg_id,
            packet_number=job.packet_number,
            start_raw=job.next_raw,
            max_buffer_size=job.max_buffer_size,
            destination_id=job.destination_id,
            source_id=self.provider_id,
            version=job.version,
            query=Query.from_xml(etree.fromstring(job.query_xml)) if job.query_xml else None,
            msg_id=job.msg_id,
        )
        return job.cached

    def _get_message(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        if agent.sleeping:
            return self._ack(info, code=STATUS_SLEEPING, desc="Agent is sleeping; send SIF_Wakeup")
        item = self._head(agent)
        if item is None:
            return self._ack(info, code=STATUS_NO_MESSAGES, desc="No messages")
        payload = item.data if isinstance(item, EventItem) else self.current_packet(item).data
        inner = etree.fromstring(payload)
        return self._ack(info, data=inner)

    def _agent_ack(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        ack = read_ack(info.body)
        target = ack.original_msg_id
        if ack.status_code == STATUS_FINAL and agent.frozen_msg_id == target:
            agent.frozen_msg_id = None
            return self._ack(info)
        item = self._head(agent)
        if item is None or item.msg_id != target:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_GENERIC,
                    E.CODE_GENERIC_NO_SUCH_MESSAGE,
                    "SIF_OriginalMsgId is not the message awaiting acknowledgement",
                    target,
                ),
            )
        if isinstance(item, ResponseJob):
            packet = self.current_packet(item)
            if packet.more_packets:
                item.next_raw = packet.next_raw
                item.packet_number += 1
                item.cached = None
                return self._ack(info)
        agent.queue.remove(item)
        if ack.status_code == STATUS_INTERMEDIATE and isinstance(item, EventItem):
            agent.frozen_msg_id = item.msg_id
        elif ack.status_code not in (STATUS_IMMEDIATE, STATUS_INTERMEDIATE, STATUS_FINAL, None):
            pass  # an error ack still removes the message, as real ZIS servers do
        return self._ack(info)

    # --- requests ------------------------------------------------------------------------
    def _request(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        body = info.body
        query_el = body.find(q("SIF_Query"))
        if query_el is None:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_REQUEST_RESPONSE,
                    E.CODE_REQ_EXTENDED_QUERY_UNSUPPORTED,
                    "Only SIF_Query requests are supported by this provider",
                ),
            )
        query = Query.from_xml(query_el)
        destination = info.destination_id or self.provider_id
        provided = PUBLISHED_OBJECTS + self.provides_grading()
        if query.object_name not in provided or destination != self.provider_id:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_REQUEST_RESPONSE,
                    E.CODE_REQ_NO_PROVIDER,
                    "No provider for the requested object",
                    query.object_name,
                ),
            )
        if self.spec.zone_not_ready:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_ZONE_SERVICES,
                    E.CODE_ZONE_NOT_READY,
                    "Zone is not ready",
                    f"zone {self.zone_id} is not in the ready state; requests are refused",
                ),
            )
        if self.spec.push_mode:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_TRANSPORT,
                    E.CODE_TRANSPORT_UNREACHABLE,
                    "Unable to deliver SIF_Request to the provider",
                    f"{self.provider_id} is registered in Push mode and its SIF_Protocol URL is unreachable",
                ),
            )
        patterns = [(v.text or "").strip() for v in body.findall(q("SIF_Version"))]
        version = choose_version(patterns)
        if version is None:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_REQUEST_RESPONSE,
                    E.CODE_REQ_VERSION_UNSUPPORTED,
                    "Provider supports none of the requested SIF_Version values",
                    ", ".join(patterns),
                ),
            )
        max_buffer = int(body.findtext(q("SIF_MaxBufferSize")) or 0)
        agent.queue.append(
            ResponseJob(
                request_msg_id=info.msg_id,
                object_name=query.object_name,
                destination_id=agent.source_id,
                max_buffer_size=max_buffer,
                version=version,
                query_xml=etree.tostring(query_el) if (query.conditions or query.elements) else None,
            )
        )
        return self._ack(info)

    # --- events ----------------------------------------------------------------------------
    def _event(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        event_object = info.body.find(f"{q('SIF_ObjectData')}/{q('SIF_EventObject')}")
        if event_object is None or len(event_object) != 1:
            return self._ack(
                info, error=SifErrorInfo(E.CAT_EVENTS, E.CODE_EVENT_INVALID, "SIF_Event must carry exactly one object")
            )
        object_name = event_object.get("ObjectName", "")
        action = event_object.get("Action", "")
        element = event_object[0]
        if etree.QName(element).localname != object_name:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_EVENTS, E.CODE_EVENT_INVALID, "SIF_EventObject ObjectName does not match its object"
                ),
            )
        if object_name in WRITE_BACK_OBJECTS:
            problem = self._check_write_back(object_name, action, element)
            if problem is not None:
                return self._ack(info, error=problem)
            if self._write_back_taken(info):
                record = (GradingAssignment if object_name == "GradingAssignment" else GradingAssignmentScore).from_xml(
                    element
                )
                if isinstance(record, GradingAssignment) and record.ref_id and action == "Delete":
                    self._writeback_assignments.discard(record.ref_id)
                elif isinstance(record, GradingAssignment) and record.ref_id:
                    self._writeback_assignments.add(record.ref_id)
                self.grade_write_backs.append(GradeWriteBack(info.msg_id, agent.source_id, object_name, action, record))
        # Route to the other subscribers of the object.
        for other in self._event_receivers(agent, info, object_name):
            other.queue.append(EventItem(info.msg_id, etree.tostring(info.root), object_name))
        self.received[-1].update(object_name=object_name, action=action)
        return self._ack(info)

    def _event_receivers(self, agent: AgentState, info: MessageInfo, object_name: str) -> list[AgentState]:
        """The agents an event is queued for: every other subscriber of the object."""
        return [other for other in self.agents.values() if other is not agent and object_name in other.subscriptions]

    def _write_back_taken(self, info: MessageInfo) -> bool:
        """Whether the simulated PowerSchool receives this grade write-back (always, in this profile)."""
        return True

    def _check_write_back(self, object_name: str, action: str, element: etree._Element) -> SifErrorInfo | None:
        district = self.district

        def invalid(
            desc: str, ext: str | None = None, category: int = E.CAT_EVENTS, code: int = E.CODE_EVENT_INVALID
        ) -> SifErrorInfo:
            return SifErrorInfo(category, code, desc, ext)

        required = {
            "GradingAssignment": (
                "RefId",
                "SectionInfoRefId",
                "TermInfoRefId",
                "SchoolInfoRefId",
                "GradingCategoryRefId",
            ),
            "GradingAssignmentScore": (
                "StudentPersonalRefId",
                "SectionInfoRefId",
                "SchoolInfoRefId",
                "GradingAssignmentRefId",
            ),
        }[object_name]
        if action not in ("Add", "Change", "Delete"):
            return invalid("SIF_EventObject Action must be Add, Change or Delete")
        if action == "Delete":
            # A Delete event names the object by its key (SIF 2.x Infrastructure, SIF_Event: "Delete ... contains
            # only the key of the object"): RefId, or for a score its assignment and student.
            keys = {
                "GradingAssignment": ("RefId",),
                "GradingAssignmentScore": ("GradingAssignmentRefId", "StudentPersonalRefId"),
            }[object_name]
            missing = [a for a in keys if not element.get(a)]
            if missing:
                return invalid(
                    f"{object_name} Delete lacks its key",
                    ", ".join(missing),
                    E.CAT_XML_VALIDATION,
                    E.CODE_XML_MISSING_ELEMENT,
                )
            return None
        missing = [a for a in required if not element.get(a)]
        if missing:
            return invalid(
                f"{object_name} lacks required attributes",
                ", ".join(missing),
                E.CAT_XML_VALIDATION,
                E.CODE_XML_MISSING_ELEMENT,
            )
        for name in ("PointsPossible", "ScorePoints"):
            value = element.findtext(q(name))
            if value is not None and not value.strip().isdigit():
                return invalid(
                    f"{name} must be a whole number (xs:unsignedInt)",
                    value,
                    E.CAT_XML_VALIDATION,
                    E.CODE_XML_INVALID_VALUE,
                )
        checks = [("SectionInfoRefId", "SectionInfo"), ("SchoolInfoRefId", "SchoolInfo")]
        if object_name == "GradingAssignment":
            checks += [("TermInfoRefId", "TermInfo"), ("GradingCategoryRefId", "GradingCategory")]
        else:
            checks += [("StudentPersonalRefId", "StudentPersonal")]
        for attribute, kind in checks:
            ref = element.get(attribute)
            if ref is None or district.index_of(kind, ref) is None:  # present: `required` was checked above
                return invalid(f"{attribute} does not name a {kind} of this district", ref)
        if object_name == "GradingAssignmentScore":
            assignment = element.get("GradingAssignmentRefId")
            if assignment not in self._writeback_assignments:
                return invalid("GradingAssignmentRefId names no GradingAssignment written back so far", assignment)
        return None

    # --- persistence -------------------------------------------------------------------------
    def _save(self) -> None:
        if self.state_file is None:
            return
        agents = []
        for agent in self.agents.values():
            queue = []
            for item in agent.queue:
                if isinstance(item, EventItem):
                    queue.append(
                        {
                            "type": "event",
                            "msg_id": item.msg_id,
                            "object_name": item.object_name,
                            "data": base64.b64encode(item.data).decode(),
                        }
                    )
                else:
                    entry = asdict(item)
                    entry.pop("cached")
                    entry["query_xml"] = item.query_xml.decode() if item.query_xml else None
                    queue.append({"type": "response", **entry})
            agents.append(
                {
                    "source_id": agent.source_id,
                    "name": agent.name,
                    "mode": agent.mode,
                    "versions": agent.versions,
                    "max_buffer_size": agent.max_buffer_size,
                    "version": agent.version,
                    "sleeping": agent.sleeping,
                    "subscriptions": sorted(agent.subscriptions),
                    "provides": sorted(agent.provides),
                    "frozen_msg_id": agent.frozen_msg_id,
                    "queue": queue,
                    "seen_msg_ids": list(agent.seen_msg_ids)[-1000:],
                }
            )
        state = {
            "spec": self.spec.to_dict(),
            "agents": agents,
            "grade_write_backs": [
                {
                    "msg_id": g.msg_id,
                    "source_id": g.source_id,
                    "object_name": g.object_name,
                    "action": g.action,
                    "xml": g.record.to_bytes().decode(),
                }
                for g in self.grade_write_backs
            ],
        }
        temp = self.state_file.with_suffix(".tmp")
        temp.write_text(json.dumps(state))
        temp.replace(self.state_file)  # atomic: a crash never leaves half a state file

    def _load(self, path: Path) -> None:
        state = json.loads(path.read_text())
        self.spec = DistrictSpec.from_dict(state["spec"])
        for entry in state["agents"]:
            agent = AgentState(
                source_id=entry["source_id"],
                name=entry["name"],
                mode=entry["mode"],
                versions=entry["versions"],
                max_buffer_size=entry["max_buffer_size"],
                version=entry["version"],
                sleeping=entry["sleeping"],
                subscriptions=set(entry["subscriptions"]),
                provides=set(entry["provides"]),
                frozen_msg_id=entry["frozen_msg_id"],
            )
            agent.seen_msg_ids.update((m, True) for m in entry["seen_msg_ids"])
            for item in entry["queue"]:
                if item.pop("type") == "event":
                    agent.queue.append(EventItem(item["msg_id"], base64.b64decode(item["data"]), item["object_name"]))
                else:
                    query_xml = item.pop("query_xml")
                    agent.queue.append(ResponseJob(**item, query_xml=query_xml.encode() if query_xml else None))
            self.agents[agent.source_id] = agent
        for entry in state["grade_write_backs"]:
            cls = GradingAssignment if entry["object_name"] == "GradingAssignment" else GradingAssignmentScore
            record = cls.from_bytes(entry["xml"].encode())
            if isinstance(record, GradingAssignment) and record.ref_id and entry["action"] == "Delete":
                self._writeback_assignments.discard(record.ref_id)
            elif isinstance(record, GradingAssignment) and record.ref_id:
                self._writeback_assignments.add(record.ref_id)
            self.grade_write_backs.append(
                GradeWriteBack(entry["msg_id"], entry["source_id"], entry["object_name"], entry["action"], record)
            )
