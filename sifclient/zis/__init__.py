"""ZIS simulator: ``ZisSimulator`` (HTTP server), ``Zone`` (protocol logic), packets of responses."""

from .packets import Packet, iter_response_packets
from .server import ZisSimulator
from .strict import PROFILES, StrictZone
from .zone import GradeWriteBack, Zone

__all__ = ["GradeWriteBack", "PROFILES", "Packet", "StrictZone", "Zone", "ZisSimulator", "iter_response_packets"]
