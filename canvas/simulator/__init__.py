"""A Canvas LMS simulator: real HTTP on 127.0.0.1, SIS imports applied to in-memory state.

    with CanvasSimulator(token="T") as canvas:
        client = CanvasClient(canvas.url, "T")

Run alone with `python -m canvas.simulator --port 7090 --token T`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from canvas.simulator.faults import Fault, FaultPlan
from canvas.simulator.runner import ImportRunner
from canvas.simulator.server import ApiError, SimulatorHTTPServer
from canvas.simulator.sis_import import ImportOptions, SisImportRecord
from canvas.simulator.state import Assignment, CanvasState, Submission, User, now_iso
from canvas.simulator.throttle import FakeClock, LeakyBucket

__all__ = ["CanvasSimulator", "FakeClock", "ImportOptions"]


class CanvasSimulator:
    """One simulated Canvas instance (one root account).

    `tokens` maps extra tokens to the permissions they hold (None = every permission), so a test
    can hold a token that lacks, say, `import_sis`. `clock` drives the throttle's leaky bucket.
    """

    def __init__(
        self,
        *,
        token: str = "test-token",
        host: str = "127.0.0.1",
        port: int = 0,
        root_account_name: str = "Simulated District",
        tokens: dict[str, frozenset[str] | set[str] | None] | None = None,
        clock: Callable[[], float] | None = None,
    ):
        self.state = CanvasState(root_account_name)
        self.tokens: dict[str, frozenset[str] | None] = {token: None}
        for extra, permissions in (tokens or {}).items():
            self.tokens[extra] = None if permissions is None else frozenset(permissions)
        self.faults = FaultPlan()
        self.bucket = LeakyBucket(clock=clock) if clock is not None else LeakyBucket()
        self.throttle_enabled = False
        self.throttle_mode = "429"
        self.throttled_count = 0
        self.progress: dict[int, dict[str, Any]] = {}
        self._users_cache: tuple[int, list[User]] | None = None
        self._host, self._port = host, port
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.runner: ImportRunner | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> CanvasSimulator:
        self.runner = ImportRunner(self.state)
        self._server = SimulatorHTTPServer((self._host, self._port), self)
        self._thread = threading.Thread(target=self._server.serve_forever, name="canvas-sim-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.faults.released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self.runner is not None:
            self.runner.stop()

    def __enter__(self) -> CanvasSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the simulator first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def root_account_id(self) -> int:
        return self.state.root_account.id

    # --- SIS imports ---------------------------------------------------------------------------

    def start_import(self, content: bytes, extension: str, file_name: str, options: ImportOptions) -> SisImportRecord:
        assert self.runner is not None, "start the simulator first"
        with self.state.lock:
            record = SisImportRecord(self.state.next_id(), options, content, extension, file_name)
        self.runner.submit(record)
        return record

    def seed_sis_import(self, zip_or_csv: bytes, *, timeout: float = 120.0, **options: Any) -> SisImportRecord:
        """Run an SIS import in-process and wait for it: the faithful way to seed the simulator."""
        extension = "zip" if zip_or_csv[:4] == b"PK\x03\x04" else "csv"
        record = self.start_import(zip_or_csv, extension, f"seed.{extension}", ImportOptions(**options))
        if not self.wait_for_imports(timeout):
            raise TimeoutError("seed import did not finish")
        return record

    def wait_for_imports(self, timeout: float | None = None) -> bool:
        assert self.runner is not None
        return self.runner.wait_idle(timeout)

    def pause_imports(self) -> None:
        """New imports stay in `created` until resume_imports (to test abort and polling)."""
        assert self.runner is not None
        self.runner.gate.clear()

    def resume_imports(self) -> None:
        assert self.runner is not None
        self.runner.gate.set()

    def add_progress(self, context_type: str, context_id: int, workflow_state: str) -> dict[str, Any]:
        with self.state.lock:
            progress_id = self.state.next_id()
            progress = {
                "id": progress_id, "context_id": context_id, "context_type": context_type,
                "tag": "sis_batch_state_restore", "completion": 100.0, "workflow_state": workflow_state,
                "created_at": now_iso(), "updated_at": now_iso(), "message": None,
                "url": f"{self.url}/api/v1/progress/{progress_id}",
            }
            self.progress[progress_id] = progress
            return progress

    # --- faults and throttling -----------------------------------------------------------------

    def inject_faults(self, *, status: int | None = None, hang_seconds: float | None = None, count: int = 1) -> None:
        """The next `count` API requests answer `status`, or hang `hang_seconds` first."""
        if status is None and hang_seconds is None:
            raise ValueError("give status or hang_seconds")
        self.faults.add(Fault(status=status, hang_seconds=hang_seconds), count)

    def set_throttle(
        self,
        *,
        enabled: bool = True,
        mode: str = "429",
        capacity: float | None = None,
        drain_per_second: float | None = None,
        request_cost: float | None = None,
    ) -> None:
        """Switch the leaky bucket on/off; mode "429" (current Canvas) or "403" (older instances)."""
        if mode not in ("429", "403"):
            raise ValueError("mode must be '429' or '403'")
        self.throttle_enabled, self.throttle_mode = enabled, mode
        if capacity is not None:
            self.bucket.capacity = float(capacity)
        if drain_per_second is not None:
            self.bucket.drain_per_second = float(drain_per_second)
        if request_cost is not None:
            self.bucket.request_cost = float(request_cost)

    # --- grade data ----------------------------------------------------------------------------

    def add_assignment(
        self, course_ref: str | int, *, name: str, points_possible: float | None = None,
        post_to_sis: bool = False, due_at: str | None = None,
    ) -> Assignment:
        with self.state.lock:
            course = self.state.resolve("course", str(course_ref))
            if course is None:
                raise ApiError(404, f"course {course_ref} not found")
            assignment = Assignment(self.state.next_id(), course.id, name, points_possible, post_to_sis, due_at)
            self.state.assignments[assignment.id] = assignment
            self.state.assignments_by_course.setdefault(course.id, []).append(assignment.id)
            return assignment

    def grade(
        self, assignment_id: int, user_ref: str | int, *, score: float | None, grade: str | None = None,
        graded_at: str | None = None,
    ) -> Submission:
        """Record (or replace) a graded submission; graded_at defaults to now."""
        with self.state.lock:
            user = self.state.resolve("user", str(user_ref))
            if user is None or assignment_id not in self.state.assignments:
                raise ApiError(404, "assignment or user not found")
            key = (assignment_id, user.id)
            existing = self.state.submissions.get(key)
            submission = Submission(
                existing.id if existing else self.state.next_id(), assignment_id, user.id, score,
                grade if grade is not None else (None if score is None else f"{score:g}"),
                graded_at or now_iso(),
            )
            self.state.submissions[key] = submission
            return submission

    # --- reads for the HTTP layer and tests ----------------------------------------------------

    def cached_users(self) -> list[User]:
        """Every user in id order; rebuilt only when the user count changed, so paging 200k is cheap."""
        count = len(self.state.users)
        if self._users_cache is None or self._users_cache[0] != count:
            self._users_cache = (count, list(self.state.users.values()))
        return self._users_cache[1]

    def summary(self) -> dict[str, Any]:
        with self.state.lock:
            s = self.state
            return {
                "accounts": len(s.accounts), "terms": len(s.terms), "users": len(s.users),
                "courses": len(s.courses), "sections": len(s.sections), "enrollments": len(s.enrollments),
                "assignments": len(s.assignments), "submissions": len(s.submissions),
                "sis_imports": len(self.runner.imports) if self.runner else 0,
                "throttled": self.throttled_count, "pending_faults": self.faults.pending(),
            }
