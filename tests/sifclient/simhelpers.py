"""Shared bits for the sifclient tests that run the ZIS simulator."""

from __future__ import annotations

from collections import Counter

from lxml import etree

from sifclient import Agent, HttpTransport
from sifclient.records import SifRecord
from tests.sifclient.sifschema import assert_valid

# The transports of the agents new_agent made, closed after each test (tests/sifclient/conftest.py): an open
# one keeps its pooled connection, which Python reports as an unclosed socket (ResourceWarning) when collected.
_transports: list[HttpTransport] = []


class Naps(list[float]):
    """Stands in for time.sleep: records each pause the agent asks for and returns at once."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def new_agent(zis, source_id: str = "canvas", **kwargs) -> Agent:
    """An agent of the simulated zone that never really waits (pass ``sleep=Naps()`` to see its pauses)."""
    transport = HttpTransport(zis.url, timeout=10.0, verify=zis.ca_file or True)
    _transports.append(transport)
    kwargs.setdefault("retry_delay", 0.01)
    kwargs.setdefault("sleep", Naps())
    return Agent(transport, source_id=source_id, **kwargs)


def close_agents() -> None:
    while _transports:
        _transports.pop().close()


def record_key(record: SifRecord) -> tuple:
    ref = getattr(record, "ref_id", None)
    return (record.OBJECT_NAME, ref or repr(record))


class Store:
    """A stand-in for the caller's persistent store: records by SIF_MsgId, what was seen."""

    def __init__(self):
        self.by_msg: dict[str, list[tuple]] = {}

    def save(self, delivered) -> None:
        self.by_msg[delivered.msg_id] = [record_key(r) for r in delivered.records()]

    def seen(self, msg_id: str) -> bool:
        return msg_id in self.by_msg

    def keys(self) -> list[tuple]:
        return [key for keys in self.by_msg.values() for key in keys]

    def counts(self) -> dict[str, int]:
        return dict(Counter(name for name, _ in self.keys()))


class Capture:
    """on_send hook: keeps every message the simulator sends (for schema validation)."""

    def __init__(self):
        self.sent: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.sent.append(data)

    def assert_all_valid(self) -> int:
        for data in self.sent:
            version = etree.fromstring(data).get("Version")
            assert_valid(data, version)
        return len(self.sent)
