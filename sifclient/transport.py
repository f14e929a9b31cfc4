"""HTTP(S) transport: POST raw SIF XML to a zone URL, get raw XML bytes back."""

from __future__ import annotations

import functools
import os
import ssl
from typing import Protocol

import httpx

from .deadline import DeadlineTransport, deadline
from .errors import (
    ZisConnectionError,
    ZisHttpStatusError,
    ZisResponseTooLargeError,
    ZisTimeoutError,
    ZisTlsError,
)
from .safexml import DEFAULT_MAX_MESSAGE_BYTES

CONTENT_TYPE = "application/xml"


class Transport(Protocol):
    url: str

    def post(self, data: bytes) -> bytes: ...

    def close(self) -> None: ...


@functools.cache
def _system_context() -> ssl.SSLContext:
    # The system's CAs, loaded once per process: every pull and grade passback makes a client, and loading the
    # CA store was a fifth of a small district's night in the fleet bench. The context is never changed after.
    return ssl.create_default_context()


def _ssl_context(verify: bool | str | os.PathLike[str]) -> ssl.SSLContext | bool:
    if verify is False:
        return False
    if verify is True:
        return _system_context()
    # A CA bundle: the ZIS's own certificate or the CA that signed it.
    return ssl.create_default_context(cafile=os.fspath(verify))


def _is_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return True
        current = current.__cause__ or current.__context__
    text = str(exc)
    return "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text


class HttpTransport:
    """POSTs one SIF message per HTTP request, as SIF 2.x HTTP(S) transport does.

    verify: True (system CAs), False (no verification; tests only) or a path to a CA bundle.
    auth: (user, password) for ZISes that sit behind HTTP Basic authentication.
    timeout: seconds for the whole exchange (connect, send, every byte of the answer), not per read: a ZIS
    trickling its answer a byte at a time is cut off when it runs out (see deadline.py).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        verify: bool | str | os.PathLike[str] = True,
        max_response_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        auth: tuple[str, str] | None = None,
    ):
        self.url = url
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            transport=DeadlineTransport(verify=_ssl_context(verify)),
            auth=httpx.BasicAuth(*auth) if auth else None,
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
            follow_redirects=False,
        )

    def post(self, data: bytes) -> bytes:
        try:
            with deadline(self.timeout), self._client.stream("POST", self.url, content=data) as response:
                if response.status_code != 200:
                    response.read()
                    raise ZisHttpStatusError(
                        f"ZIS answered HTTP {response.status_code} {response.reason_phrase}",
                        url=self.url,
                        status_code=response.status_code,
                    )
                declared = response.headers.get("Content-Length")
                if declared and declared.isdigit() and int(declared) > self.max_response_bytes:
                    raise ZisResponseTooLargeError(
                        f"ZIS answer of {declared} bytes is over {self.max_response_bytes}", url=self.url
                    )
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise ZisResponseTooLargeError(
                            f"ZIS answer is over {self.max_response_bytes} bytes", url=self.url
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException as exc:
            raise ZisTimeoutError(
                f"ZIS did not answer within {self.timeout:g} s ({exc.__class__.__name__})",
                url=self.url,
                timeout=self.timeout,
            ) from exc
        except httpx.ConnectError as exc:
            if _is_tls_failure(exc):
                raise ZisTlsError(f"TLS handshake with the ZIS failed: {exc}", url=self.url) from exc
            raise ZisConnectionError(f"cannot connect to the ZIS: {exc}", url=self.url) from exc
        except httpx.TransportError as exc:
            if _is_tls_failure(exc):
                raise ZisTlsError(f"TLS failure talking to the ZIS: {exc}", url=self.url) from exc
            raise ZisConnectionError(f"connection to the ZIS failed: {exc}", url=self.url) from exc

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
