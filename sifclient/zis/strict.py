"""The strict profile of the ZIS simulator: a zone that answers as OpenZIS does.

OpenZIS (openzis/OpenZIS, ``OpenZIS/ZIT_APPLICATION``) is an open-source ZIS. Its behaviour is described
here in our own words, beside the code that models it, with the PHP file that shows it; none of its code
is copied. The default profile (``Zone``) keeps the specification's reading; this one keeps what that ZIS
really does where it parts from the specification:

* one SIF version per zone, every other one refused with 12/3;
* only agents defined in the zone may talk (8/2 otherwise), "not registered" is 5/1;
* no duplicate detection (no status 7): a re-sent ack gets 9/1, a re-sent request is queued again;
* a sleeping ZIS or zone answers every message with SIF_Status 8;
* the register ack carries the agent's SIF_AgentACL; requests, provisions and events are checked against it;
  an event needs its object provisioned by the sender (6/5 otherwise);
* no ZoneReady element; an empty answer of the provider is dropped, so the requester never hears of it;
* the queue hands out the message delivered and not yet acked first, then responses, then events, oldest first;
* a SIF_Response packet larger than the requester's SIF_MaxBufferSize is refused to the provider (8/11) and the
  requester never hears of it, nor of any later packet of that answer;
* an event is not queued for a receiver whose registered buffer is smaller than the event or whose registered
  version is not the event's; the publisher is told success all the same;
* every received message is validated against the zone version's schema (category 1 when invalid).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias, Unpack

from lxml import etree

from .. import errors as E
from ..errors import SifErrorInfo, SifProtocolError, SifXmlError
from ..messages import (
    SIF_VERSIONS,
    STATUS_FINAL,
    STATUS_NO_MESSAGES,
    STATUS_SLEEPING,
    STATUS_SUCCESS,
    AgentAcl,
    MessageInfo,
    Outgoing,
    Provision,
    build_ack,
    read_ack,
    read_message,
)
from ..powerschool import PUBLISHED_OBJECTS, WRITE_BACK_OBJECTS, DistrictSpec
from ..query import Query
from ..safexml import SIF_NS, parse_message_bytes, q
from ..schemas import validation_errors
from ..zonestatus import ZoneStatus
from .packets import Packet
from .zone import AgentState, QueueItem, ResponseJob, Zone, ZoneOptions

PROFILES = ("default", "strict")
PROVIDER_BUFFER_SIZE = 256 * 1024  # the PowerSchool SIF agent's default receive buffer

# The objects this zone knows (OpenZIS's DataObject::objectExists reads its object table).
KNOWN_OBJECTS = frozenset(PUBLISHED_OBJECTS) | frozenset(WRITE_BACK_OBJECTS) | {"StudentDailyAttendance"}

# What an agent defined in a strict zone may do unless the test says otherwise: request what PowerSchool
# publishes (and the grade write-back objects, answered only where the zone has a provider for them), provide and
# publish the grade write-back objects PowerSchool subscribes to.
DEFAULT_ACL = AgentAcl(
    request=PUBLISHED_OBJECTS + WRITE_BACK_OBJECTS,
    provide=WRITE_BACK_OBJECTS,
    publish_add=WRITE_BACK_OBJECTS,
    publish_change=WRITE_BACK_OBJECTS,
    publish_delete=WRITE_BACK_OBJECTS,
)

# OpenZIS's error texts (category, code, SIF_Desc, SIF_ExtendedDesc), as its error builders word them.
ErrorTemplate: TypeAlias = tuple[int, int, str, str]
# register/RegisterError.php: invalidSourceId (a SourceId no agent of the zone has) is category 8, code 2,
# although the text says "Registration Error"; notRegisteredError is 5/1 (typo theirs).
INVALID_SOURCE_ID: ErrorTemplate = (
    E.CAT_REQUEST_RESPONSE,
    2,
    "Registration Error",
    "The SIF_SourceId is invalid. {source_id}",
)
NOT_REGISTERED: ErrorTemplate = (E.CAT_REGISTRATION, 1, "Registration Error", "Agent Not Registerd")
REGISTER_FAILED: ErrorTemplate = (
    E.CAT_REGISTRATION,
    1,
    "Registration Error",
    "Error Registering Agent at agent->updateRegistration()",
)
# GeneralError.php: versionError, xmlValidationError, EventACKError.
VERSION_ERROR: ErrorTemplate = (E.CAT_GENERIC, 3, "Generic Message Handling", "Version not supported.")
XML_ERROR: ErrorTemplate = (E.CAT_XML_VALIDATION, 2, "XML Validation", "Message is not well-formed.")
ACK_NOT_UPDATED: ErrorTemplate = (
    E.CAT_EVENTS,
    1,
    "Event Reporting and Processing",
    "Event was not updated as recieved.",
)
# provision/ProvisionError.php. OpenZIS numbers "publish Change" 12 and "publish Delete" 11 (the
# specification has them the other way round); the texts below are theirs.
NOT_PROVIDER: ErrorTemplate = (E.CAT_PROVISIONING, 5, "Not Provider", "Not the provider of the object.")
PROVISION_INVALID_OBJECT: ErrorTemplate = (E.CAT_PROVISIONING, 3, "Provision Error", "Invalid object ({object}).")
ALREADY_PROVIDED: ErrorTemplate = (
    E.CAT_PROVISIONING,
    4,
    "Provision Error",
    "Object already has a provider ({object}).",
)
NO_PERMISSION: dict[str, ErrorTemplate] = {
    "provide": (E.CAT_ACCESS, 3, "Access and Permissions", "No permission to provide given object ({object})."),
    "subscribe": (E.CAT_ACCESS, 4, "Access and Permissions", "No permission to subscribe to given object ({object})."),
    "publish_add": (E.CAT_ACCESS, 10, "Access and Permissions", "No permission to publish SIF_Event Add ({object})."),
    "publish_change": (
        E.CAT_ACCESS,
        12,
        "Access and Permissions",
        "No permission to publish SIF_Event Change ({object}).",
    ),
    "publish_delete": (
        E.CAT_ACCESS,
        11,
        "Access and Permissions",
        "No permission to publish SIF_Event Delete ({object}).",
    ),
    "request": (E.CAT_ACCESS, 5, "Access and Permissions", "No permission to request this object ({object})."),
    "respond": (E.CAT_ACCESS, 6, "Access and Permissions", "No permission to respond to this object ({object})."),
}
# Note: ZIT_SERVER/index.php does not load ProvisionError.php, and the SIF_Request and SIF_Event branches of
# SifProcessRequest::processMessage do not either, so an unpatched OpenZIS stops with HTTP 500 where those two
# handlers call it (no permission, not the provider). A patched one answers the codes above; this profile
# answers them too, and the product's advice for HTTP 500 names the permissions (conversion/services/zis.py).
# request/RequestError.php.
REQUEST_INVALID_OBJECT: ErrorTemplate = (E.CAT_REQUEST_RESPONSE, 3, "Request Error", "Invalid object ({object}).")
NO_PROVIDER: ErrorTemplate = (E.CAT_REQUEST_RESPONSE, 4, "Request and Response", "No Provider.")


class ZisCrashed(Exception):
    """OpenZIS fails with a PHP error: the server answers HTTP 500 with no SIF message at all."""


def _error(template: ErrorTemplate, **values: object) -> SifErrorInfo:
    category, code, desc, ext = template
    return SifErrorInfo(category, code, desc, ext.format(**values) if values else ext)


@dataclass
class _Registration:
    second: int  # register_timestamp, to the second (OpenZIS keeps a DATETIME)
    fields: tuple[str, int]  # what updateRegistration writes besides the timestamp


class StrictZone(Zone):
    """A zone that answers as OpenZIS does (see the module docstring); ``Zone``'s API otherwise."""

    profile = "strict"

    def __init__(
        self,
        zone_id: str,
        spec: DistrictSpec,
        *,
        version: str = "2.4",
        validate: bool = True,
        clock: Callable[[], float] = time.time,
        provider_packet_size: int | None = None,
        provider_buffer_size: int = PROVIDER_BUFFER_SIZE,
        provider_version: str | None = None,
        **kwargs: Unpack[ZoneOptions],
    ):
        if version not in SIF_VERSIONS:
            raise ValueError(f"unknown SIF version {version!r}")
        super().__init__(zone_id, spec, **kwargs)
        self.version = version
        self.validate = validate
        self.clock = clock
        self.defined: dict[str, AgentAcl] = {}
        self.asleep = False
        self.dropped_empty: list[str] = []  # SIF_RequestMsgIds whose empty answer the zone dropped
        self._registrations: dict[str, _Registration] = {}
        self._request_copies: dict[str, int] = {}  # SIF_Request SIF_MsgId -> times queued
        # The simulated PowerSchool agent, as OpenZIS holds it: the packet size it answers in (None: the
        # requester's SIF_MaxBufferSize, as the specification asks), and the buffer and version it registered with.
        self.provider_packet_size = provider_packet_size
        self.provider_buffer_size = provider_buffer_size
        self.provider_version = provider_version or version
        self.dropped_oversized: list[tuple[str, int]] = []  # (SIF_RequestMsgId, packet) refused as too large
        self.events_not_queued: list[tuple[str, str, str]] = []  # (event SIF_MsgId, receiver, why)
        self._handed_out: dict[str, str] = {}  # source_id -> SIF_MsgId delivered and not acked yet
        self.provider_subscribes = True  # the simulated PowerSchool subscribes to the write-back objects
        # event/Event.php publishEvent inserts the subscriber's queue row without a status, and the MySQL schema
        # (db/mysql/update.sql, messagequeue.status_id DEFAULT 3) makes it "processed" at once: getFirstMessage
        # (status 1 or 2 only) never hands it out. Seen running OpenZIS on MariaDB: no subscriber ever receives
        # an event. False models that; True (the default) is a ZIS whose events arrive, as the specification says.
        self.deliver_events = True

    # --- zone administration (what an OpenZIS administrator does in its admin pages) ---------------
    def define_agent(self, source_id: str, acl: AgentAcl | None = None) -> None:
        """Agents must be defined in the zone, with their rights, before they may register."""
        with self._lock:
            self.defined[source_id] = acl or DEFAULT_ACL

    def forget(self, source_id: str) -> None:
        """The ZIS drops an agent's registration (an administrator, a database restore): the queue stays."""
        with self._lock:
            self._registrations.pop(source_id, None)
            agent = self.agents.get(source_id)
            if agent is not None:
                agent.mode = ""  # marks it unregistered while its queue is kept

    def set_asleep(self, asleep: bool) -> None:
        with self._lock:
            self.asleep = asleep

    def _head(self, agent: AgentState) -> QueueItem | None:
        # SystemControl.php, getFirstMessage (MySQL branch): the queue is read ordered by status, highest first,
        # then by message type (requests 1, responses 2, events 3), then by arrival. Handing a message out sets
        # its status to 2 ("delivered"), above the 1 of the messages waiting, so a message delivered and not
        # acked comes back before everything else, even before a response queued since (an event included).
        handed_out = self._handed_out.get(agent.source_id)
        if handed_out is not None:
            for item in agent.queue:
                if item.msg_id == handed_out:
                    return item
        responses = [item for item in agent.queue if isinstance(item, ResponseJob)]
        if responses:
            return responses[0]
        return super()._head(agent)

    def _registered(self, source_id: str) -> AgentState | None:
        agent = self.agents.get(source_id)
        return agent if agent is not None and agent.mode else None

    # --- entry point ---------------------------------------------------------------------------
    def handle(self, data: bytes) -> bytes:
        with self._lock:
            # ZIT_SERVER/index.php validates the bytes against the zone version's schema before anything
            # else; with SIF_VALIDATE "Y" an invalid message gets GeneralError::xmlValidationError (1/2).
            # (OpenZIS ships "W": warn and pass. The strict profile validates, so our mistakes show.)
            try:
                root = parse_message_bytes(data, max_bytes=self.max_message_bytes)
                info = read_message(root)
            except (SifXmlError, SifProtocolError) as exc:
                return self._send(
                    build_ack(
                        self.zis_source_id,
                        original_source_id="",
                        original_msg_id="",
                        version=self.version,
                        error=SifErrorInfo(*XML_ERROR[:3], f"{XML_ERROR[3]} {exc}"[:500]),
                    )
                )
            self.received.append(
                {"kind": info.kind, "source_id": info.source_id, "msg_id": info.msg_id, "version": info.version}
            )
            if self.validate:
                problems = validation_errors(root, self.version)
                if problems:
                    return self._send(
                        self._ack(info, error=SifErrorInfo(*XML_ERROR[:3], f"{XML_ERROR[3]} {problems[0]}"[:500]))
                    )
            # main_lib/SifProcessRequest.php, retrieveVersion: the message's Version must be the zone's.
            if info.version != self.version:
                return self._send(self._ack(info, error=_error(VERSION_ERROR)))
            # processMessage: an unknown SourceId (Agent::checkSourceId), then the sleep checks
            # (checkIfZitIsSleeping, checkIfZoneIsSleeping: SIF_Status 8 to every message, SIF_Register
            # and SIF_Wakeup included), then the message handler.
            if info.source_id not in self.defined:
                return self._send(self._ack(info, error=_error(INVALID_SOURCE_ID, source_id=info.source_id)))
            if self.asleep:
                return self._send(self._ack(info, code=STATUS_SLEEPING, desc="Receiver is sleeping"))
            try:
                reply = self._strict_dispatch(info)
            finally:
                self._save()
            return self._send(reply)

    def _ack(
        self,
        info: MessageInfo,
        *,
        code: int | None = STATUS_SUCCESS,
        desc: str | None = None,
        error: SifErrorInfo | None = None,
        data: etree._Element | None = None,
    ) -> Outgoing:
        # XmlHelper.php builds every reply with the zone's version, whatever the message had.
        return build_ack(
            self.zis_source_id,
            original_source_id=info.source_id,
            original_msg_id=info.msg_id,
            status_code=None if error else code,
            status_desc=desc,
            error=error,
            data=data,
            version=self.version,
        )

    def _strict_dispatch(self, info: MessageInfo) -> Outgoing:
        # No handler looks for a SIF_MsgId it has seen: OpenZIS has no duplicate detection, no status 7.
        if info.kind == "SIF_Register":
            return self._strict_register(info)
        if info.kind == "SIF_SystemControl" and self._command(info) == "SIF_Ping":
            return self._ack(info)  # systemcontrol/SystemControl.php, processPing: no registration check
        if info.kind == "SIF_SystemControl" and self._command(info) == "SIF_GetZoneStatus":
            return self._ack(info, data=self.zone_status().to_xml())  # processZoneStatus: none either
        agent = self._registered(info.source_id)
        if agent is None:
            # Every other handler (UnRegister, Ack, SystemControl, Provision, Event, Subscribe, Request,
            # Response) answers RegisterError::notRegisteredError first: 5/1, not 4/9.
            return self._ack(info, error=_error(NOT_REGISTERED))
        handler = {
            "SIF_Unregister": self._unregister,
            "SIF_Subscribe": self._strict_subscribe,
            "SIF_Provision": self._strict_provision,
            "SIF_SystemControl": self._strict_system_control,
            "SIF_Request": self._strict_request,
            "SIF_Ack": self._strict_ack,
            "SIF_Event": self._strict_event,
        }.get(info.kind)
        if handler is None:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_GENERIC, E.CODE_GENERIC_MESSAGE_UNSUPPORTED, f"{info.kind} is not supported by this ZIS"
                ),
            )
        return handler(agent, info)

    @staticmethod
    def _command(info: MessageInfo) -> str:
        data = info.body.find(q("SIF_SystemControlData"))
        return etree.QName(data[0]).localname if data is not None and len(data) else ""

    # --- registration ------------------------------------------------------------------------------
    def _strict_register(self, info: MessageInfo) -> Outgoing:
        """register/Register.php: the zone's version is recorded whatever the agent lists (its version check
        is commented out); a known registration is updated, and the update must change exactly one row."""
        body = info.body
        mode = (body.findtext(q("SIF_Mode")) or "").strip()
        if mode != "Pull":
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_REGISTRATION, E.CODE_REG_TRANSPORT_UNSUPPORTED, "This simulator only serves Pull-mode agents"
                ),
            )
        buffer = int(body.findtext(q("SIF_MaxBufferSize")) or 0)
        fields = (mode, buffer)
        second = int(self.clock())
        previous = self._registrations.get(info.source_id)
        if (
            previous is not None
            and self._registered(info.source_id) is not None
            and previous.second == second
            and previous.fields == fields
        ):
            # Agent.php, updateRegistration: it rewrites the registration row and succeeds only when the
            # database reports one row changed. MySQL does not count a row whose values did not change,
            # and register_timestamp has one-second resolution: a second SIF_Register within the same
            # second (a re-sent one whose reply was lost, say) gets RegisterError::genericError, 5/1.
            return self._ack(info, error=_error(REGISTER_FAILED))
        existing = self.agents.get(info.source_id)
        agent = AgentState(
            source_id=info.source_id,
            name=(body.findtext(q("SIF_Name")) or "").strip(),
            mode=mode,
            versions=[(v.text or "").strip() for v in body.findall(q("SIF_Version"))],
            max_buffer_size=buffer,
            version=self.version,
        )
        if existing is not None:  # the message queue belongs to the agent, not to its registration
            agent.queue, agent.frozen_msg_id = existing.queue, existing.frozen_msg_id
            if existing.mode:  # still registered: provisions and subscriptions stay
                agent.subscriptions, agent.provides = existing.subscriptions, existing.provides
        self.agents[info.source_id] = agent
        self._registrations[info.source_id] = _Registration(second, fields)
        if self.spec.smp_on and existing is None:
            self._queue_smp_events(agent)  # the simulated PowerSchool's state plug-in, as in the default profile
        # createAclAckMessage: the success ack carries acl/ACL.php's BuildACL, the agent's SIF_AgentACL.
        return self._ack(info, data=self.defined[info.source_id].to_xml())

    def _unregister(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        # Agent.php, unRegister: the registration ends and the agent's provisions and subscriptions go.
        self._registrations.pop(agent.source_id, None)
        del self.agents[agent.source_id]
        return self._ack(info)

    # --- provisioning --------------------------------------------------------------------------------
    def _strict_provision(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        """provision/Provision.php: each listed object must exist and be allowed by the agent's ACL; the
        new provisions then replace every earlier one of the agent (saveProvisions deletes, then inserts)."""
        provision = Provision.from_xml(info.body)
        acl = self.defined[agent.source_id]
        for right, _tag in Provision._TAGS:
            for name in getattr(provision, right):
                if name not in KNOWN_OBJECTS:
                    return self._ack(info, error=_error(PROVISION_INVALID_OBJECT, object=name))
                if not acl.may(right, name):
                    return self._ack(info, error=_error(NO_PERMISSION[right], object=name))
                if right == "provide" and name in PUBLISHED_OBJECTS:
                    return self._ack(info, error=_error(ALREADY_PROVIDED, object=name))
        agent.provides = set(provision.provide)
        agent.subscriptions = set(provision.subscribe)
        return self._ack(info)

    def _strict_subscribe(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        acl = self.defined[agent.source_id]
        for obj in info.body.findall(q("SIF_Object")):
            name = obj.get("ObjectName", "")
            # subscribe/Subscribe.php: an unknown object is 6/3, one outside the ACL 4/4.
            if name not in KNOWN_OBJECTS:
                return self._ack(info, error=_error(PROVISION_INVALID_OBJECT, object=name))
            if not acl.may("subscribe", name):
                return self._ack(info, error=_error(NO_PERMISSION["subscribe"], object=name))
        return self._subscribe(agent, info)

    # --- system control --------------------------------------------------------------------------------
    def _strict_system_control(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        command = self._command(info)
        if command == "SIF_GetMessage":
            return self._strict_get_message(agent, info)
        return self._system_control(agent, info)

    def zone_status(self) -> ZoneStatus:
        status = super().zone_status()
        # SystemControl.php, buildNodeList: each node with the version and buffer it registered with.
        nodes = tuple(
            dataclasses.replace(node, versions=(self.provider_version,), max_buffer_size=self.provider_buffer_size)
            if node.source_id == self.provider_id
            else node
            for node in status.nodes
        )
        subscribers = {k: v for k, v in status.subscribers.items() if k != self.provider_id or self.provider_subscribes}
        # OpenZIS's zone status has no readiness element (SIF 2.x defines none): ZoneReady is absent.
        return ZoneStatus(
            zone_id=status.zone_id,
            name=status.name,
            ready=None,
            nodes=nodes,
            providers=status.providers,
            subscribers=subscribers,
            supported_versions=(self.version,),
            url=status.url,
        )

    def _strict_get_message(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        """SystemControl.php, processGetMessage / getFirstMessage: the oldest message not yet acknowledged,
        status 9 when there is none. The agent's own SIF_Sleep is not consulted there."""
        while True:
            item = self._head(agent)
            if item is None:
                return self._ack(info, code=STATUS_NO_MESSAGES)
            if isinstance(item, ResponseJob) and item.packet_number == 1:
                packet = self.current_packet(item)
                if packet.record_count == 0 and not packet.more_packets and b"SIF_Error" not in packet.data:
                    # response/Response.php, setupResponseNew: a SIF_Response whose SIF_ObjectData has no
                    # child has no object name; building its DataObject fails, the provider gets a system
                    # error (11/1) and nothing is queued for the requester, who never hears of the answer.
                    agent.queue.remove(item)
                    self.dropped_empty.append(item.request_msg_id)
                    continue
            if isinstance(item, ResponseJob) and self._oversized(item):
                continue
            payload = item.data if not isinstance(item, ResponseJob) else self.current_packet(item).data
            self._handed_out[agent.source_id] = item.msg_id
            return self._ack(info, data=etree.fromstring(payload))

    def current_packet(self, job: ResponseJob) -> Packet:
        if self.provider_packet_size is None:
            return super().current_packet(job)
        # A provider that packs to a size of its own rather than to the requester's SIF_MaxBufferSize.
        requested = job.max_buffer_size
        job.max_buffer_size = self.provider_packet_size
        try:
            return super().current_packet(job)
        finally:
            job.max_buffer_size = requested

    def _oversized(self, job: ResponseJob) -> bool:
        """response/Response.php, processResponse: the SIF_Response element of a provider's packet is measured
        against the SIF_MaxBufferSize of the request it answers (RequestObject::compareBufferSize); a larger one
        is answered to the provider with RequestError::invalidBufferSize (8/11) and not queued. createResponseError
        builds an 8/11 SIF_Response for the requester but never inserts it anywhere, so the requester hears
        nothing. The provider's next packet is then refused too (8/12: ResponseObject still expects the refused
        packet's number), so the answer ends there for the requester: the job is dropped whole."""
        packet = self.current_packet(job)
        body = etree.fromstring(packet.data).find(q("SIF_Response"))
        if body is None or len(etree.tostring(body)) <= job.max_buffer_size:
            return False
        self.dropped_oversized.append((job.request_msg_id, job.packet_number))
        for queue in (agent.queue for agent in self.agents.values()):
            if job in queue:
                queue.remove(job)
        return True

    # --- acknowledgements ---------------------------------------------------------------------------
    def _strict_ack(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        """ack/Ack.php, updateMessageQueue: the acked message's queue row is set to "processed"; when no row
        changes (it was processed already: a re-sent ack) the answer is GeneralError::EventACKError, 9/1."""
        ack = read_ack(info.body)
        head = self._head(agent)
        if ack.status_code == STATUS_FINAL and agent.frozen_msg_id == ack.original_msg_id:
            return self._agent_ack(agent, info)
        if head is None or head.msg_id != ack.original_msg_id:
            return self._ack(info, error=_error(ACK_NOT_UPDATED))
        reply = self._agent_ack(agent, info)  # (reads the head again: the handed-out message still leads)
        if self._handed_out.get(agent.source_id) == ack.original_msg_id:
            del self._handed_out[agent.source_id]  # acked: its row is "processed"
        return reply

    # --- requests ------------------------------------------------------------------------------------
    def _strict_request(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        """request/Request.php, processRequest and setupRequest."""
        body = info.body
        buffer = int(body.findtext(q("SIF_MaxBufferSize")) or 0)
        if buffer > agent.max_buffer_size:
            # Agent::bufferSizeAllowed: a request asking for a larger buffer than the agent registered is
            # answered with success and silently not queued.
            return self._ack(info)
        query_el = body.find(q("SIF_Query"))
        object_name = ""
        if query_el is not None:
            object_name = Query.from_xml(query_el).object_name
        else:
            from_el = body.find(f".//{q('SIF_From')}")
            object_name = from_el.get("ObjectName", "") if from_el is not None else ""
        if object_name not in KNOWN_OBJECTS:
            return self._ack(info, error=_error(REQUEST_INVALID_OBJECT, object=object_name))
        if not self.defined[agent.source_id].may("request", object_name):
            return self._ack(info, error=_error(NO_PERMISSION["request"], object=object_name))
        if query_el is None:
            return self._ack(
                info,
                error=SifErrorInfo(
                    E.CAT_REQUEST_RESPONSE,
                    E.CODE_REQ_EXTENDED_QUERY_UNSUPPORTED,
                    "Only SIF_Query requests are supported by this provider",
                ),
            )
        destination = info.destination_id or self.provider_id
        if object_name not in PUBLISHED_OBJECTS + self.provides_grading() or destination != self.provider_id:
            return self._ack(info, error=_error(NO_PROVIDER))
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
        # setupRequest inserts a queue row for every SIF_Request it gets, without looking for its SIF_MsgId:
        # a re-sent request is queued again and the provider answers it again, in messages of their own ids.
        copy = self._request_copies.get(info.msg_id, 0)
        self._request_copies[info.msg_id] = copy + 1
        query = Query.from_xml(query_el)
        agent.queue.append(
            ResponseJob(
                request_msg_id=info.msg_id,
                object_name=object_name,
                destination_id=agent.source_id,
                max_buffer_size=buffer,
                version=self.version,
                copy=copy,
                query_xml=etree.tostring(query_el) if (query.conditions or query.elements) else None,
            )
        )
        return self._ack(info)

    # --- events ------------------------------------------------------------------------------------------
    def _strict_event(self, agent: AgentState, info: MessageInfo) -> Outgoing:
        """event/Event.php, processEvent: the object must exist (6/3), the agent must be allowed to publish
        that action (4/10, 4/12, 4/11) and must be the object's provider (ProvisionError::notProviderError,
        6/5); then the event is queued for every subscriber."""
        event_object = info.body.find(f"{q('SIF_ObjectData')}/{q('SIF_EventObject')}")
        object_name = event_object.get("ObjectName", "") if event_object is not None else ""
        action = (event_object.get("Action", "") if event_object is not None else "").capitalize()
        if object_name not in KNOWN_OBJECTS:
            return self._ack(info, error=_error(PROVISION_INVALID_OBJECT, object=object_name))
        acl = self.defined[agent.source_id]
        right = {"Add": "publish_add", "Change": "publish_change", "Delete": "publish_delete"}.get(action)
        if right is None or not acl.may(right, object_name):
            return self._ack(info, error=_error(NO_PERMISSION[right or "publish_add"], object=object_name))
        if object_name not in agent.provides:
            return self._ack(info, error=_error(NOT_PROVIDER))
        if not (self.provider_subscribes and object_name in WRITE_BACK_OBJECTS) and not any(
            other is not agent and object_name in other.subscriptions for other in self.agents.values()
        ):
            # publishEvent, when no agent subscribes to the object, calls GeneralError::generalError (meant as a
            # 11/1 "SIF DestinationId not found"), a function GeneralError.php does not have: PHP stops with a
            # fatal error, HTTP 500 and no SIF answer. Nothing was queued; sending again changes nothing until
            # some agent (PowerSchool, with grade write-back on) subscribes.
            raise ZisCrashed(f"no subscriber for {object_name}")
        return self._event(agent, info)

    def _event_receivers(self, agent: AgentState, info: MessageInfo, object_name: str) -> list[AgentState]:
        """event/Event.php, publishEvent: for each subscriber, an event larger than the buffer it registered
        (the message measured without its namespace declarations) or of another version than the one it
        registered is not queued for it; OpenZIS only writes a log entry (SifLogEntry, 4/2 and 4/4), and the
        publisher's ack says success all the same."""
        size = len(etree.tostring(info.root).replace(f' xmlns="{SIF_NS}"'.encode(), b"", 1))
        receivers = []
        for other in super()._event_receivers(agent, info, object_name):
            if not self.deliver_events:
                self.events_not_queued.append((info.msg_id, other.source_id, "status 3"))
            elif size > other.max_buffer_size:
                self.events_not_queued.append((info.msg_id, other.source_id, "buffer"))
            elif other.version != info.version:
                self.events_not_queued.append((info.msg_id, other.source_id, "version"))
            else:
                receivers.append(other)
        return receivers

    def _write_back_taken(self, info: MessageInfo) -> bool:
        # The simulated PowerSchool receives grade write-backs as a subscriber: the same checks as for any
        # receiver (Event.php, publishEvent), against the buffer and version it registered with.
        size = len(etree.tostring(info.root).replace(f' xmlns="{SIF_NS}"'.encode(), b"", 1))
        if not self.deliver_events:
            self.events_not_queued.append((info.msg_id, self.provider_id, "status 3"))
            return False
        if size > self.provider_buffer_size:
            self.events_not_queued.append((info.msg_id, self.provider_id, "buffer"))
            return False
        if self.provider_version != info.version:
            self.events_not_queued.append((info.msg_id, self.provider_id, "version"))
            return False
        return True
