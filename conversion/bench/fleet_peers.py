"""The peers of a fleet night: hosted ZIS servers carrying many districts' zones, and a Canvas per district.

A hosted ZIS is one server (one host and port) with a zone per district, as a ZIS provider runs it: OpenZIS keeps
its zones in its database and picks the zone from the request's URL (its ZIT_Server routes `/zones/<zone id>`-style
addresses to the zone's handler), so the simulator's `zones` map gets one `Zone` per district. Each server counts the
SIF requests it is answering at once (`peak_in_flight`), the figure the per-ZIS limit bounds, and can answer
slowly (`delay` seconds before each answer) to play an overloaded ZIS.

Canvas SIS ids are unique within a root account and the simulated districts reuse the same DCIDs, so each district
gets a Canvas (root account) of its own, as each real district has its own Canvas instance.
"""

from __future__ import annotations

import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from canvas.simulator import CanvasSimulator
from canvas.simulator.server import SimulatorHTTPServer
from sifclient.powerschool import DistrictSpec
from sifclient.zis import ZisSimulator, Zone

CANVAS_TOKEN = "fleet-canvas-token-0123456789"


class HostedZis(ZisSimulator):
    """A ZIS simulator serving many zones, counting the requests it answers at once."""

    def __init__(self, *, delay: float = 0.0, host: str = "127.0.0.1"):
        super().__init__(DistrictSpec(students=0, schools=1), zone_id="FLEET-UNUSED", host=host)
        self.zones.clear()
        self.delay = delay
        self.in_flight = 0
        self.peak_in_flight = 0
        self.requests = 0
        self.requests_by_zone: dict[str, int] = {}
        self._count_lock = threading.Lock()

    def add_zone(self, zone_id: str, spec: DistrictSpec) -> Zone:
        """A zone for one district; call after `start()` (the zone learns its URL)."""
        zone = Zone(zone_id, spec)
        zone.url = f"{self.base_url}/zones/{zone_id}"
        # The server calls `zone.handle` through the instance, so the counting wrapper replaces it there.
        zone.handle = self._counted(zone_id, zone.handle)  # type: ignore[method-assign,assignment]
        self.zones[zone_id] = zone
        return zone

    def _counted(self, zone_id: str, handle: Callable[[bytes], bytes]) -> Callable[[bytes], bytes]:
        def counted(body: bytes) -> bytes:
            with self._count_lock:
                self.in_flight += 1
                self.requests += 1
                self.requests_by_zone[zone_id] = self.requests_by_zone.get(zone_id, 0) + 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                if self.delay:
                    time.sleep(self.delay)
                return handle(body)
            finally:
                with self._count_lock:
                    self.in_flight -= 1

        return counted

    def reset_counts(self) -> None:
        with self._count_lock:
            self.peak_in_flight = self.in_flight
            self.requests = 0
            self.requests_by_zone.clear()


class AcceptLoop:
    """One thread that accepts connections for many HTTP servers, handing each to the server's own request thread.

    With a `serve_forever` thread per Canvas, a thousand idle simulators wake a thousand threads several times a
    second; every wake-up takes the GIL from the thread doing real work, and the simulators' process spent its time
    handing the GIL around (load average about 200 in the 1,000-district fleet). Here one thread waits on every
    listening socket at once and wakes only when a connection arrives. Hand-written because socketserver has no
    loop over several servers: this is serve_forever's own loop (a selector, then `_handle_request_noblock`) over
    many sockets, plus a socket pair to wake it for a change of the set.
    """

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._pending: list[tuple[str, socketserver.BaseServer, threading.Event | None]] = []
        self._lock = threading.Lock()
        self._serving: set[socketserver.BaseServer] = set()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="fleet-accept-loop", daemon=True)
        self._thread.start()

    def add(self, server: socketserver.BaseServer) -> None:
        self._change("add", server)

    def remove(self, server: socketserver.BaseServer) -> None:
        """Stop accepting for `server`; returns once the loop no longer selects its socket."""
        done = threading.Event()
        self._change("remove", server, done)
        done.wait(timeout=10)

    def _change(self, action: str, server: socketserver.BaseServer, done: threading.Event | None = None) -> None:
        # The loop thread alone touches the selector, so a change is queued and the loop woken to make it.
        with self._lock:
            self._pending.append((action, server, done))
        self._wake_write.send(b"x")

    def _apply_changes(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for action, server, done in pending:
            listening = server.socket  # type: ignore[attr-defined]  # every TCPServer has one
            if action == "add":
                self._selector.register(listening, selectors.EVENT_READ, server)
                self._serving.add(server)
            elif server in self._serving:  # a simulator stopped twice is removed once
                self._selector.unregister(listening)
                self._serving.discard(server)
            if done is not None:
                done.set()

    def _run(self) -> None:
        while not self._closed:
            for key, _ in self._selector.select():
                if key.data is None:
                    self._wake_read.recv(4096)
                    self._apply_changes()
                    continue
                key.data._handle_request_noblock()
        self._selector.close()

    def close(self) -> None:
        self._closed = True
        self._wake_write.send(b"x")
        self._thread.join(timeout=10)
        self._wake_read.close()
        self._wake_write.close()


class LoopedCanvas(CanvasSimulator):
    """A Canvas simulator answering through a shared `AcceptLoop` instead of a thread of its own."""

    def __init__(self, *, loop: AcceptLoop, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._loop = loop

    def _serve(self, server: SimulatorHTTPServer) -> None:
        self._loop.add(server)

    def _stop_serving(self, server: SimulatorHTTPServer) -> None:
        self._loop.remove(server)


@dataclass
class FleetDistrict:
    """One district's peers: its zone on a hosted ZIS and its own Canvas."""

    slug: str
    spec: DistrictSpec
    zis: HostedZis
    zone: Zone
    canvas: CanvasSimulator

    @property
    def zis_url(self) -> str:
        return self.zis.base_url + "/zones"

    def imports(self) -> int:
        """SIS imports Canvas received for this district."""
        assert self.canvas.runner is not None
        return len(self.canvas.runner.imports)


@dataclass
class Peers:
    """Started peers of a fleet (stop them with `close()` or as a context manager)."""

    zis_hosts: list[HostedZis] = field(default_factory=list)
    districts: list[FleetDistrict] = field(default_factory=list)
    _stack: ExitStack = field(default_factory=ExitStack)
    _loop: AcceptLoop | None = None

    def add_zis(self, *, delay: float = 0.0, host: str = "127.0.0.1") -> HostedZis:
        zis = HostedZis(delay=delay, host=host)
        zis.start()
        self._stack.callback(zis.stop)
        self.zis_hosts.append(zis)
        return zis

    def add_district(self, slug: str, spec: DistrictSpec, zis: HostedZis, *, host: str = "127.0.0.1") -> FleetDistrict:
        if self._loop is None:
            self._loop = AcceptLoop()
        canvas = LoopedCanvas(token=CANVAS_TOKEN, host=host, loop=self._loop)
        canvas.start()
        zone = zis.add_zone(slug.upper(), spec)
        district = FleetDistrict(slug, spec, zis, zone, canvas)
        self.districts.append(district)
        return district

    def close(self) -> None:
        for district in self.districts:
            district.canvas.stop()
        if self._loop is not None:
            self._loop.close()
        self._stack.close()

    def __enter__(self) -> Peers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
