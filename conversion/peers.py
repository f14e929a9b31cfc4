"""Addresses of a district's peers (its ZIS, its Canvas): what this platform may connect to.

A peer's URL is typed by a person, and the workers then connect to it with a password or token: without a check,
the URL could point the workers at this platform's own database or broker, at a cloud metadata service, or at
any machine of the private network (server-side request forgery). A peer is a server of the district or a vendor
reached over the network, so only http(s), no credentials in the URL, and no address that such a server cannot
have: loopback, link-local (cloud metadata), private and shared ranges, unspecified, multicast and reserved
addresses are refused unless settings.PEER_ALLOWED_NETWORKS lists them ("loopback", or CIDRs), and the ports of
this platform's own database and broker are refused always.

The host is resolved when the URL is entered and again just before each connection (a name may be re-pointed).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

# Ports of services that are never a ZIS or Canvas: databases, brokers, caches, remote shells, mail.
REFUSED_PORTS = frozenset(
    {22, 23, 25, 53, 110, 143, 389, 445, 1433, 1521, 2375, 2376, 2379, 3306, 5432, 5672, 6379, 9200, 11211, 27017}
)

_LOOPBACK = ("127.0.0.0/8", "::1/128")


class PeerRefused(ValueError):
    """The URL names an address or a port that a district's peer cannot have."""


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in getattr(settings, "PEER_ALLOWED_NETWORKS", []):
        for cidr in _LOOPBACK if item == "loopback" else (item,):
            networks.append(ipaddress.ip_network(cidr, strict=False))
    return networks


def _special(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
        or not address.is_global
    )


def _own_ports() -> set[int]:
    """The ports of this platform's own database and broker (whatever they are configured as)."""
    ports = set(REFUSED_PORTS)
    db_port = settings.DATABASES["default"].get("PORT")
    if db_port:
        ports.add(int(str(db_port)))
    broker = urlsplit(getattr(settings, "CELERY_BROKER_URL", "") or "")
    try:
        if broker.port:
            ports.add(broker.port)
    except ValueError:
        pass
    return ports


def check_url(url: str, *, what: str, resolve: bool = True, unknown_host_ok: bool = False) -> None:
    """Raise PeerRefused (with a message for the person who typed `url`) unless a peer may have it.

    `unknown_host_ok`: a name that does not resolve (now) passes; the connection then fails as any other would.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise PeerRefused(f"The {what} must start with https:// (or http://).")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise PeerRefused(f"The {what} must not carry a user name or password: enter them in their own fields.")
    host = parts.hostname
    if not host:
        raise PeerRefused(f"The {what} has no host name.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise PeerRefused(f"The {what} has an invalid port.") from None
    if port in _own_ports():
        raise PeerRefused(f"The {what} names port {port}, which is not a web port a {what.split()[0]} can use.")
    if not resolve:
        return
    try:
        addresses = resolve_host(host, port)
    except PeerRefused:
        if unknown_host_ok:
            return
        raise
    for address in addresses:
        if _special(address) and not any(address in net for net in allowed_networks()):
            raise PeerRefused(
                f"The {what} names {host}, a local or private address ({address}) that a district's server cannot "
                "have. An operator can allow such addresses with the PEER_ALLOWED_NETWORKS setting."
            )


def resolve_host(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise PeerRefused(f"The host name {host} could not be found (DNS).") from None
    # sockaddr[0] is the address as text for IPv4 and IPv6 alike (an IPv6 one may carry "%scope").
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


@deconstructible
class PeerURLValidator:
    """A model and form validator: the same check, as a ValidationError."""

    def __init__(self, what: str):
        self.what = what

    def __call__(self, value: str) -> None:
        if not value:
            return
        try:
            check_url(value, what=self.what)
        except PeerRefused as exc:
            raise ValidationError(str(exc), code="peer_refused") from None

    def __eq__(self, other) -> bool:
        return isinstance(other, PeerURLValidator) and other.what == self.what


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: where a credential goes. A changed origin asks for the credential again."""
    parts = urlsplit(url or "")
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port or (443 if parts.scheme == "https" else 80)
