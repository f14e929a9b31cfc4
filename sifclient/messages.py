"""Build and read SIF 2.x infrastructure messages.

Builders return an ``Outgoing`` (the SIF_MsgId and the serialized bytes); every element is made
with lxml, so user data is always escaped. Readers take a parsed ``SIF_Message`` root element.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lxml import etree

from .errors import SifErrorInfo, SifProtocolError
from .query import Query
from .records import SifRecord
from .safexml import SIF_NS, q, tag_text

DEFAULT_VERSION = "2.4"
# What the default-profile simulator's zone accepts (its agents are answered in the newest they allow).
SUPPORTED_VERSIONS = ("2.0r1", "2.4")
# Every SIF 2.x US version an agent of this package can speak: a zone speaks one of them, and our agent
# must speak that one (OpenZIS refuses any other, see sifclient.zis.strict).
SIF_VERSIONS = ("2.0r1", "2.1", "2.2", "2.3", "2.4", "2.5")

STATUS_SUCCESS = 0  # ZIS: success
STATUS_IMMEDIATE = 1  # agent: immediate ack, message processed
STATUS_INTERMEDIATE = 2  # agent: SMB intermediate ack (freeze)
STATUS_FINAL = 3  # agent: SMB final ack (ends SMB)
STATUS_DUPLICATE = 7  # ZIS: SIF_MsgId already received
STATUS_SLEEPING = 8  # receiver is sleeping
STATUS_NO_MESSAGES = 9  # ZIS: queue is empty

EVENT_ACTIONS = ("Add", "Change", "Delete")
SYSTEM_CONTROL_COMMANDS = ("SIF_Ping", "SIF_Sleep", "SIF_Wakeup", "SIF_GetMessage", "SIF_GetZoneStatus")


def new_msg_id() -> str:
    """A SIF_MsgId / RefId: 32 upper-case hex digits."""
    return uuid.uuid4().hex.upper()


def sif_timestamp(moment: dt.datetime | None = None) -> str:
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.isoformat(timespec="seconds")


@dataclass(frozen=True)
class Outgoing:
    msg_id: str
    data: bytes
    kind: str


def _envelope(
    kind: str,
    source_id: str,
    *,
    version: str,
    msg_id: str | None = None,
    destination_id: str | None = None,
    timestamp: str | None = None,
) -> tuple[etree._Element, etree._Element, str]:
    msg_id = msg_id or new_msg_id()
    root = etree.Element(q("SIF_Message"), nsmap={None: SIF_NS}, Version=version)
    body = etree.SubElement(root, q(kind))
    header = etree.SubElement(body, q("SIF_Header"))
    etree.SubElement(header, q("SIF_MsgId")).text = msg_id
    etree.SubElement(header, q("SIF_Timestamp")).text = timestamp or sif_timestamp()
    etree.SubElement(header, q("SIF_SourceId")).text = source_id
    if destination_id:
        etree.SubElement(header, q("SIF_DestinationId")).text = destination_id
    return root, body, msg_id


def _finish(root: etree._Element, msg_id: str, kind: str) -> Outgoing:
    return Outgoing(msg_id, etree.tostring(root, xml_declaration=True, encoding="UTF-8"), kind)


def _text(parent: etree._Element, tag: str, value: object) -> etree._Element:
    child: etree._Element = etree.SubElement(parent, q(tag))
    child.text = str(value)
    return child


def build_register(
    source_id: str,
    *,
    name: str,
    max_buffer_size: int,
    versions: Sequence[str] = ("2.*",),
    mode: str = "Pull",
    version: str = DEFAULT_VERSION,
    vendor: str = "sifconvert",
    product: str = "sifclient",
    product_version: str = "0.1",
    msg_id: str | None = None,
) -> Outgoing:
    if mode not in ("Pull", "Push"):
        raise ValueError("SIF_Mode is Pull or Push")
    root, body, msg_id = _envelope("SIF_Register", source_id, version=version, msg_id=msg_id)
    _text(body, "SIF_Name", name)
    for accepted in versions:
        _text(body, "SIF_Version", accepted)
    _text(body, "SIF_MaxBufferSize", int(max_buffer_size))
    _text(body, "SIF_Mode", mode)
    application = etree.SubElement(body, q("SIF_Application"))
    _text(application, "SIF_Vendor", vendor)
    _text(application, "SIF_Product", product)
    _text(application, "SIF_Version", product_version)
    return _finish(root, msg_id, "SIF_Register")


def build_unregister(source_id: str, *, version: str = DEFAULT_VERSION, msg_id: str | None = None) -> Outgoing:
    root, _body, msg_id = _envelope("SIF_Unregister", source_id, version=version, msg_id=msg_id)
    return _finish(root, msg_id, "SIF_Unregister")


def build_subscribe(
    source_id: str,
    object_names: Iterable[str],
    *,
    version: str = DEFAULT_VERSION,
    msg_id: str | None = None,
) -> Outgoing:
    names = list(object_names)
    if not names:
        raise ValueError("SIF_Subscribe needs at least one object")
    root, body, msg_id = _envelope("SIF_Subscribe", source_id, version=version, msg_id=msg_id)
    for name in names:
        etree.SubElement(body, q("SIF_Object"), ObjectName=name)
    return _finish(root, msg_id, "SIF_Subscribe")


def _object_names(holder: etree._Element | None) -> tuple[str, ...]:
    """The ObjectName of every SIF_Object in a SIF_Provision or SIF_AgentACL holder; an object without one names
    nothing and is left out (Provision.from_xml read it as None, which build_provision could not write back)."""
    if holder is None:
        return ()
    return tuple(name for o in holder.findall(q("SIF_Object")) if (name := o.get("ObjectName")))


@dataclass(frozen=True)
class ObjectRights:
    """Object names per role an agent may play in a zone: what SIF_Provision declares and SIF_AgentACL grants."""

    provide: tuple[str, ...] = ()
    subscribe: tuple[str, ...] = ()
    publish_add: tuple[str, ...] = ()
    publish_change: tuple[str, ...] = ()
    publish_delete: tuple[str, ...] = ()
    request: tuple[str, ...] = ()
    respond: tuple[str, ...] = ()


@dataclass(frozen=True)
class Provision(ObjectRights):
    """What an agent declares in SIF_Provision, one list per role."""

    _TAGS = (
        ("provide", "SIF_ProvideObjects"),
        ("subscribe", "SIF_SubscribeObjects"),
        ("publish_add", "SIF_PublishAddObjects"),
        ("publish_change", "SIF_PublishChangeObjects"),
        ("publish_delete", "SIF_PublishDeleteObjects"),
        ("request", "SIF_RequestObjects"),
        ("respond", "SIF_RespondObjects"),
    )

    @classmethod
    def from_xml(cls, body: etree._Element) -> Provision:
        return cls(**{attr: _object_names(body.find(q(tag))) for attr, tag in cls._TAGS})


# SIF_AgentACL: the ZIS's access control list for one agent, one holder per right (the same rights as
# SIF_Provision declares). A ZIS puts it in the SIF_Ack of a SIF_Register (and of SIF_GetAgentACL).
ACL_TAGS = (
    ("provide", "SIF_ProvideAccess"),
    ("subscribe", "SIF_SubscribeAccess"),
    ("publish_add", "SIF_PublishAddAccess"),
    ("publish_change", "SIF_PublishChangeAccess"),
    ("publish_delete", "SIF_PublishDeleteAccess"),
    ("request", "SIF_RequestAccess"),
    ("respond", "SIF_RespondAccess"),
)
PUBLISH_RIGHTS = {"Add": "publish_add", "Change": "publish_change", "Delete": "publish_delete"}


@dataclass(frozen=True)
class AgentAcl(ObjectRights):
    """What a zone lets one agent do, object by object (SIF_AgentACL)."""

    def may(self, right: str, object_name: str) -> bool:
        return object_name in getattr(self, right)

    def may_publish(self, object_name: str, action: str) -> bool:
        return self.may(PUBLISH_RIGHTS[action], object_name)

    def to_xml(self) -> etree._Element:
        root = etree.Element(q("SIF_AgentACL"))
        for attr, tag in ACL_TAGS:
            holder = etree.SubElement(root, q(tag))
            for name in getattr(self, attr):
                obj = etree.SubElement(holder, q("SIF_Object"), ObjectName=name)
                contexts = etree.SubElement(obj, q("SIF_Contexts"))
                etree.SubElement(contexts, q("SIF_Context")).text = "SIF_Default"
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> AgentAcl:
        return cls(**{attr: _object_names(root.find(q(tag))) for attr, tag in ACL_TAGS})


def build_provision(
    source_id: str,
    provision: Provision,
    *,
    version: str = DEFAULT_VERSION,
    msg_id: str | None = None,
) -> Outgoing:
    root, body, msg_id = _envelope("SIF_Provision", source_id, version=version, msg_id=msg_id)
    for attr, tag in Provision._TAGS:
        holder = etree.SubElement(body, q(tag))
        for name in getattr(provision, attr):
            etree.SubElement(holder, q("SIF_Object"), ObjectName=name)
    return _finish(root, msg_id, "SIF_Provision")


def build_system_control(
    source_id: str,
    command: str,
    *,
    version: str = DEFAULT_VERSION,
    msg_id: str | None = None,
) -> Outgoing:
    if command not in SYSTEM_CONTROL_COMMANDS:
        raise ValueError(f"unsupported SIF_SystemControl command {command!r}")
    root, body, msg_id = _envelope("SIF_SystemControl", source_id, version=version, msg_id=msg_id)
    data = etree.SubElement(body, q("SIF_SystemControlData"))
    etree.SubElement(data, q(command))
    return _finish(root, msg_id, "SIF_SystemControl")


def build_request(
    source_id: str,
    query: Query,
    *,
    max_buffer_size: int,
    versions: Sequence[str] = ("2.*",),
    version: str = DEFAULT_VERSION,
    destination_id: str | None = None,
    msg_id: str | None = None,
) -> Outgoing:
    root, body, msg_id = _envelope(
        "SIF_Request", source_id, version=version, msg_id=msg_id, destination_id=destination_id
    )
    for accepted in versions:
        _text(body, "SIF_Version", accepted)
    _text(body, "SIF_MaxBufferSize", int(max_buffer_size))
    body.append(query.to_xml())
    return _finish(root, msg_id, "SIF_Request")


def _error_element(parent: etree._Element, error: SifErrorInfo) -> None:
    holder = etree.SubElement(parent, q("SIF_Error"))
    _text(holder, "SIF_Category", error.category)
    _text(holder, "SIF_Code", error.code)
    _text(holder, "SIF_Desc", error.description)
    if error.extended_description:
        _text(holder, "SIF_ExtendedDesc", error.extended_description)


def response_envelope(
    source_id: str,
    *,
    destination_id: str,
    request_msg_id: str,
    packet_number: int,
    more_packets: bool,
    version: str = DEFAULT_VERSION,
    msg_id: str | None = None,
    timestamp: str | None = None,
) -> tuple[etree._Element, etree._Element, str]:
    """Start a SIF_Response packet; the caller appends SIF_ObjectData or SIF_Error."""
    root, body, msg_id = _envelope(
        "SIF_Response",
        source_id,
        version=version,
        msg_id=msg_id,
        destination_id=destination_id,
        timestamp=timestamp,
    )
    _text(body, "SIF_RequestMsgId", request_msg_id)
    _text(body, "SIF_PacketNumber", int(packet_number))
    _text(body, "SIF_MorePackets", "Yes" if more_packets else "No")
    return root, body, msg_id


def build_response(
    source_id: str,
    *,
    destination_id: str,
    request_msg_id: str,
    packet_number: int = 1,
    more_packets: bool = False,
    records: Iterable[SifRecord] = (),
    error: SifErrorInfo | None = None,
    version: str = DEFAULT_VERSION,
    msg_id: str | None = None,
) -> Outgoing:
    root, body, msg_id = response_envelope(
        source_id,
        destination_id=destination_id,
        request_msg_id=request_msg_id,
        packet_number=packet_number,
        more_packets=more_packets,
        version=version,
        msg_id=msg_id,
    )
    if error is not None:
        _error_element(body, error)
    else:
        data = etree.SubElement(body, q("SIF_ObjectData"))
        for record in records:
            data.append(record.to_xml(version))
    return _finish(root, msg_id, "SIF_Response")


def build_event(
    source_id: str,
    record: SifRecord,
    action: str,
    *,
    version: str = DEFAULT_VERSION,
    destination_id: str | None = None,
    msg_id: str | None = None,
) -> Outgoing:
    """One SIF_Event carries one object (a Change may carry only the changed elements)."""
    if action not in EVENT_ACTIONS:
        raise ValueError(f"SIF_Event action must be one of {EVENT_ACTIONS}")
    root, body, msg_id = _envelope(
        "SIF_Event", source_id, version=version, msg_id=msg_id, destination_id=destination_id
    )
    data = etree.SubElement(body, q("SIF_ObjectData"))
    event_object = etree.SubElement(data, q("SIF_EventObject"), ObjectName=record.OBJECT_NAME, Action=action)
    event_object.append(record.to_xml(version))
    return _finish(root, msg_id, "SIF_Event")


def build_ack(
    source_id: str,
    *,
    original_source_id: str,
    original_msg_id: str,
    status_code: int | None = None,
    status_desc: str | None = None,
    error: SifErrorInfo | None = None,
    data: etree._Element | None = None,
    version: str = DEFAULT_VERSION,
    msg_id: str | None = None,
) -> Outgoing:
    """A SIF_Ack: exactly one of ``status_code`` or ``error``; ``data`` goes into SIF_Status/SIF_Data."""
    if (status_code is None) == (error is None):
        raise ValueError("a SIF_Ack has either a status or an error")
    root, body, msg_id = _envelope("SIF_Ack", source_id, version=version, msg_id=msg_id)
    _text(body, "SIF_OriginalSourceId", original_source_id)
    _text(body, "SIF_OriginalMsgId", original_msg_id)
    if error is not None:
        _error_element(body, error)
    else:
        status = etree.SubElement(body, q("SIF_Status"))
        _text(status, "SIF_Code", status_code)
        if status_desc:
            _text(status, "SIF_Desc", status_desc)
        if data is not None:
            etree.SubElement(status, q("SIF_Data")).append(data)
    return _finish(root, msg_id, "SIF_Ack")


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MessageInfo:
    """Envelope facts of a parsed SIF_Message."""

    version: str
    kind: str
    msg_id: str
    source_id: str
    timestamp: str
    destination_id: str | None
    body: etree._Element = field(repr=False, compare=False)

    @property
    def root(self) -> etree._Element:
        """The SIF_Message element the body was read from."""
        root = self.body.getparent()
        if root is None:
            raise SifProtocolError(f"{tag_text(self.body)} was not read from a SIF_Message")
        return root


def read_message(root: etree._Element) -> MessageInfo:
    if len(root) != 1:
        raise SifProtocolError("SIF_Message must hold exactly one message element")
    body = root[0]
    header = body.find(q("SIF_Header"))
    if header is None:
        raise SifProtocolError(f"{tag_text(body)} has no SIF_Header")
    msg_id = (header.findtext(q("SIF_MsgId")) or "").strip()
    source_id = (header.findtext(q("SIF_SourceId")) or "").strip()
    if not msg_id or not source_id:
        raise SifProtocolError("SIF_Header lacks SIF_MsgId or SIF_SourceId")
    return MessageInfo(
        version=root.get("Version", ""),
        kind=etree.QName(body).localname,
        msg_id=msg_id,
        source_id=source_id,
        timestamp=(header.findtext(q("SIF_Timestamp")) or "").strip(),
        destination_id=(header.findtext(q("SIF_DestinationId")) or "").strip() or None,
        body=body,
    )


def read_error(element: etree._Element) -> SifErrorInfo:
    """A SIF_Error's category, code and texts; a category or code that is missing or not a whole number is a
    SifProtocolError naming the element (it was read as 0, "unknown", before: advice for the wrong error)."""
    parent = element.getparent()
    where = etree.QName(parent).localname + "/SIF_Error" if parent is not None else "SIF_Error"

    def number(tag: str) -> int:
        raw = (element.findtext(q(tag)) or "").strip()
        if not (raw.isascii() and raw.isdigit()):
            raise SifProtocolError(f"{where}/{tag}: {raw!r} is not a number")
        return int(raw)

    return SifErrorInfo(
        category=number("SIF_Category"),
        code=number("SIF_Code"),
        description=(element.findtext(q("SIF_Desc")) or "").strip(),
        extended_description=(element.findtext(q("SIF_ExtendedDesc")) or "").strip() or None,
    )


@dataclass(frozen=True)
class AckInfo:
    original_source_id: str
    original_msg_id: str
    status_code: int | None
    status_desc: str | None
    error: SifErrorInfo | None
    data: etree._Element | None = field(default=None, repr=False, compare=False)


def read_ack(body: etree._Element) -> AckInfo:
    if body.tag != q("SIF_Ack"):
        raise SifProtocolError(f"expected SIF_Ack, got {tag_text(body)}")
    error_el = body.find(q("SIF_Error"))
    status = body.find(q("SIF_Status"))
    status_code = None
    status_desc = None
    data = None
    if status is not None:
        code = (status.findtext(q("SIF_Code")) or "0").strip()
        if not (code.isascii() and code.isdigit()):  # a bare ValueError before
            raise SifProtocolError(f"SIF_Ack/SIF_Status/SIF_Code: {code!r} is not a number")
        status_code = int(code)
        status_desc = status.findtext(q("SIF_Desc"))
        holder = status.find(q("SIF_Data"))
        if holder is not None and len(holder):
            data = holder[0]
    return AckInfo(
        original_source_id=(body.findtext(q("SIF_OriginalSourceId")) or "").strip(),
        original_msg_id=(body.findtext(q("SIF_OriginalMsgId")) or "").strip(),
        status_code=status_code,
        status_desc=status_desc,
        error=read_error(error_el) if error_el is not None else None,
        data=data,
    )


def version_matches(version: str, pattern: str) -> bool:
    """SIF_Version wildcard match: ``*``, ``2.*``, ``2.0r*`` or an exact version."""
    if pattern == "*":
        return True
    if pattern.endswith("r*"):
        return version.startswith(pattern[:-1]) or version == pattern[:-2]
    if pattern.endswith(".*"):
        return version.split(".")[0] == pattern[:-2]
    return version == pattern


def choose_version(patterns: Iterable[str], supported: Sequence[str] = SUPPORTED_VERSIONS) -> str | None:
    """Newest supported version matched by any of the patterns."""
    patterns = list(patterns)
    for candidate in sorted(supported, key=_version_key, reverse=True):
        if any(version_matches(candidate, p) for p in patterns):
            return candidate
    return None


def _version_key(version: str) -> tuple[int, int, int]:
    major, _, rest = version.partition(".")
    minor, _, revision = rest.partition("r")
    return int(major), int(minor or 0), int(revision or 0)
