"""Clients share one verifying SSL context per process (loading a CA store is most of a client's cost)."""

from pathlib import Path

import certifi

from canvas.transport import CanvasTransport
from sifclient.transport import HttpTransport


def _context(transport):
    return transport._pool._ssl_context


def test_two_sif_transports_share_the_system_context():
    with HttpTransport("https://zis.example.org/zone") as a, HttpTransport("https://zis.example.org/zone") as b:
        assert _context(a._client._transport) is _context(b._client._transport)


def test_a_sif_transport_with_its_own_ca_bundle_gets_its_own_context(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes())
    with (
        HttpTransport("https://zis.example.org/zone") as a,
        HttpTransport("https://zis.example.org/zone", verify=str(bundle)) as b,
    ):
        assert _context(a._client._transport) is not _context(b._client._transport)


def test_two_canvas_transports_share_one_context():
    a = CanvasTransport("https://canvas.example.org", "t")
    b = CanvasTransport("https://canvas.example.org", "t")
    try:
        assert _context(a._http._transport) is _context(b._http._transport)
    finally:
        a.close()
        b.close()
