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

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field

from canvas.simulator import CanvasSimulator
from canvas.simulator.runner import ImportRunner
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


class QuietCanvas(CanvasSimulator):
    """A Canvas simulator whose HTTP loop checks for shutdown every `poll_interval` seconds instead of every 0.1 s:
    a thousand idle simulators in one process then cost next to nothing between requests. (`start` is
    CanvasSimulator.start with that one argument changed.)"""

    poll_interval = 0.1

    def start(self) -> CanvasSimulator:
        self.runner = ImportRunner(self.state, base_url=lambda: self.url)
        self._server = SimulatorHTTPServer((self._host, self._port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": self.poll_interval},
            name="canvas-sim-http",
            daemon=True,
        )
        self._thread.start()
        return self


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
    canvas_poll_interval: float = 0.1
    _stack: ExitStack = field(default_factory=ExitStack)

    def add_zis(self, *, delay: float = 0.0, host: str = "127.0.0.1") -> HostedZis:
        zis = HostedZis(delay=delay, host=host)
        zis.start()
        self._stack.callback(zis.stop)
        self.zis_hosts.append(zis)
        return zis

    def add_district(self, slug: str, spec: DistrictSpec, zis: HostedZis, *, host: str = "127.0.0.1") -> FleetDistrict:
        canvas = QuietCanvas(token=CANVAS_TOKEN, host=host)
        canvas.poll_interval = self.canvas_poll_interval
        canvas.start()
        zone = zis.add_zone(slug.upper(), spec)
        district = FleetDistrict(slug, spec, zis, zone, canvas)
        self.districts.append(district)
        return district

    def close(self) -> None:
        # The Canvases stop side by side: each waits up to its poll interval for its HTTP loop to end.
        with ThreadPoolExecutor(max_workers=64) as pool:
            list(pool.map(lambda d: d.canvas.stop(), self.districts))
        self._stack.close()

    def __enter__(self) -> Peers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
