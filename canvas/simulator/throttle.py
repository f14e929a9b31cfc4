"""Canvas's per-token leaky bucket: each request adds its cost, the bucket drains at a steady rate,
and a request that would overflow it is refused (429, or 403 "Rate Limit Exceeded" on older
instances). The clock is injectable so tests can drain the bucket by advancing fake time."""

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
