"""Fault injection: the next N API requests answer a 5xx or hang past the client's timeout."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Fault:
    status: int | None = None  # answer this status (500, 503, ...)
    hang_seconds: float | None = None  # or hold the request this long before answering


class FaultPlan:
    def __init__(self) -> None:
        self._pending: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.released = threading.Event()  # set on shutdown so hanging handlers return at once

    def add(self, fault: Fault, count: int = 1) -> None:
        with self._lock:
            self._pending.extend([fault] * count)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def next(self) -> Fault | None:
        with self._lock:
            return self._pending.popleft() if self._pending else None

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)
