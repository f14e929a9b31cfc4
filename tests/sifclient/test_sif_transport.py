"""Transport failures become typed exceptions; HTTPS needs the right CA bundle."""

import socket
import threading

import pytest

from sifclient import (
    Agent,
    HttpTransport,
    ZisConnectionError,
    ZisHttpStatusError,
    ZisResponseTooLargeError,
    ZisTimeoutError,
    ZisTlsError,
)
from sifclient.messages import build_system_control
from sifclient.powerschool import DistrictSpec
from sifclient.zis import ZisSimulator

PING = build_system_control("canvas", "SIF_Ping").data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused():
    with pytest.raises(ZisConnectionError, match="cannot connect"):
        with HttpTransport(f"http://127.0.0.1:{free_port()}/zones/Z", timeout=2) as transport:
            transport.post(PING)


def test_bounded_retries_then_failure():
    naps = []
    agent = Agent(
        HttpTransport(f"http://127.0.0.1:{free_port()}/zones/Z", timeout=2),
        source_id="canvas",
        retries=2,
        retry_delay=0.5,
        sleep=naps.append,
    )
    with pytest.raises(ZisConnectionError):
        agent.register()
    assert naps == [0.5, 1.0]


def test_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    done = threading.Event()

    def accept_and_stay_silent():
        connection, _ = listener.accept()
        accepted.append(connection)
        done.wait(10)

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    try:
        with pytest.raises(ZisTimeoutError):
            with HttpTransport(f"http://127.0.0.1:{listener.getsockname()[1]}/zones/Z", timeout=0.3) as transport:
                transport.post(PING)
    finally:
        done.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


def test_http_status_and_response_size():
    with ZisSimulator(DistrictSpec(students=3)) as zis:
        with pytest.raises(ZisHttpStatusError) as caught, HttpTransport(f"{zis.base_url}/zones/NOPE") as transport:
            transport.post(PING)
        assert caught.value.status_code == 404
        with pytest.raises(ZisResponseTooLargeError), HttpTransport(zis.url, max_response_bytes=100) as transport:
            transport.post(PING)


def test_https_needs_the_zis_certificate_and_works_with_the_ca_bundle():
    with ZisSimulator(DistrictSpec(students=3), tls=True) as zis:
        assert zis.url.startswith("https://")
        with HttpTransport(zis.url, verify=True) as transport:
            untrusted = Agent(transport, source_id="canvas", retries=0)
            with pytest.raises(ZisTlsError, match="TLS"):
                untrusted.register()
        with HttpTransport(zis.url, verify=zis.ca_file) as transport:
            trusted = Agent(transport, source_id="canvas")
            trusted.register()
            assert trusted.ping() is True
            assert trusted.zone_status().url.startswith("https://")
