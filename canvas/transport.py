"""HTTP to Canvas: authentication, pacing, retries with backoff, pagination, typed errors.

httpx rather than canvasapi: canvasapi hides the response headers this module needs
(X-Rate-Limit-Remaining, Retry-After, Link) and has no retry or backoff policy, while the
SIS import and grade endpoints used here are few enough to call directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from canvas.errors import (
    CanvasAuthenticationError,
    CanvasError,
    CanvasNotFoundError,
    CanvasPermissionError,
    CanvasRequestError,
    CanvasResponseTooLargeError,
    CanvasRetriesExhaustedError,
    CanvasServerError,
    Where,
)
from sifclient.deadline import DEADLINE_EXCEEDED, DeadlineTransport, deadline

log = logging.getLogger(__name__)

# Methods that can be repeated without doing the work twice. POST (creating an import) is retried
# only when Canvas cannot have acted on it: throttled, 503, or the connection never opened.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# The most one answer may hold (decoded). Canvas pages its lists (per_page at most 100 on the endpoints used
# here) and an SIS import's JSON is a few kB, so a legitimate answer is far below this; a bigger one is read no
# further, as the ZIS side bounds its answers (sifclient.safexml.DEFAULT_MAX_MESSAGE_BYTES).
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_base: float = 1.0  # seconds before the first retry; doubles each time
    backoff_cap: float = 60.0  # no single wait is longer than this
    # Canvas's bucket holds about 700 units and drains about 10/s. Under `low_water` units left,
    # pause long enough for the bucket to drain back up to it before the next request.
    low_water: float = 150.0
    drain_rate: float = 10.0

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_cap, self.backoff_base * 2.0**attempt)


@dataclass
class TransportStats:
    """What the transport did; tests count retries with it, callers can log it."""

    requests: int = 0
    retries: int = 0
    throttle_pauses: int = 0
    slept: float = 0.0
    retry_reasons: list[str] = field(default_factory=list)


def is_rate_limited(response: httpx.Response) -> bool:
    """403 "Rate Limit Exceeded", what canvas-lms app/middleware/request_throttle.rb answers. 429 is treated the
    same at no cost, though no canvas-lms source answers it."""
    if response.status_code == 429:
        return True
    return response.status_code == 403 and "rate limit exceeded" in response.text.lower()


def canvas_message(response: httpx.Response) -> str:
    """Canvas's own words from an error body: {"errors": [{"message": ...}]} or {"message": ...}."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
        if isinstance(errors, dict):
            return "; ".join(f"{k}: {v}" for k, v in errors.items())
        if "message" in body:
            return str(body["message"])
    return str(body)[:200]


class CanvasTransport:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        deadline: float | None = 300.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        http_transport: httpx.BaseTransport | None = None,
    ):
        """`timeout` bounds each socket operation, `deadline` one whole request (sending the upload and
        reading every byte of the answer), so a Canvas that trickles its answer cannot hold a worker."""
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)[:2]
        self.policy = policy
        self.timeout = timeout
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self._sleep = sleep
        self.stats = TransportStats()
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=http_transport or DeadlineTransport(),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def _wait(self, seconds: float) -> None:
        self.stats.slept += seconds
        self._sleep(seconds)

    def _pace(self, response: httpx.Response) -> None:
        remaining = response.headers.get("X-Rate-Limit-Remaining")
        if remaining is None:
            return
        try:
            left = float(remaining)
        except ValueError:
            return
        if left < self.policy.low_water:
            self.stats.throttle_pauses += 1
            self._wait((self.policy.low_water - left) / self.policy.drain_rate)

    def _url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            # Pagination links are absolute; never send the token to another host.
            if urlsplit(path_or_url)[:2] != self._origin:
                raise CanvasError(f"refusing to follow a link to another origin: {urlsplit(path_or_url).netloc}")
            return path_or_url
        return f"{self.base_url}/api/v1{path_or_url}"

    def request(
        self,
        method: str,
        path: str,
        *,
        permission: str,
        params: Mapping[str, Any] | list[tuple[str, Any]] | None = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send one request, retrying what can be retried; raise a typed CanvasError otherwise.

        `permission` names the Canvas permission the call needs, so a 403 can say which one.
        """
        url = self._url(path)
        shown = urlsplit(url).path  # for messages and logs: no host, no query, never the token
        attempt = 0
        while True:
            self.stats.requests += 1
            retry_after: float | None = None
            try:
                response = self._send(method, url, params=params, data=data, files=files)
            except httpx.TimeoutException as exc:
                problem = (
                    f"timed out: not answered in full within {self.deadline:g}s"
                    if DEADLINE_EXCEEDED in str(exc)
                    else f"timed out after {self.timeout:g}s"
                )
                retryable = method in IDEMPOTENT_METHODS or isinstance(exc, httpx.ConnectTimeout)
            except httpx.TransportError as exc:
                problem = f"connection failed ({type(exc).__name__})"
                retryable = method in IDEMPOTENT_METHODS or isinstance(exc, httpx.ConnectError)
            else:
                self._pace(response)
                status = response.status_code
                if status < 400:
                    return response
                if is_rate_limited(response):
                    problem = f"rate limited ({status})"
                    retryable = True
                    retry_after = _retry_after(response)
                elif status >= 500:
                    problem = f"HTTP {status}"
                    retryable = method in IDEMPOTENT_METHODS or status == 503
                else:
                    raise self._client_error(response, method, shown, permission)
            if not retryable:
                raise CanvasServerError(
                    f"{method} {shown}: {problem}; not retried because Canvas may have acted on it",
                    method=method,
                    path=shown,
                )
            if attempt >= self.policy.max_retries:
                raise CanvasRetriesExhaustedError(
                    f"{method} {shown}: gave up after {attempt + 1} attempts; last problem: {problem}",
                    attempts=attempt + 1,
                    last_problem=problem,
                    method=method,
                    path=shown,
                )
            delay = self.policy.backoff(attempt)
            if retry_after is not None:
                delay = min(self.policy.backoff_cap, max(delay, retry_after))
            log.info("canvas %s %s: %s; retry %d in %.1fs", method, shown, problem, attempt + 1, delay)
            self.stats.retries += 1
            self.stats.retry_reasons.append(problem)
            self._wait(delay)
            attempt += 1

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One exchange within the deadline, its answer read chunk by chunk and refused past the size limit."""
        request = self._http.build_request(method, url, **kwargs)
        with deadline(self.deadline):
            response = self._http.send(request, stream=True)
            try:
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self.max_response_bytes:
                    raise self._too_large(method, url, f" ({declared} bytes declared)")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_response_bytes:
                        raise self._too_large(method, url, "")
                    chunks.append(chunk)
            finally:
                response.close()
        # The answer as read (decoded), for .json(), .text and .links as before.
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(response.status_code, headers=headers, content=b"".join(chunks), request=request)

    def _too_large(self, method: str, url: str, said: str) -> CanvasResponseTooLargeError:
        shown = urlsplit(url).path
        return CanvasResponseTooLargeError(
            f"{method} {shown}: Canvas's answer{said} is over the {self.max_response_bytes:,} bytes allowed; "
            "not read further",
            method=method,
            path=shown,
        )

    def _client_error(self, response: httpx.Response, method: str, shown: str, permission: str) -> CanvasError:
        status = response.status_code
        said = canvas_message(response)
        where = Where(method=method, path=shown, status=status)
        if status == 401:
            return CanvasAuthenticationError(f"{method} {shown}: Canvas rejected the API token (401): {said}", **where)
        if status == 403:
            return CanvasPermissionError(
                f"{method} {shown}: the token's user lacks the Canvas permission '{permission}' (403): {said}",
                permission=permission,
                **where,
            )
        if status == 404:
            return CanvasNotFoundError(f"{method} {shown}: not found (404): {said}", **where)
        return CanvasRequestError(f"{method} {shown}: Canvas refused the request ({status}): {said}", **where)

    def get_json(self, path: str, *, permission: str, params: Any = None) -> Any:
        return self.request("GET", path, permission=permission, params=params).json()

    def paginate(self, path: str, *, permission: str, params: Any = None, key: str | None = None) -> Iterator[Any]:
        """Yield every item of a list endpoint, following the `Link: <…>; rel="next"` header.

        `key` picks the list out of a wrapping object (SIS import lists are {"sis_imports": […]}).
        """
        url: str | None = path
        query = params
        while url:
            response = self.request("GET", url, permission=permission, params=query)
            body = response.json()
            yield from (body[key] if key else body)
            url = response.links.get("next", {}).get("url")
            query = None  # the next link carries every parameter already


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
