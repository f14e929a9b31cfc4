"""The ZIS simulator as a real HTTP(S) server (stdlib ThreadingHTTPServer).

* ``POST /zones/<ZONE_ID>``  SIF messages (raw XML in, raw XML out)
* ``GET  /_sim/spec``         the district spec and switches (JSON)
* ``POST /_sim/spec``         change fields of the spec: ``{"students": 500, "smp_on": true}``
* ``POST /_sim/day``          bump the churn day by one (or ``{"day": N}``)
* ``GET  /_sim/received``     summaries of the messages the zone received
* ``GET  /_sim/grades``       grade write-back events accepted (GradingAssignment / ...Score)
* ``GET  /_sim/counts``       how many records a full pull of each object returns
* strict profile only: ``POST /_sim/agents {"source_id": "X"}`` defines an agent in the zone (default
  rights), ``POST /_sim/sleep {"asleep": true}`` puts the ZIS to sleep, ``POST /_sim/forget
  {"source_id": "X"}`` drops a registration
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..powerschool import District, DistrictSpec
from ..safexml import DEFAULT_MAX_MESSAGE_BYTES
from .strict import PROFILES, StrictZone, ZisCrashed
from .tls import CertificateFiles, make_certificates
from .zone import GradeWriteBack, Zone

# socketserver's serve_forever notices shutdown() only between polls of its listening socket (0.5 s by default; the
# stdlib has no way to wake it), so stop() waits up to this long. A restart in a test (a ZIS that goes away and comes
# back) and every test's teardown pay it.
SHUTDOWN_POLL_SECONDS = 0.02


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms
    # to every keep-alive exchange.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and CLI log elsewhere
        if self.server.simulator.verbose:
            super().log_message(format, *args)

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: object) -> None:
        self._reply(status, json.dumps(payload, default=str).encode(), "application/json")

    def _body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(411, b"Content-Length required", "text/plain")
            return None
        if int(length) > self.server.simulator.max_message_bytes:
            self._reply(413, b"message too large", "text/plain")
            self.close_connection = True
            return None
        return self.rfile.read(int(length))

    def do_POST(self) -> None:
        sim = self.server.simulator
        path = self.path.rstrip("/")
        if path.startswith("/zones/"):
            zone = sim.zones.get(path[len("/zones/") :])
            body = self._body()
            if body is None:
                return
            if zone is None:
                self._reply(404, b"no such zone", "text/plain")
                return
            if not sim.authorized(self.headers.get("Authorization")):
                # OpenZIS (SifProcessRequest.php, authenticateAgent), in a zone that authenticates by user
                # name and password: a missing or wrong credential goes to GeneralError::invalidUserError with
                # a message that function does not have; building the 3/1 "Invalid User." answer from nothing
                # fails, and PHP ends the request with HTTP 500 and no SIF answer at all.
                self._reply(500, b"", "text/html")
                return
            try:
                reply = zone.handle(body)
            except ZisCrashed:
                self._reply(500, b"", "text/html")  # OpenZIS's PHP fatal error (see sifclient.zis.strict)
                return
            self._reply(200, reply, "application/xml")
            return
        body = self._body()
        if body is None:
            return
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            self._json(400, {"error": "body is not JSON"})
            return
        try:
            if path == "/_sim/spec":
                sim.update_spec(**payload)
                self._json(200, sim.spec.to_dict())
            elif path == "/_sim/day":
                sim.update_spec(day=payload.get("day", sim.spec.day + 1))
                self._json(200, sim.spec.to_dict())
            elif path in ("/_sim/agents", "/_sim/sleep", "/_sim/forget") and not isinstance(sim.zone, StrictZone):
                self._json(404, {"error": "only the strict profile has zone administration"})
            elif path == "/_sim/agents" and isinstance(sim.zone, StrictZone):
                sim.zone.define_agent(str(payload["source_id"]))
                self._json(200, {"defined": sorted(sim.zone.defined)})
            elif path == "/_sim/sleep" and isinstance(sim.zone, StrictZone):
                sim.zone.set_asleep(bool(payload.get("asleep", True)))
                self._json(200, {"asleep": sim.zone.asleep})
            elif path == "/_sim/forget" and isinstance(sim.zone, StrictZone):
                sim.zone.forget(str(payload["source_id"]))
                self._json(200, {"forgotten": payload["source_id"]})
            else:
                self._json(404, {"error": "unknown control endpoint"})
        except (TypeError, ValueError, KeyError) as exc:
            self._json(400, {"error": str(exc)})

    def do_GET(self) -> None:
        sim = self.server.simulator
        path = self.path.rstrip("/")
        if path == "/_sim/spec":
            self._json(200, sim.spec.to_dict())
        elif path == "/_sim/received":
            self._json(200, list(sim.zone.received))
        elif path == "/_sim/grades":
            self._json(
                200,
                [
                    {
                        "msg_id": g.msg_id,
                        "source_id": g.source_id,
                        "object_name": g.object_name,
                        "action": g.action,
                        "record": g.record.changed_fields(),
                    }
                    for g in sim.zone.grade_write_backs
                ],
            )
        elif path == "/_sim/counts":
            self._json(200, District(sim.spec).counts())
        else:
            self._json(404, {"error": "not found"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    simulator: ZisSimulator

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()

    # socketserver types a request as a socket or, for datagram servers, (data, socket); a TCP server's is a socket.
    def process_request(self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self.connections_lock:
                self.open_connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            with self.connections_lock:
                self.open_connections.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Drop keep-alive connections too, so a stopped ZIS is really gone (as after a crash)."""
        with self.connections_lock:
            connections = list(self.open_connections)
            self.open_connections.clear()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            connection.close()


class ZisSimulator:
    """A ZIS with one zone whose provider is a simulated PowerSchool SIF agent.

    Use as a context manager: ``with ZisSimulator(DistrictSpec(students=100)) as zis: zis.url``.
    """

    def __init__(
        self,
        district: DistrictSpec | None = None,
        *,
        zone_id: str = "PSZONE",
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        state_dir: str | Path | None = None,
        on_send: Callable[[bytes], None] | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        verbose: bool = False,
        profile: str = "default",
        zone_version: str = "2.4",
        agents: tuple[str, ...] = (),
        credentials: tuple[str, str] | None = None,
    ):
        """``profile="strict"`` answers as OpenZIS does (sifclient.zis.strict): one SIF version per zone
        (``zone_version``), and only the agents defined in the zone (``agents``, or ``zone.define_agent``).
        ``credentials=(user, password)`` (strict only) makes the zone authenticate agents by HTTP Basic."""
        self.host = host
        self.port = port
        self.tls = tls
        self.verbose = verbose
        self.max_message_bytes = max_message_bytes
        self.state_dir = Path(state_dir) if state_dir else None
        state_file = None
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            state_file = self.state_dir / f"zone-{zone_id}.json"
        if profile not in PROFILES:
            raise ValueError(f"profile is one of {PROFILES}")
        self.profile = profile
        if credentials is not None and profile != "strict":
            raise ValueError("credentials belong to the strict profile")
        self.credentials = credentials
        self.zone: Zone
        if profile == "strict":
            strict = StrictZone(
                zone_id,
                district or DistrictSpec(),
                on_send=on_send,
                state_file=state_file,
                max_message_bytes=max_message_bytes,
                version=zone_version,
            )
            for source_id in agents:
                strict.define_agent(source_id)
            self.zone = strict
        else:
            self.zone = Zone(
                zone_id,
                district or DistrictSpec(),
                on_send=on_send,
                state_file=state_file,
                max_message_bytes=max_message_bytes,
            )
        self.zones = {zone_id: self.zone}
        self.certificates: CertificateFiles | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> ZisSimulator:
        server = _Server((self.host, self.port), _Handler)
        server.simulator = self
        if self.tls:
            cert_dir = self.state_dir / "tls" if self.state_dir else None
            if cert_dir is None:
                self._tempdir = tempfile.TemporaryDirectory(prefix="zis-tls-")
                cert_dir = Path(self._tempdir.name)
            self.certificates = make_certificates(cert_dir, self.host)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.certificates.cert_file, self.certificates.key_file)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self.zone.url = self.url
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="zis-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_open_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    def __enter__(self) -> ZisSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def authorized(self, header: str | None) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header == f"Basic {expected}"

    @property
    def strict_zone(self) -> StrictZone:
        """The zone of the strict profile, for what only it has (define_agent, set_asleep, what it dropped)."""
        if not isinstance(self.zone, StrictZone):
            raise ValueError(f"the {self.profile} profile's zone is not a strict zone")
        return self.zone

    # --- addresses -----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The zone URL an agent posts to."""
        return f"{self.base_url}/zones/{self.zone.zone_id}"

    @property
    def ca_file(self) -> Path | None:
        return self.certificates.ca_file if self.certificates else None

    # --- district control ------------------------------------------------------------------------
    @property
    def spec(self) -> DistrictSpec:
        return self.zone.spec

    def update_spec(self, **changes: Any) -> DistrictSpec:
        spec = self.zone.spec.replace(**changes)
        self.zone.set_spec(spec)
        return spec

    def bump_day(self) -> DistrictSpec:
        return self.update_spec(day=self.spec.day + 1)

    @property
    def grade_write_backs(self) -> list[GradeWriteBack]:
        return list(self.zone.grade_write_backs)
