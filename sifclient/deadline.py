"""A wall-clock limit on a whole HTTP exchange, for httpx clients talking to peers that may be slow on purpose.

httpx's timeouts bound each socket operation, not the exchange: a peer that sends one byte a second never
trips a 60 s read timeout and holds the caller for as long as it likes (headers included). Here every socket
operation of a request made inside `deadline(seconds)` gets at most the time left until that deadline, and
none starts after it: the request ends with httpx.ConnectTimeout / ReadTimeout / WriteTimeout, as a slow peer
does, so callers keep one way of handling timeouts.

It is a network backend for httpcore (the connection pool under httpx), so it sees every read and write.
No Django here: used by sifclient (ZIS) and canvas (Canvas) alike.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import ssl
import time
import typing

import httpcore
import httpx
from httpcore._backends.base import SOCKET_OPTION  # httpcore exports the type only from its backends module

# The text of the timeout raised when the deadline (not a per-read timeout) ran out.
DEADLINE_EXCEEDED = "the time allowed for the whole request ran out"
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("http_deadline", default=None)


@contextlib.contextmanager
def deadline(seconds: float | None) -> typing.Iterator[None]:
    """Requests made inside this block (by a client built with DeadlineTransport) end within `seconds`."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    end = _deadline.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error(DEADLINE_EXCEEDED)
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        return _Stream(
            self._inner.connect_tcp(
                host, port, _bounded(timeout, httpcore.ConnectTimeout), local_address, socket_options
            )
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: typing.Iterable[SOCKET_OPTION] | None = None
    ) -> httpcore.NetworkStream:
        return _Stream(
            self._inner.connect_unix_socket(path, _bounded(timeout, httpcore.ConnectTimeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's verifying context (certifi's CA bundle), made once per process. An SSLContext may serve many
    connections and threads at once; nothing here changes it after it is made."""
    return httpx.create_ssl_context(verify=True)


class DeadlineTransport(httpx.HTTPTransport):
    """httpx's own HTTP transport, its connection pool built on the deadline-aware backend."""

    def __init__(self, *, verify: ssl.SSLContext | str | bool = True) -> None:
        # One SSL context for both pools: loading the CA bundle is most of the cost of making a client, and httpx
        # returns a context it is given as it is. The default (verify=True) context is shared by every client of
        # the process: a sync makes several clients, and the fleet bench found the CA loads a fifth of a small
        # district's CPU.
        context = default_ssl_context() if verify is True else httpx.create_ssl_context(verify=verify)
        super().__init__(verify=context)
        # httpx 0.28 builds its pool without a way to pass a network backend: build the same pool with one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            network_backend=_Backend(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
        )
