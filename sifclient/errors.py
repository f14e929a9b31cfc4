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

# Error codes this project raises or recognises; category -> code -> meaning.
# They follow the SIF 2.x infrastructure tables as far as this project uses them.
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

CODE_GENERIC = 1
CODE_XML_NOT_WELL_FORMED = 2
CODE_XML_INVALID = 3
CODE_XML_INVALID_VALUE = 4
CODE_XML_MISSING_ELEMENT = 6
CODE_REG_NOT_REGISTERED = 9          # used by the simulator for "agent is not registered"
CODE_REG_VERSION_UNSUPPORTED = 4
CODE_REG_MODE_UNSUPPORTED = 6
CODE_REQ_INVALID_OBJECT = 2
CODE_REQ_NO_PROVIDER = 3
CODE_REQ_BUFFER_TOO_SMALL = 5
CODE_REQ_VERSION_UNSUPPORTED = 6
CODE_EVENT_INVALID = 2
CODE_TRANSPORT_UNREACHABLE = 4
CODE_GENERIC_NO_SUCH_MESSAGE = 6
CODE_ZONE_NOT_READY = 1


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
        text = (
            f"SIF error category {self.category} ({self.category_name}), "
            f"code {self.code}: {self.description}"
        )
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
