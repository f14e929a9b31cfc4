"""Request throttling. `CanvasThrottle` is Canvas's own accounting (the simulator's default); `LeakyBucket` is a
harsh fault model kept for fault tests: every request costs a flat `request_cost` that is never refunded, and a
request that would overflow the bucket is refused (429, or 403 "Rate Limit Exceeded"). Real Canvas does not
charge that way (see CanvasThrottle). The clock is injectable so tests can drain a bucket by advancing fake time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: float
    cost: float


class LeakyBucket:
    def __init__(
        self,
        *,
        capacity: float = 700.0,
        drain_per_second: float = 10.0,
        request_cost: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.capacity = capacity
        self.drain_per_second = drain_per_second
        self.request_cost = request_cost
        self.clock = clock
        self._levels: dict[str, tuple[float, float]] = {}  # token -> (level, at)
        self._lock = threading.Lock()

    def _level(self, token: str, now: float) -> float:
        level, at = self._levels.get(token, (0.0, now))
        return max(0.0, level - (now - at) * self.drain_per_second)

    def charge(self, token: str) -> Verdict:
        with self._lock:
            now = self.clock()
            level = self._level(token, now)
            if level + self.request_cost > self.capacity:
                self._levels[token] = (level, now)
                return Verdict(False, self.capacity - level, 0.0)
            level += self.request_cost
            self._levels[token] = (level, now)
            return Verdict(True, self.capacity - level, self.request_cost)


class FakeClock:
    """A monotonic clock that moves only when told; pass `advance` to the client as its sleep."""

    def __init__(self, start: float = 1000.0):
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class CanvasThrottle:
    """Canvas's request throttle (canvas-lms app/middleware/request_throttle.rb, RequestThrottle#call and its
    LeakyBucket), per access token:

    - LeakyBucket#reserve_capacity adds the path's up-front cost (default 50) before the request runs and,
      once it has run, adds the request's real cost less that up-front cost (the refund). The real cost is
      RequestThrottle#calculate_cost: the request's user CPU seconds plus its database seconds; here, the
      handler thread's CPU seconds plus `extra_cost`.
    - LeakyBucket#increment leaks `outflow` (10) units a second since it was last touched, and the bucket
      holds at most `maximum` (800).
    - RequestThrottle#allowed? refuses a request when, after the up-front charge, the bucket is full?
      (count >= hwm, 600); the refusal is #rate_limit_exceeded: 403 "403 Forbidden (Rate Limit Exceeded)".
    - X-Request-Cost (the real cost, left out when throttled) and X-Rate-Limit-Remaining (hwm - count).

    So a client making one request at a time pays only its real cost (milliseconds) and is practically never
    throttled; only many requests in flight at once (each holding 50 until it ends) fill the bucket.
    """

    def __init__(
        self,
        *,
        maximum: float = 800.0,
        hwm: float = 600.0,
        outflow: float = 10.0,
        up_front_cost: float = 50.0,
        extra_cost: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.maximum, self.hwm, self.outflow = maximum, hwm, outflow
        self.up_front_cost, self.extra_cost = up_front_cost, extra_cost
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # token -> (count, last_touched)
        self._lock = threading.Lock()

    def _increment(self, token: str, amount: float) -> float:
        with self._lock:
            now = self.clock()
            count, touched = self._buckets.get(token, (0.0, now))
            count = max(0.0, count - (now - touched) * self.outflow)
            count = min(self.maximum, max(0.0, count + amount))
            self._buckets[token] = (count, now)
            return count

    def reserve(self, token: str) -> bool:
        """The up-front charge; False when the bucket is then full (the request is refused)."""
        return self._increment(token, self.up_front_cost) < self.hwm

    def settle(self, token: str, cost: float) -> float:
        """The real cost in, the up-front cost out; returns X-Rate-Limit-Remaining."""
        return self.hwm - self._increment(token, cost + self.extra_cost - self.up_front_cost)

    def remaining(self, token: str) -> float:
        return self.hwm - self._increment(token, 0.0)
