"""A SIF 2.x Pull-mode agent: register, request, drain the queue, ack only what was stored."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from lxml import etree

from . import errors as E
from .errors import (
    SifError,
    SifErrorInfo,
    SifProtocolError,
    TransportError,
    ZisHttpStatusError,
    ZisResponseTooLargeError,
    ZisTlsError,
    ZoneAsleepError,
)
from .messages import (
    DEFAULT_VERSION,
    SIF_VERSIONS,
    STATUS_DUPLICATE,
    STATUS_IMMEDIATE,
    STATUS_NO_MESSAGES,
    STATUS_SLEEPING,
    AckInfo,
    AgentAcl,
    Outgoing,
    Provision,
    build_ack,
    build_event,
    build_provision,
    build_register,
    build_request,
    build_subscribe,
    build_system_control,
    build_unregister,
    read_ack,
    read_message,
)
from .query import Query
from .records import SifRecord
from .safexml import DEFAULT_MAX_MESSAGE_BYTES, parse_message_bytes
from .streaming import AckEnvelope, Delivered, scan_message
from .transport import Transport
from .zonestatus import ZoneStatus

DEFAULT_MAX_BUFFER_SIZE = 256 * 1024  # PowerSchool's agent default


@dataclass
class DrainStats:
    delivered: int = 0  # messages the ZIS handed over (including redeliveries)
    handled: int = 0  # passed to the handler and acked
    skipped_seen: int = 0  # already seen (redelivered): acked without the handler
    responses: int = 0
    events: int = 0
    error_responses: int = 0  # SIF_Response packets carrying a SIF_Error
    reregistrations: int = 0
    stopped_by: str = ""  # "empty" (status 9) | "sleeping" (status 8) | "max_messages"
    response_errors: list[SifErrorInfo] = field(default_factory=list)
    acks_already_taken: int = 0  # acks the ZIS said it had no message for (a re-sent ack), see Agent.ack


@dataclass(frozen=True)
class EventResult:
    record: SifRecord
    msg_id: str
    error: SifErrorInfo | None

    @property
    def accepted(self) -> bool:
        return self.error is None


# "Not registered", in every form a ZIS says it: 4/9 in the specification; OpenZIS answers every message of an
# agent it holds no registration for with 5/1 "Agent Not Registerd" (register/RegisterError.php,
# notRegisteredError). 5/1 answering a SIF_Register itself is a failed registration, not this.
NOT_REGISTERED_CODES = frozenset(
    {(E.CAT_ACCESS, E.CODE_ACCESS_SOURCE_ID_NOT_REGISTERED), (E.CAT_REGISTRATION, E.CODE_GENERIC)}
)
# An ack for a message the ZIS no longer awaits an ack for: 12/6 in the specification; OpenZIS answers 9/1
# "Event was not updated as recieved" (ack/Ack.php, updateMessageQueue) when the message was acked already.
ACK_NOT_AWAITED_CODES = frozenset({(E.CAT_GENERIC, E.CODE_GENERIC_NO_SUCH_MESSAGE), (E.CAT_EVENTS, E.CODE_GENERIC)})
# The version error a zone of another SIF version answers (OpenZIS: SifProcessRequest.php, retrieveVersion).
VERSION_REFUSED = (E.CAT_GENERIC, E.CODE_GENERIC_VERSION_UNSUPPORTED)


def _same(outgoing: Outgoing) -> Outgoing:
    """What _exchange builds for a message already built: the same bytes, the same SIF_MsgId."""
    return outgoing


class Agent:
    """One agent in one zone. ``transport`` posts bytes to the zone URL (see HttpTransport).

    Transport failures (refused or dropped connections, timeouts, HTTP 5xx) are retried ``retries``
    times with ``retry_delay`` seconds between tries (doubling); TLS failures, HTTP 4xx and oversize
    answers are not. A ZIS that forgot the agent (restart) is re-registered once per operation.
    SIF_Errors are never retried (but for that re-registration): they raise SifError.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        source_id: str,
        name: str | None = None,
        version: str = DEFAULT_VERSION,
        max_buffer_size: int = DEFAULT_MAX_BUFFER_SIZE,
        accepted_versions: Sequence[str] = ("2.*",),
        max_message_bytes: int | None = None,
        retries: int = 3,
        retry_delay: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        asleep_retries: int = 2,
        detect_version: bool = True,
    ):
        if version not in SIF_VERSIONS:
            raise ValueError(f"SIF version {version!r} is not one of {SIF_VERSIONS}")
        self.transport = transport
        self.source_id = source_id
        self.name = name or source_id
        self.version = version
        self.max_buffer_size = max_buffer_size
        self.accepted_versions = tuple(accepted_versions)
        # A delivered packet is wrapped in a SIF_Ack; leave room for the envelope.
        self.max_message_bytes = max_message_bytes or max(DEFAULT_MAX_MESSAGE_BYTES, 2 * max_buffer_size)
        self.retries = retries
        self.retry_delay = retry_delay
        self._sleep = sleep
        self.asleep_retries = asleep_retries
        self.detect_version = detect_version
        self.registered = False
        self.reregistrations = 0  # times a ZIS that had forgotten us (restart) was re-registered
        self.acl: AgentAcl | None = None  # SIF_AgentACL of the last register ack, when the ZIS sends one
        self.detected_version: str | None = None  # the zone's version, when a 12/3 answer told it
        self.notes: list[str] = []  # what the agent did on its own, in words, for the job
        self.acks_already_taken = 0
        self.last_attempts = 0  # tries the last POST took (1 unless a transport failure was retried)
        self._reply_version: str | None = None

    # --- plumbing ------------------------------------------------------------------------------
    def _post(self, outgoing: Outgoing, during: str | None = None) -> bytes:
        """POST with bounded retries: connection failures, timeouts and HTTP 5xx are tried again, with
        the same bytes (same SIF_MsgId, so a ZIS that did get the first one answers "duplicate")."""
        delay = self.retry_delay
        for attempt in range(1, self.retries + 2):
            try:
                reply = self.transport.post(outgoing.data)
                self.last_attempts = attempt
                return reply
            except (ZisTlsError, ZisResponseTooLargeError) as exc:
                exc.attempts, exc.during = attempt, during or outgoing.kind
                raise  # configuration problems: retrying will not help
            except TransportError as exc:
                if isinstance(exc, ZisHttpStatusError) and not exc.transient:
                    retry = False  # 4xx (wrong URL, refused credentials): the same again next time
                else:
                    retry = attempt <= self.retries
                if not retry:
                    exc.attempts, exc.during = attempt, during or outgoing.kind
                    raise
                self._sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def _exchange(
        self,
        build: Callable[[], Outgoing],
        *,
        allow_reregister: bool = True,
        during: str | None = None,
        object_name: str | None = None,
    ) -> AckInfo:
        """Send a message, return the ZIS's SIF_Ack; SIF errors raise SifError, a sleeping zone ZoneAsleepError.

        "Not registered" (any form, see NOT_REGISTERED_CODES) gets one re-registration and one more try. A
        SIF_Status 8 (receiver sleeping: the ZIS did nothing with the message) is retried ``asleep_retries``
        times after a growing pause, as a new message, then raised as ZoneAsleepError.
        """
        outgoing = build()
        ack = self._read_ack(self._post(outgoing, during))
        if ack.error and self._is_not_registered(ack.error) and allow_reregister and self.registered:
            self._reregister(during or outgoing.kind)
            outgoing = build()
            ack = self._read_ack(self._post(outgoing, during))
        delay = self.retry_delay
        for _ in range(self.asleep_retries):
            if ack.error or ack.status_code != STATUS_SLEEPING:
                break
            self._sleep(delay)
            delay *= 2
            outgoing = build()
            ack = self._read_ack(self._post(outgoing, during))
        if ack.error:
            raise SifError(ack.error, during=during or outgoing.kind, object_name=object_name)
        if ack.status_code == STATUS_SLEEPING:
            raise ZoneAsleepError(during or outgoing.kind, ack.status_desc)
        return ack

    def _reregister(self, during: str) -> None:
        self.register()
        self.reregistrations += 1
        self.notes.append(f"The ZIS answered our {during} that the agent was not registered: registered again.")

    def _read_ack(self, reply: bytes) -> AckInfo:
        root = parse_message_bytes(reply, max_bytes=self.max_message_bytes)
        info = read_message(root)
        self._reply_version = info.version
        return read_ack(info.body)

    @staticmethod
    def _is_not_registered(error: SifErrorInfo) -> bool:
        """4/9 "SIF_SourceId is not registered" (a ZIS that lost our registration, e.g. a restart) or OpenZIS's
        5/1 "Agent Not Registerd".

        Not 5/9 ("Agent is registered for Push mode"): that is the agent's mode as the ZIS holds it, not a lost
        registration, and it is raised like any other SIF_Error. Nor 8/2 "The SIF_SourceId is invalid": no
        agent of that SourceId is defined in the zone, and registering again cannot change that.
        """
        return (error.category, error.code) in NOT_REGISTERED_CODES

    # --- registration ----------------------------------------------------------------------------
    def register(self, *, mode: str = "Pull") -> AckInfo:
        """SIF_Register; the ack's SIF_AgentACL, when the ZIS sends one, is kept in ``acl``.

        Two answers are met and cured once each: a zone of another SIF version (12/3) names its version in
        the reply's Version attribute, so we switch to it (``detected_version``) and register again; a
        registration that changed nothing within one second (a re-sent SIF_Register whose reply was lost, or
        one right after an earlier one) gets 5/1 from OpenZIS, so we wait a second and register again.
        """

        def build() -> Outgoing:
            return build_register(
                self.source_id,
                name=self.name,
                max_buffer_size=self.max_buffer_size,
                versions=self.accepted_versions,
                mode=mode,
                version=self.version,
            )

        try:
            ack = self._exchange(build, allow_reregister=False)
        except SifError as exc:
            if (
                (exc.category, exc.code) == VERSION_REFUSED
                and self.detect_version
                and self._reply_version in SIF_VERSIONS
                and self._reply_version != self.version
            ):
                self.notes.append(
                    f"The zone refused SIF {self.version} and answers in SIF {self._reply_version}: "
                    f"registered again in SIF {self._reply_version}."
                )
                self.version = self.detected_version = self._reply_version
                ack = self._exchange(build, allow_reregister=False)
            elif exc.category == E.CAT_REGISTRATION and exc.code == E.CODE_GENERIC:
                # register/Register.php + Agent.php updateRegistration (see sifclient.zis.strict).
                self._sleep(1.0)
                self.notes.append(
                    "The ZIS refused a registration repeated within the same second (5/1): "
                    "registered again a second later."
                )
                ack = self._exchange(build, allow_reregister=False)
            else:
                raise
        self.registered = True
        if ack.data is not None and etree.QName(ack.data).localname == "SIF_AgentACL":
            self.acl = AgentAcl.from_xml(ack.data)
        return ack

    def unregister(self) -> AckInfo:
        ack = self._exchange(lambda: build_unregister(self.source_id, version=self.version), allow_reregister=False)
        self.registered = False
        return ack

    def subscribe(self, object_names: Iterable[str]) -> AckInfo:
        names = list(object_names)
        return self._exchange(lambda: build_subscribe(self.source_id, names, version=self.version))

    def provision(self, provision: Provision) -> AckInfo:
        return self._exchange(lambda: build_provision(self.source_id, provision, version=self.version))

    # --- system control ----------------------------------------------------------------------------
    def _control(self, command: str) -> AckInfo:
        return self._exchange(
            lambda: build_system_control(self.source_id, command, version=self.version), during=command
        )

    def ping(self) -> bool:
        """True when the ZIS answers a SIF_Ping with success; transport failures still raise."""
        try:
            ack = self._control("SIF_Ping")
        except SifError:
            return False
        return ack.status_code == 0

    def sleep(self) -> AckInfo:
        return self._control("SIF_Sleep")

    def wakeup(self) -> AckInfo:
        return self._control("SIF_Wakeup")

    def zone_status(self) -> ZoneStatus:
        ack = self._control("SIF_GetZoneStatus")
        if ack.data is None or etree.QName(ack.data).localname != "SIF_ZoneStatus":
            raise SifProtocolError("SIF_GetZoneStatus reply carries no SIF_ZoneStatus")
        return ZoneStatus.from_xml(ack.data)

    # --- requests --------------------------------------------------------------------------------
    def request(self, object_name: str, query: Query | None = None, *, destination_id: str | None = None) -> str:
        """Send a SIF_Request; returns its SIF_MsgId (responses carry it as SIF_RequestMsgId)."""
        query = query or Query(object_name)
        if query.object_name != object_name:
            raise ValueError("query.object_name differs from object_name")
        outgoing = build_request(
            self.source_id,
            query,
            max_buffer_size=self.max_buffer_size,
            versions=self.accepted_versions,
            version=self.version,
            destination_id=destination_id,
        )
        self._exchange(lambda: outgoing, object_name=object_name)
        return outgoing.msg_id

    # --- pulling ----------------------------------------------------------------------------------
    def get_message(self) -> AckEnvelope:
        """One SIF_GetMessage; the envelope's status_code is 0 with ``delivered`` set, or 8/9.

        A status 8 (sleeping) is asked again ``asleep_retries`` times after a growing pause before it is
        returned: the caller decides what a sleeping zone means for its work.
        """
        reregistered = False
        asleep = 0
        delay = self.retry_delay
        for _ in range(self.retries + self.asleep_retries + 2):
            outgoing = build_system_control(self.source_id, "SIF_GetMessage", version=self.version)
            envelope = scan_message(self._post(outgoing, "SIF_GetMessage"), max_bytes=self.max_message_bytes)
            if envelope.error and self._is_not_registered(envelope.error) and self.registered and not reregistered:
                self._reregister("SIF_GetMessage")  # once per call: a ZIS that keeps forgetting us is an error
                reregistered = True
                continue
            if envelope.error:
                raise SifError(envelope.error, during="SIF_GetMessage")
            if envelope.status_code == STATUS_DUPLICATE:
                continue  # our retried GetMessage was a duplicate: ask again with a new id
            if envelope.status_code == STATUS_SLEEPING and asleep < self.asleep_retries:
                asleep += 1
                self._sleep(delay)
                delay *= 2
                continue
            return envelope
        raise SifProtocolError("SIF_GetMessage kept failing")

    def ack(self, delivered: Delivered, status_code: int = STATUS_IMMEDIATE) -> AckInfo:
        """Acknowledge a delivered message (status 1; 2/3 for selective message blocking)."""
        outgoing = build_ack(
            self.source_id,
            original_source_id=delivered.source_id,
            original_msg_id=delivered.msg_id,
            status_code=status_code,
            version=self.version,
        )
        try:
            return self._exchange(lambda: outgoing)
        except SifError as exc:
            if (exc.category, exc.code) in ACK_NOT_AWAITED_CODES:
                # The ZIS awaits no ack for it: it took this ack already (we re-sent it after a lost reply, and
                # OpenZIS, which has no duplicate detection, answers the copy 9/1), or it no longer holds the
                # message (a restart without state). Nothing is left to ack; were the message still queued, the
                # next SIF_GetMessage would deliver it again and ``seen`` would recognise it.
                self.acks_already_taken += 1
                return AckInfo(delivered.source_id, delivered.msg_id, None, "already gone", exc.info)
            raise

    def drain(
        self,
        handler: Callable[[Delivered], None],
        *,
        seen: Callable[[str], bool] | None = None,
        max_messages: int | None = None,
    ) -> DrainStats:
        """GetMessage until the queue is empty (status 9), handing each message to ``handler``.

        A message is acked only after ``handler`` returns; if it raises, the exception propagates
        and the message stays queued (the ZIS redelivers it). ``seen(msg_id)`` lets the caller's
        persistent store recognise a redelivered message, which is then acked without the handler.
        """
        stats = DrainStats()
        reregistrations_before = self.reregistrations
        taken_before = self.acks_already_taken
        while max_messages is None or stats.delivered < max_messages:
            envelope = self.get_message()
            stats.reregistrations = self.reregistrations - reregistrations_before
            stats.acks_already_taken = self.acks_already_taken - taken_before
            if envelope.status_code == STATUS_NO_MESSAGES:
                stats.stopped_by = "empty"
                return stats
            if envelope.status_code == STATUS_SLEEPING:
                stats.stopped_by = "sleeping"
                return stats
            delivered = envelope.delivered
            if delivered is None:
                raise SifProtocolError(f"SIF_GetMessage status {envelope.status_code} without a message")
            stats.delivered += 1
            if seen is not None and seen(delivered.msg_id):
                self.ack(delivered)
                stats.skipped_seen += 1
                continue
            handler(delivered)
            self.ack(delivered)
            stats.handled += 1
            if delivered.kind == "event":
                stats.events += 1
            else:
                stats.responses += 1
                if delivered.error is not None:
                    stats.error_responses += 1
                    stats.response_errors.append(delivered.error)
        stats.stopped_by = "max_messages"
        return stats

    # --- events (grade passback) ---------------------------------------------------------------------
    def send_event(self, object_name: str, action: str, records: Iterable[SifRecord]) -> list[EventResult]:
        """Publish one SIF_Event per record; a refused one has its SIF_Error in the result.

        A sleeping zone (SIF_Status 8, after the retries of _exchange) raises ZoneAsleepError: the event was not
        taken, and no later one would be either; the caller sends it again later.
        """
        results = []
        for record in records:
            if record.OBJECT_NAME != object_name:
                raise ValueError(f"record is a {record.OBJECT_NAME}, not a {object_name}")
            outgoing = build_event(self.source_id, record, action, version=self.version)
            try:
                self._exchange(functools.partial(_same, outgoing))
                results.append(EventResult(record, outgoing.msg_id, None))
            except SifError as exc:
                results.append(EventResult(record, outgoing.msg_id, exc.info))
        return results
