"""SIF 2.x Pull-mode agent library, with a ZIS simulator (``sifclient.zis``). No Django."""

from .agent import Agent, DrainStats, EventResult
from .errors import (
    SifClientError,
    SifError,
    SifErrorInfo,
    SifProtocolError,
    SifXmlError,
    TransportError,
    ZisConnectionError,
    ZisHttpStatusError,
    ZisResponseTooLargeError,
    ZisTimeoutError,
    ZisTlsError,
    ZoneAsleepError,
)
from .query import Condition, Query
from .streaming import Delivered
from .transport import HttpTransport
from .zonestatus import ZoneNode, ZoneStatus

__all__ = [
    "Agent",
    "Condition",
    "Delivered",
    "DrainStats",
    "EventResult",
    "HttpTransport",
    "Query",
    "SifClientError",
    "SifError",
    "SifErrorInfo",
    "SifProtocolError",
    "SifXmlError",
    "TransportError",
    "ZisConnectionError",
    "ZisHttpStatusError",
    "ZisResponseTooLargeError",
    "ZisTimeoutError",
    "ZisTlsError",
    "ZoneAsleepError",
    "ZoneNode",
    "ZoneStatus",
]
