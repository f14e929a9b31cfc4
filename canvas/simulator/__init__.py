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
from canvas.simulator.state import Assignment, AssignmentGroup, CanvasState, Submission, User, now_iso
from canvas.simulator.throttle import CanvasThrottle, FakeClock, LeakyBucket

__all__ = ["CanvasSimulator", "FakeClock", "ImportOptions"]


# socketserver's serve_forever notices shutdown() only between polls of its listening socket (the stdlib has no way
# to wake it), so stop() waits up to this long; the tests start and stop a simulator each, hence a short poll.
SHUTDOWN_POLL_SECONDS = 0.02


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
        # The harsh fault model (flat cost, never refunded) and Canvas's own accounting, the default.
        self.bucket = LeakyBucket(clock=clock) if clock is not None else LeakyBucket()
        self.throttle = CanvasThrottle(clock=clock) if clock is not None else CanvasThrottle()
        self.throttle_enabled = True  # request_throttle.rb: RequestThrottle.enabled? defaults to "true"
        self.throttle_model = "canvas"
        self.throttle_mode = "403"
        self.api_users: dict[str, dict[str, Any]] = {}
        self.hold_initializing = False  # True: new imports stay `initializing`, as one caught mid-creation
        self.throttled_count = 0
        self.progress: dict[int, dict[str, Any]] = {}
        self._users_cache: tuple[int, list[User]] | None = None
        self._host, self._port = host, port
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.runner: ImportRunner | None = None

    @property
    def started_runner(self) -> ImportRunner:
        """The import runner, which exists once the simulator is started."""
        if self.runner is None:
            raise RuntimeError("start the simulator first")
        return self.runner

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> CanvasSimulator:
        self.runner = ImportRunner(self.state, base_url=lambda: self.url)
        self._server = SimulatorHTTPServer((self._host, self._port), self)
        self._serve(self._server)
        return self

    def _serve(self, server: SimulatorHTTPServer) -> None:
        """Start answering on `server` (a thread of its own; a host of many simulators may share one loop)."""
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="canvas-sim-http",
            daemon=True,
        )
        self._thread.start()

    def _stop_serving(self, server: SimulatorHTTPServer) -> None:
        """Stop answering on `server`, the counterpart of `_serve`."""
        server.shutdown()

    def stop(self) -> None:
        self.faults.released.set()
        if self.runner is not None:
            self.runner.hold_at = None
            self.runner.release.set()
        if self._server is not None:
            self._stop_serving(self._server)
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
        if isinstance(host, bytes):  # typeshed allows bytes (AF_UNIX); an AF_INET server gives text
            host = host.decode()
        return f"http://{host}:{port}"

    @property
    def root_account_id(self) -> int:
        return self.state.root_account.id

    # --- SIS imports ---------------------------------------------------------------------------

    def api_user(self, token: str | None) -> dict[str, Any] | None:
        """The user behind a token, as the SisImport JSON's `user` shows it (Api::V1::SisImport)."""
        if token is None:
            return None
        with self.state.lock:
            if token not in self.api_users:
                user_id = self.state.next_id()
                self.api_users[token] = {
                    "id": user_id,
                    "name": "SIS Integration",
                    "created_at": now_iso(),
                    "sortable_name": "Integration, SIS",
                    "short_name": "SIS Integration",
                    "sis_user_id": None,
                    "integration_id": None,
                    "sis_import_id": None,
                    "login_id": f"sis-integration-{user_id}",
                }
            return self.api_users[token]

    def start_import(
        self,
        content: bytes,
        extension: str,
        file_name: str,
        options: ImportOptions,
        *,
        token: str | None = None,
        batch_mode_term: Any = None,
    ) -> SisImportRecord:
        """SisBatch.create_with_attachment: the batch is `initializing` while its attachment is stored and its
        options set, then `created` and queued (sis_batch.rb#process)."""
        assert self.runner is not None, "start the simulator first"
        user = self.api_user(token or next(iter(self.tokens)))
        with self.state.lock:
            if options.batch_mode and batch_mode_term is None and options.batch_mode_term_id:
                batch_mode_term = self.state.resolve("term", options.batch_mode_term_id) or self.state.by_sis(
                    "term", options.batch_mode_term_id
                )
            record = SisImportRecord(
                self.state.next_id(), options, content, extension, file_name, user=user, batch_mode_term=batch_mode_term
            )
            record.data = {"import_type": options.import_type}
            self.runner.imports[record.id] = record
            if self.hold_initializing:
                return record
            record.set_state("created")
        self.runner.submit(record)
        return record

    def hold_imports_at(self, stage: str | None) -> None:
        """Hold the next running import at "importing" or "cleanup_batch" until release_held_import()."""
        assert self.runner is not None
        if stage not in (None, "importing", "cleanup_batch"):
            raise ValueError("stage must be 'importing' or 'cleanup_batch'")
        self.runner.hold_at = stage

    def wait_until_held(self, timeout: float = 10.0) -> bool:
        assert self.runner is not None
        return self.runner.held.wait(timeout)

    def release_held_import(self) -> None:
        assert self.runner is not None
        self.runner.hold_at = None
        self.runner.release.set()

    def release_initializing(self) -> None:
        """Let imports held in `initializing` (hold_initializing=True) become `created` and run."""
        self.hold_initializing = False
        with self.state.lock:
            held = [r for r in self.started_runner.imports.values() if r.workflow_state == "initializing"]
            for record in held:
                record.set_state("created")
        for record in sorted(held, key=lambda r: r.id):
            self.started_runner.submit(record)

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

    def add_progress(
        self,
        context_type: str,
        context_id: int,
        workflow_state: str,
        *,
        tag: str = "sis_batch_state_restore",
        token: str | None = None,
    ) -> dict[str, Any]:
        """A Progress as Api::V1::Progress#progress_json shows it."""
        user = self.api_user(token)
        with self.state.lock:
            progress_id = self.state.next_id()
            progress = {
                "id": progress_id,
                "context_id": context_id,
                "context_type": context_type,
                "user_id": user["id"] if user else None,
                "tag": tag,
                "completion": 100.0 if workflow_state == "completed" else 0.0,
                "workflow_state": workflow_state,
                "created_at": now_iso(),
                "updated_at": now_iso(),
                "message": None,
                "results": None,
                "url": f"{self.url}/api/v1/progress/{progress_id}",
            }
            self.progress[progress_id] = progress
            return progress

    def add_authentication_provider(self) -> int:
        """An active authentication provider a users.csv row may name by id (as a district's SSO would be)."""
        with self.state.lock:
            provider_id = self.state.next_id()
            self.state.auth_providers[str(provider_id)] = provider_id
            return provider_id

    # --- faults and throttling -----------------------------------------------------------------

    def fail_next_import(
        self, error_message: str = "undefined method `path' for nil:NilClass", *, count: int = 1
    ) -> None:
        """The next `count` imports end plain `failed` (sis_batch.rb#process rescuing an internal exception),
        with `error_message` in their data; see ImportRunner.run."""
        assert self.runner is not None, "start the simulator first"
        with self.state.lock:
            self.runner.fail_next.extend([error_message] * count)

    def inject_faults(self, *, status: int | None = None, hang_seconds: float | None = None, count: int = 1) -> None:
        """The next `count` API requests answer `status`, or hang `hang_seconds` first."""
        if status is None and hang_seconds is None:
            raise ValueError("give status or hang_seconds")
        self.faults.add(Fault(status=status, hang_seconds=hang_seconds), count)

    def set_throttle(
        self,
        *,
        enabled: bool = True,
        model: str = "canvas",
        mode: str = "429",
        capacity: float | None = None,
        drain_per_second: float | None = None,
        request_cost: float | None = None,
        up_front_cost: float | None = None,
        extra_cost: float | None = None,
    ) -> None:
        """Throttling on/off and its model.

        model="canvas" (the default): Canvas's accounting (CanvasThrottle); throttled requests get 403
        "Rate Limit Exceeded". `capacity` is its high water mark, `drain_per_second` its outflow, and
        `up_front_cost` / `extra_cost` (added to each request's real cost) make it bite in tests.
        model="harsh": a fault switch, not Canvas: a flat `request_cost` per request that is never refunded,
        refused with `mode` "429" or "403".
        """
        if model not in ("canvas", "harsh"):
            raise ValueError("model must be 'canvas' or 'harsh'")
        if mode not in ("429", "403"):
            raise ValueError("mode must be '429' or '403'")
        self.throttle_enabled, self.throttle_model = enabled, model
        self.throttle_mode = mode if model == "harsh" else "403"
        if model == "harsh":
            if capacity is not None:
                self.bucket.capacity = float(capacity)
            if drain_per_second is not None:
                self.bucket.drain_per_second = float(drain_per_second)
            if request_cost is not None:
                self.bucket.request_cost = float(request_cost)
        else:
            if capacity is not None:
                self.throttle.hwm = float(capacity)
                self.throttle.maximum = max(self.throttle.maximum, float(capacity))
            if drain_per_second is not None:
                self.throttle.outflow = float(drain_per_second)
            if up_front_cost is not None:
                self.throttle.up_front_cost = float(up_front_cost)
            if extra_cost is not None:
                self.throttle.extra_cost = float(extra_cost)

    # --- grade data ----------------------------------------------------------------------------

    def add_assignment(
        self,
        course_ref: str | int,
        *,
        name: str,
        points_possible: float | None = None,
        post_to_sis: bool = False,
        due_at: str | None = None,
        group: str | None = None,
        published: bool = True,
        only_visible_to_overrides: bool = False,
        student_ids: list[str | int] | None = None,
        section_ids: list[int] | None = None,
    ) -> Assignment:
        """An assignment in `group` (an assignment group by name, made when missing, as Canvas puts an assignment
        without one in the course's first group: Assignment#default_values / AssignmentGroup.add_never_drop...).
        `student_ids` / `section_ids` add "assign to" overrides (AssignmentOverridesController#create)."""
        with self.state.lock:
            course = self.state.resolve("course", str(course_ref))
            if course is None:
                raise ApiError(404, f"course {course_ref} not found")
            assignment = Assignment(self.state.next_id(), course.id, name, points_possible, post_to_sis, due_at)
            assignment.workflow_state = "published" if published else "unpublished"
            assignment.assignment_group_id = self._group(course.id, group or "Assignments").id
            assignment.only_visible_to_overrides = only_visible_to_overrides
            if student_ids:
                users = [self.state.resolve("user", str(ref)) for ref in student_ids]
                assignment.overrides.append(
                    {
                        "id": self.state.next_id(),
                        "title": f"{len(users)} students",
                        "student_ids": [u.id for u in users if u is not None],
                    }
                )
            for section_id in section_ids or ():
                assignment.overrides.append(
                    {"id": self.state.next_id(), "title": f"section {section_id}", "course_section_id": int(section_id)}
                )
            self.state.assignments[assignment.id] = assignment
            self.state.assignments_by_course.setdefault(course.id, []).append(assignment.id)
            return assignment

    def _group(self, course_id: int, name: str) -> AssignmentGroup:
        for group_id in self.state.groups_by_course.get(course_id, []):
            group = self.state.assignment_groups[group_id]
            if group.name == name and group.workflow_state != "deleted":
                return group
        position = len(self.state.groups_by_course.get(course_id, [])) + 1
        group = AssignmentGroup(self.state.next_id(), course_id, name, position)
        self.state.assignment_groups[group.id] = group
        self.state.groups_by_course.setdefault(course_id, []).append(group.id)
        return group

    def add_assignment_group(self, course_ref: str | int, name: str) -> AssignmentGroup:
        with self.state.lock:
            course = self.state.resolve("course", str(course_ref))
            if course is None:
                raise ApiError(404, f"course {course_ref} not found")
            return self._group(course.id, name)

    def update_assignment(self, assignment_id: int, **changes: Any) -> Assignment:
        """What a teacher does in Canvas: unpublish (workflow_state), untick post_to_sis, rename, move to a group
        (by name), or delete (workflow_state "deleted": Assignment#destroy is a soft delete)."""
        with self.state.lock:
            assignment = self.state.assignments.get(assignment_id)
            if assignment is None:
                raise ApiError(404, "assignment not found")
            group = changes.pop("group", None)
            if group is not None:
                assignment.assignment_group_id = self._group(assignment.course_id, group).id
            for key, value in changes.items():
                if not hasattr(assignment, key):
                    raise ValueError(f"no assignment field {key}")
                setattr(assignment, key, value)
            return assignment

    def delete_assignment(self, assignment_id: int) -> Assignment:
        return self.update_assignment(assignment_id, workflow_state="deleted")

    def grade(
        self,
        assignment_id: int,
        user_ref: str | int,
        *,
        score: float | None,
        grade: str | None = None,
        graded_at: str | None = None,
        excused: bool = False,
        late: bool = False,
        missing: bool = False,
    ) -> Submission:
        """Record (or replace) a graded submission; graded_at defaults to now. excused / late / missing are the
        Submission flags lib/api/v1/submission.rb renders (an excused submission has no score)."""
        with self.state.lock:
            user = self.state.resolve("user", str(user_ref))
            if user is None or assignment_id not in self.state.assignments:
                raise ApiError(404, "assignment or user not found")
            key = (assignment_id, user.id)
            existing = self.state.submissions.get(key)
            submission = Submission(
                existing.id if existing else self.state.next_id(),
                assignment_id,
                user.id,
                score,
                grade if grade is not None else (None if score is None else f"{score:g}"),
                graded_at or now_iso(),
                excused=excused,
                late=late,
                missing=missing,
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
                "accounts": len(s.accounts),
                "terms": len(s.terms),
                "users": len(s.users),
                "courses": len(s.courses),
                "sections": len(s.sections),
                "enrollments": len(s.enrollments),
                "assignments": len(s.assignments),
                "submissions": len(s.submissions),
                "sis_imports": len(self.runner.imports) if self.runner else 0,
                "throttled": self.throttled_count,
                "pending_faults": self.faults.pending(),
            }
