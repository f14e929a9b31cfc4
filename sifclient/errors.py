"""Typed exceptions: one family for SIF protocol errors, one for transport failures, one for bad XML."""

from __future__ import annotations

from dataclasses import dataclass

# SIF_Error categories, named in words so logs and the dashboard never show a bare number.
ERROR_CATEGORIES: dict[int, str] = {
    0: "Unknown",
    1: "XML validation",
    2: "Encryption",
    3: "Authentication",
    4: "Access and permissions",
    5: "Registration",
    6: "Provisioning",
    7: "Subscription",
    8: "Request and response",
    9: "Event reporting and processing",
    10: "Transport",
    11: "System (OS, database, vendor localized)",
    12: "Generic message handling",
    13: "SMB handling",
    14: "Zone services",
}

# SIF 2.x error codes of categories 1-13, category -> code -> meaning: the infrastructure tables of the SIF 2.x
# specification (as in OpenADK's SIFErrorCodes), limited to the codes the SIF 2.4 schema enumerates for the
# category (InfrastructureXxxErrorType in SIF_Message.xsd); a code missing from a table is reserved. The 2.x
# schemas have no 6/5 "Not the provider" nor 7/4 "Not a subscriber" (OpenADK keeps them from SIF 1.x). Not
# listed here: 4/13-15 and 8/19 (2.4 additions) and category 14, zone services (1-18 in the 2.4 schema).
ERROR_CODES: dict[int, dict[int, str]] = {
    1: {
        1: "Generic error",
        2: "Message is not well-formed",
        3: "Generic validation error",
        4: "Invalid value for element/attribute",
        6: "Missing mandatory element/attribute",
    },
    2: {1: "Generic error"},
    3: {
        1: "Generic error",
        2: "Generic authentication error (with signature)",
        3: "Missing sender's certificate",
        4: "Invalid certificate",
        5: "Sender's certificate is not trusted",
        6: "Expired certificate",
        7: "Invalid signature",
        8: "Invalid encryption algorithm (only accepts MD4)",
        9: "Missing public key of the receiver (when decrypting message)",
        10: "Missing receiver's private key (when decrypting message)",
    },
    4: {
        1: "Generic error",
        2: "No permission to register",
        3: "No permission to provide this object",
        4: "No permission to subscribe to this SIF_Event",
        5: "No permission to request this object",
        6: "No permission to respond to this object request",
        7: "No permission to publish SIF_Event",
        8: "No permission to administer policies",
        9: "SIF_SourceId is not registered",
        10: "No permission to publish SIF_Event Add",
        11: "No permission to publish SIF_Event Change",
        12: "No permission to publish SIF_Event Delete",
    },
    5: {
        1: "Generic error",
        2: "The SIF_SourceId is invalid",
        3: "Requested transport protocol is unsupported",
        4: "Requested SIF_Version(s) not supported",
        6: "Requested SIF_MaxBufferSize is too small",
        7: "ZIS requires a secure transport",
        9: "Agent is registered for Push mode",
        10: "ZIS does not support the requested Accept-Encoding value",
    },
    6: {1: "Generic error", 3: "Invalid object", 4: "Object already has a provider (SIF_Provide message)"},
    7: {1: "Generic error", 3: "Invalid object"},
    8: {
        1: "Generic error",
        3: "Invalid object",
        4: "No provider",
        7: "Responder does not support requested SIF_Version",
        8: "Responder does not support requested SIF_MaxBufferSize",
        9: "Unsupported query in request",
        10: "Invalid SIF_RequestMsgId specified in SIF_Response",
        11: "SIF_Response is larger than requested SIF_MaxBufferSize",
        12: "SIF_PacketNumber is invalid in SIF_Response",
        13: "SIF_Response does not match any SIF_Version from SIF_Request",
        14: "SIF_DestinationId does not match SIF_SourceId from SIF_Request",
        15: "No support for SIF_ExtendedQuery",
        16: "SIF_RequestMsgId deleted from cache due to timeout",
        17: "SIF_RequestMsgId deleted from cache by administrator",
        18: "SIF_Request cancelled by requesting agent",
    },
    9: {1: "Generic error", 3: "Invalid event"},
    10: {
        1: "Generic error",
        2: "Requested protocol is not supported",
        3: "Secure channel requested and no secure path exists",
        4: "Unable to establish connection",
    },
    11: {1: "Generic error"},
    12: {
        1: "Generic error",
        2: "Message not supported",
        3: "Version not supported",
        4: "Context not supported",
        5: "Protocol error",
        6: "No such message (as identified by SIF_OriginalMsgId)",
        7: "Multiple contexts not supported",
    },
    13: {
        1: "Generic error",
        2: "SMB can only be invoked during a SIF_Event acknowledgement",
        3: "Final SIF_Ack expected from Push-Mode Agent",
        4: "Incorrect SIF_MsgId in final SIF_Ack",
    },
}

CAT_XML_VALIDATION = 1
CAT_ACCESS = 4
CAT_REGISTRATION = 5
CAT_PROVISIONING = 6
CAT_SUBSCRIPTION = 7
CAT_REQUEST_RESPONSE = 8
CAT_EVENTS = 9
CAT_TRANSPORT = 10
CAT_SYSTEM = 11
CAT_GENERIC = 12
CAT_SMB = 13
CAT_ZONE_SERVICES = 14

# The codes this project raises or recognises, named after their meaning in ERROR_CODES. The prefix names
# the category (CODE_XML_ 1, CODE_ACCESS_ 4, CODE_REG_ 5, CODE_PROV_ 6, CODE_REQ_ 8, CODE_EVENT_ 9,
# CODE_TRANSPORT_ 10, CODE_GENERIC_ 12, CODE_ZONE_ 14); CODE_GENERIC alone is "Generic error", 1 in every category.
CODE_GENERIC = 1
CODE_XML_NOT_WELL_FORMED = 2
CODE_XML_INVALID = 3  # generic validation error
CODE_XML_INVALID_VALUE = 4
CODE_XML_MISSING_ELEMENT = 6
CODE_ACCESS_SOURCE_ID_NOT_REGISTERED = 9  # the ZIS does not know the agent (e.g. after a ZIS restart)
CODE_REG_TRANSPORT_UNSUPPORTED = 3  # requested transport protocol is unsupported
CODE_REG_VERSION_UNSUPPORTED = 4
CODE_REG_REGISTERED_FOR_PUSH = 9  # a Push-mode agent sent SIF_GetMessage: not "not registered"
CODE_PROV_ALREADY_HAS_PROVIDER = 4
CODE_REQ_INVALID_OBJECT = 3
CODE_REQ_NO_PROVIDER = 4
CODE_REQ_VERSION_UNSUPPORTED = 7  # responder does not support the requested SIF_Version
CODE_REQ_MAX_BUFFER_SIZE_UNSUPPORTED = 8  # responder cannot answer within the requested SIF_MaxBufferSize
CODE_REQ_EXTENDED_QUERY_UNSUPPORTED = 15
CODE_EVENT_INVALID = 3
CODE_TRANSPORT_UNREACHABLE = 4  # unable to establish connection
CODE_GENERIC_MESSAGE_UNSUPPORTED = 2
CODE_GENERIC_VERSION_UNSUPPORTED = 3  # version not supported (OpenZIS: a message not in the zone's version)
CODE_GENERIC_NO_SUCH_MESSAGE = 6  # no such message (as identified by SIF_OriginalMsgId)
CODE_ZONE_NOT_READY = 1  # what the simulator sends for a zone that is not ready


def category_name(category: int) -> str:
    return ERROR_CATEGORIES.get(category, f"category {category}")


@dataclass(frozen=True)
class SifErrorInfo:
    """The content of one SIF_Error element."""

    category: int
    code: int
    description: str
    extended_description: str | None = None

    @property
    def category_name(self) -> str:
        return category_name(self.category)

    def __str__(self) -> str:
        text = f"SIF error category {self.category} ({self.category_name}), code {self.code}: {self.description}"
        if self.extended_description:
            text += f" ({self.extended_description})"
        return text


class SifClientError(Exception):
    """Base of every exception this package raises."""


class SifError(SifClientError):
    """The ZIS (or a provider) answered with a SIF_Error.

    ``during`` names what the agent had sent (``SIF_Register``, ``SIF_Request``, ``SIF_GetMessage``...)
    and ``object_name`` the object a SIF_Request asked for, when the agent knows them.
    """

    def __init__(self, info: SifErrorInfo, *, during: str | None = None, object_name: str | None = None):
        super().__init__(str(info))
        self.info = info
        self.during = during
        self.object_name = object_name

    @property
    def category(self) -> int:
        return self.info.category

    @property
    def code(self) -> int:
        return self.info.code

    @property
    def description(self) -> str:
        return self.info.description


class ZoneAsleepError(SifClientError):
    """The ZIS answered SIF_Status 8, "receiver is sleeping": it did nothing with our message (the zone or the
    ZIS is asleep), and kept answering so after the agent's pauses. ``during`` names what we sent."""

    def __init__(self, during: str, status_desc: str | None = None):
        super().__init__(
            f"the zone is asleep: the ZIS answered our {during} with SIF_Status 8"
            + (f" ({status_desc})" if status_desc else "")
        )
        self.during = during
        self.status_desc = status_desc


class SifXmlError(SifClientError):
    """Bytes that are not an acceptable SIF message: malformed, DTD/entities, wrong namespace, oversize."""


class SifProtocolError(SifClientError):
    """A well-formed SIF message that does not follow the protocol (e.g. an unexpected reply)."""


class TransportError(SifClientError):
    """Base of every failure to exchange bytes with the ZIS.

    The Agent sets ``attempts`` (how many times it sent the message, retries included) and ``during``
    (what it was sending) before it gives up and lets the error out.
    """

    attempts: int = 1
    during: str | None = None

    def __init__(self, message: str, *, url: str):
        super().__init__(f"{message} [{url}]")
        self.url = url


class ZisConnectionError(TransportError):
    """The ZIS refused the connection or could not be reached (DNS, refused, reset)."""


class ZisTimeoutError(TransportError):
    """The ZIS did not answer within the configured timeout (``timeout`` seconds, per attempt)."""

    def __init__(self, message: str, *, url: str, timeout: float | None = None):
        super().__init__(message, url=url)
        self.timeout = timeout


class ZisTlsError(TransportError):
    """TLS handshake failed, typically an untrusted or mismatched certificate."""


class ZisHttpStatusError(TransportError):
    """The ZIS answered with an HTTP status other than 200."""

    def __init__(self, message: str, *, url: str, status_code: int):
        super().__init__(message, url=url)
        self.status_code = status_code

    @property
    def transient(self) -> bool:
        """5xx: the ZIS (or a proxy in front of it) failed this time; 4xx will fail the same way again."""
        return self.status_code >= 500


class ZisResponseTooLargeError(TransportError):
    """The ZIS answer is larger than max_response_bytes."""
