"""The simulator's HTTP surface: Canvas's REST endpoints under /api/v1 and a control API under /_sim.

stdlib ThreadingHTTPServer: the simulator needs no framework, and a real socket keeps the client
honest (headers, multipart, pagination links, timeouts).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import parse_qsl, urlencode, urlsplit

from canvas.simulator import render
from canvas.simulator.sis_import import (
    IMPORTING,
    NOT_COMPLETED,
    NOT_STARTED,
    VALID_ENROLLMENT_DROP_STATUS,
    VALID_USER_REMOVE_STATUS,
    WORKFLOW_STATES,
    ImportOptions,
    SisImportRecord,
)
from canvas.simulator.upload import MAX_UPLOAD_BYTES

if TYPE_CHECKING:
    from canvas.simulator import CanvasSimulator

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 10


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {"errors": [{"message": message}]}


class Request:
    """What a route needs: path captures, merged query/form params (Rails-style `x[]` lists), files."""

    def __init__(self, handler: BaseHTTPRequestHandler, captures: tuple[str, ...]):
        self.handler = handler
        self.captures = captures
        split = urlsplit(handler.path)
        self.path = split.path
        self.query_pairs = parse_qsl(split.query, keep_blank_values=True)
        self.params: dict[str, list[str]] = {}
        self.files: dict[str, tuple[str, bytes, str]] = {}
        self.json: Any = None
        self.token: str | None = None
        self.is_multipart = False
        for key, value in self.query_pairs:
            self.params.setdefault(key, []).append(value)

    def read_body(self) -> None:
        length = int(self.handler.headers.get("Content-Length") or 0)
        if length > MAX_UPLOAD_BYTES:
            raise ApiError(413, "Request entity too large")
        body = self.handler.rfile.read(length) if length else b""
        ctype = self.handler.headers.get("Content-Type", "")
        self.is_multipart = ctype.startswith("multipart/form-data")
        if self.is_multipart:
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body
            )
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                payload = part.get_payload(decode=True) or b""
                if not isinstance(name, str) or not isinstance(payload, bytes):
                    # Rack's multipart parser (rack lib/rack/multipart/parser.rb) keys every part by its
                    # Content-Disposition name and drops a part that has none; it was stored under None here.
                    continue
                if filename is not None:
                    self.files[name] = (filename, payload, part.get_content_type())
                else:
                    self.params.setdefault(name, []).append(payload.decode("utf-8"))
        elif ctype.startswith("application/x-www-form-urlencoded"):
            for key, value in parse_qsl(body.decode("utf-8"), keep_blank_values=True):
                self.params.setdefault(key, []).append(value)
        elif ctype.startswith("application/json"):
            self.json = json.loads(body or b"null")
        elif body:
            # A raw upload (Content-Type application/zip or text/csv with ?extension=).
            self.files["attachment"] = ("attachment", body, ctype)

    def one(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else default

    def flag(self, name: str) -> bool:
        return (self.one(name) or "").lower() in ("true", "1", "yes", "on")

    def many(self, name: str) -> list[str]:
        return self.params.get(f"{name}[]", []) + self.params.get(name, [])


# What a route answers: status, JSON body (or bytes), extra headers.
Answer: TypeAlias = tuple[int, Any, dict[str, str]]
Handler: TypeAlias = "Callable[[CanvasSimulator, Request], Answer]"
# The Canvas permission a route needs: one name, any of several, or none (the control API, reads any role has).
Permission: TypeAlias = str | tuple[str, ...] | None
Route: TypeAlias = tuple[str, re.Pattern[str], Permission, Handler]


class SimulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return  # tests stay quiet; the simulator is not a production server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header(
            "Content-Type",
            "application/json; charset=utf-8" if not isinstance(body, bytes) else "text/plain; charset=utf-8",
        )
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        for key, value in parse_qsl(urlsplit(self.path).query):
            if key == "access_token":
                return value
        return None

    def _dispatch(self, method: str) -> None:
        sim = self.server.simulator
        path = urlsplit(self.path).path
        is_api = path.startswith("/api/v1/")
        extra: dict[str, str] = {}
        token = self._token()
        reserved = False
        started_cpu = time.thread_time()
        try:
            route = self._match(method, path)
            if token is None:
                raise ApiError(
                    401,
                    "user authorization required",
                    body={"status": "unauthenticated", "errors": [{"message": "user authorization required"}]},
                )
            if token not in sim.tokens:
                raise ApiError(401, "Invalid access token.", body={"errors": [{"message": "Invalid access token."}]})
            if is_api and sim.throttle_enabled:
                if sim.throttle_model == "canvas":
                    reserved = True
                    if not sim.throttle.reserve(token):
                        sim.throttled_count += 1
                        self.rfile.read(int(self.headers.get("Content-Length") or 0))
                        remaining = sim.throttle.settle(token, time.thread_time() - started_cpu)
                        reserved = False
                        # request_throttle.rb#rate_limit_exceeded; no X-Request-Cost on a throttled answer.
                        self._send(
                            403, b"403 Forbidden (Rate Limit Exceeded)\n", {"X-Rate-Limit-Remaining": str(remaining)}
                        )
                        return
                else:
                    verdict = sim.bucket.charge(token)
                    extra = {
                        "X-Rate-Limit-Remaining": f"{verdict.remaining:.3f}",
                        "X-Request-Cost": f"{verdict.cost:.3f}",
                    }
                    if not verdict.allowed:
                        sim.throttled_count += 1
                        self.rfile.read(int(self.headers.get("Content-Length") or 0))
                        if sim.throttle_mode == "403":
                            self._send(403, b"403 Forbidden (Rate Limit Exceeded)\n", extra)
                        else:
                            self._send(429, b"429 Too Many Requests (Rate Limit Exceeded)\n", extra)
                        return
            if is_api:
                fault = sim.faults.next()
                if fault is not None:
                    if fault.hang_seconds:
                        sim.faults.released.wait(fault.hang_seconds)
                    if fault.status:
                        # Drain the body so the connection stays usable for the next request.
                        self.rfile.read(int(self.headers.get("Content-Length") or 0))
                        raise ApiError(
                            fault.status, "Internal server error" if fault.status == 500 else "Service Unavailable"
                        )
            if route is None:
                raise ApiError(404, "The specified resource does not exist.")
            _, pattern, permission, func = route
            granted = sim.tokens[token]
            needed = (permission,) if isinstance(permission, str) else (permission or ())
            if needed and granted is not None and not any(p in granted for p in needed):
                raise ApiError(
                    403,
                    "user not authorized to perform that action",
                    body={
                        "status": "unauthorized",
                        "errors": [{"message": "user not authorized to perform that action"}],
                    },
                )
            captured = pattern.match(path)
            assert captured is not None  # _match chose this route because its pattern matched
            request = Request(self, captured.groups())
            request.token = token
            request.read_body()
            status, body, headers = func(sim, request)
            extra.update(self._settle(sim, token, reserved, started_cpu))
            reserved = False
            self._send(status, body, {**extra, **headers})
        except ApiError as exc:
            extra.update(self._settle(sim, token, reserved, started_cpu))
            self._send(
                exc.status, exc.body, extra if exc.status != 401 else {"WWW-Authenticate": 'Bearer realm="canvas-lms"'}
            )
        except (BrokenPipeError, ConnectionResetError):
            self._settle(sim, token, reserved, started_cpu)
            return

    @staticmethod
    def _settle(sim: CanvasSimulator, token: str | None, reserved: bool, started_cpu: float) -> dict[str, str]:
        """LeakyBucket#reserve_capacity's ensure: the real cost in, the up-front cost refunded."""
        if not reserved or token is None:
            return {}
        cost = time.thread_time() - started_cpu
        remaining = sim.throttle.settle(token, cost)
        return {"X-Request-Cost": str(cost + sim.throttle.extra_cost), "X-Rate-Limit-Remaining": str(remaining)}

    def _match(self, method: str, path: str) -> Route | None:
        for route in ROUTES:
            if route[0] == method and route[1].match(path):
                return route
        return None


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: CanvasSimulator):
        super().__init__(address, SimulatorHandler)
        self.simulator = simulator


# --- helpers -------------------------------------------------------------------------------------


def paginate(
    request: Request, items: list[Any], render_one: Callable[[Any], Any], *, total_entries: bool = True
) -> Answer:
    """One page of `items` and the Link header of canvas-lms lib/api.rb (Api.paginate / #build_links):
    current, next, prev, first, and last only when the total is counted (the SIS imports index passes
    total_entries: nil, so it has no "last")."""
    try:
        per_page = max(1, min(MAX_PER_PAGE, int(request.one("per_page") or DEFAULT_PER_PAGE)))
        page = max(1, int(request.one("page") or 1))
    except ValueError:
        raise ApiError(400, "invalid page or per_page") from None
    last = max(1, -(-len(items) // per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    host = request.handler.headers.get("Host", "127.0.0.1")
    base_pairs = [(k, v) for k, v in request.query_pairs if k not in ("page", "per_page", "access_token")]

    def link(n: int) -> str:
        query = urlencode(base_pairs + [("page", str(n)), ("per_page", str(per_page))])
        return f"http://{host}{request.path}?{query}"

    rels = [f'<{link(page)}>; rel="current"']
    if page * per_page < len(items):
        rels.append(f'<{link(page + 1)}>; rel="next"')
    if page > 1:
        rels.append(f'<{link(page - 1)}>; rel="prev"')
    rels.append(f'<{link(1)}>; rel="first"')
    if total_entries:
        rels.append(f'<{link(last)}>; rel="last"')
    return 200, [render_one(i) for i in chunk], {"Link": ",".join(rels)}


def _get(sim: CanvasSimulator, kind: str, ref: str) -> Any:
    obj = sim.state.resolve(kind, ref)
    if obj is None or getattr(obj, "workflow_state", "") == "deleted" and kind != "user":
        raise ApiError(404, "The specified resource does not exist.")
    return obj


def _root(sim: CanvasSimulator, request: Request) -> Any:
    """SisImportsApiController#check_account: SIS imports live on root accounts only."""
    account = _get(sim, "account", request.captures[0])
    if account.id != sim.state.root_account.id:
        raise ApiError(
            400,
            "SIS imports can only be executed on root accounts",
            body={"errors": ["SIS imports can only be executed on root accounts"]},
        )
    return account


def _import(sim: CanvasSimulator, request: Request) -> SisImportRecord:
    _root(sim, request)
    record = sim.started_runner.imports.get(int(request.captures[1]))
    if record is None:
        raise ApiError(404, "The specified resource does not exist.")
    return record


def _json(sim: CanvasSimulator, record: SisImportRecord) -> dict[str, Any]:
    return record.to_json(sim.url)


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"invalid timestamp {text!r}") from None


# --- SIS imports: app/controllers/sis_imports_api_controller.rb -------------------------------------


def _bad(message: str) -> ApiError:
    return ApiError(400, message, body={"message": message})


def create_sis_import(sim: CanvasSimulator, request: Request) -> Answer:
    """SisImportsApiController#create."""
    _root(sim, request)
    import_type = request.one("import_type") or "instructure_csv"
    if import_type != "instructure_csv":
        raise ApiError(500, "invalid import type parameter")  # Canvas raises here: an internal error
    if "attachment" not in request.files:
        raise ApiError(400, "Missing attachment", body={"error": True, "error_message": "Missing attachment"})
    name, content, content_type = request.files["attachment"]
    if not request.is_multipart:
        # A raw post: the file is "sis_import.<extension>", the extension given or told from the media type
        # (application/zip → zip, text/csv and text/plain → csv, anything else → zip).
        extension = request.one("extension") or {
            "application/zip": "zip",
            "text/xml": "xml",
            "text/plain": "csv",
            "text/csv": "csv",
        }.get(content_type.split(";")[0].strip(), "zip")
        name = f"sis_import.{extension}"
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else "zip"
    # Batch mode needs a term: none given → 400 with Canvas's message; one given that api_find cannot find
    # among the account's active terms → ActiveRecord::RecordNotFound → 404. Both before anything is created.
    batch_mode_term = None
    if request.flag("batch_mode"):
        term_ref = request.one("batch_mode_term_id") or ""
        if term_ref:
            batch_mode_term = sim.state.resolve("term", term_ref)
            if batch_mode_term is None or batch_mode_term.workflow_state == "deleted":
                raise ApiError(404, "The specified resource does not exist.")
        else:
            raise _bad("Batch mode specified, but the given batch_mode_term_id cannot be found.")
    threshold = request.one("change_threshold")
    row_threshold = request.one("diff_row_count_threshold")
    identifier = request.one("diffing_data_set_identifier") or None
    if identifier and len(identifier.encode()) > 128:
        raise ApiError(400, "diffing_data_set_identifier is too long")  # validates_length_of maximum: 128
    override = request.flag("override_sis_stickiness")
    options = ImportOptions(
        import_type=import_type,
        batch_mode=batch_mode_term is not None,
        batch_mode_term_id=request.one("batch_mode_term_id") if batch_mode_term is not None else None,
        override_sis_stickiness=override,
        # add_/clear_sis_stickiness are kept only together with override_sis_stickiness.
        add_sis_stickiness=override and request.flag("add_sis_stickiness"),
        clear_sis_stickiness=override and request.flag("clear_sis_stickiness"),
        update_sis_id_if_login_claimed=request.flag("update_sis_id_if_login_claimed"),
        skip_deletes=request.flag("skip_deletes"),
        # Batch mode wins: with a batch term, diffing is not enabled at all (no error).
        diffing_data_set_identifier=identifier if batch_mode_term is None else None,
        diffing_remaster_data_set=batch_mode_term is None
        and bool(identifier)
        and request.flag("diffing_remaster_data_set"),
        change_threshold=int(threshold) if threshold else None,
        diff_row_count_threshold=int(row_threshold) if row_threshold and int(row_threshold) > 0 else None,
    )
    for param, valid in (
        ("diffing_drop_status", VALID_ENROLLMENT_DROP_STATUS),
        ("diffing_user_remove_status", VALID_USER_REMOVE_STATUS),
        ("batch_mode_enrollment_drop_status", VALID_ENROLLMENT_DROP_STATUS),
    ):
        given = request.one(param)
        if given:
            if given not in valid:
                raise _bad(f"Invalid {param}")
            setattr(options, param, given)
    record = sim.start_import(content, extension, name, options, token=request.token, batch_mode_term=batch_mode_term)
    with sim.state.lock:
        return 200, _json(sim, record), {}


def list_sis_imports(sim: CanvasSimulator, request: Request) -> Answer:
    """SisImportsApiController#index: newest first, created_since / created_before (strict), workflow_state[]."""
    _root(sim, request)
    with sim.state.lock:
        records = sorted(sim.started_runner.imports.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        since, before = request.one("created_since"), request.one("created_before")
        if since:
            records = [r for r in records if _parse_time(r.created_at) > _parse_time(since)]
        if before:
            records = [r for r in records if _parse_time(r.created_at) < _parse_time(before)]
        states = set(request.many("workflow_state")) & set(WORKFLOW_STATES)
        if states:
            records = [r for r in records if r.workflow_state in states]
        status, body, headers = paginate(request, records, lambda r: _json(sim, r), total_entries=False)
    return status, {"sis_imports": body}, headers


def importing_sis_imports(sim: CanvasSimulator, request: Request) -> Answer:
    """SisImportsApiController#importing: the batches in SisBatch.importing (importing, cleanup_batch)."""
    _root(sim, request)
    with sim.state.lock:
        running = [
            r for r in sorted(sim.started_runner.imports.values(), key=lambda r: r.id) if r.workflow_state in IMPORTING
        ]
        return 200, {"sis_imports": [_json(sim, r) for r in running]}, {}


def get_sis_import(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        return 200, _json(sim, _import(sim, request)), {}


def sis_import_errors(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        entries = _import(sim, request).error_entries()
    if request.flag("failure"):
        entries = [e for e in entries if e["failure"]]
    status, body, headers = paginate(request, entries, lambda e: {k: v for k, v in e.items() if k != "failure"})
    return status, {"sis_import_errors": body}, headers


def abort_sis_import(sim: CanvasSimulator, request: Request) -> Answer:
    """SisImportsApiController#abort finds the batch among SisBatch.not_completed (404 otherwise) and
    SisBatch#abort_batch marks it aborted; a running import sees that at its next progress update."""
    with sim.state.lock:
        record = _import(sim, request)
        if record.workflow_state not in NOT_COMPLETED:
            raise ApiError(404, "The specified resource does not exist.")
        record.set_state("aborted")
        return 200, _json(sim, record), {}


def abort_all_pending(sim: CanvasSimulator, request: Request) -> Answer:
    """SisImportsApiController#abort_all_pending → SisBatch.abort_all_pending_for_account: every batch not
    started (initializing, created) becomes aborted with progress 100."""
    _root(sim, request)
    with sim.state.lock:
        for record in sim.started_runner.imports.values():
            if record.workflow_state in NOT_STARTED:
                record.set_state("aborted")
                record.progress = 100
    return 200, {"aborted": True}, {}


def restore_states(sim: CanvasSimulator, request: Request) -> Answer:
    """SisImportsApiController#restore_states (needs manage_sis): SisBatch#restore_states_later answers a
    Progress at once and restores in a job."""
    with sim.state.lock:
        record = _import(sim, request)
    undelete_only, unconclude_only = request.flag("undelete_only"), request.flag("unconclude_only")
    if undelete_only and unconclude_only:
        raise ApiError(400, "cannot set both", body="cannot set both undelete_only and unconclude_only")
    progress = sim.add_progress("SisBatch", record.id, "queued", tag="sis_batch_state_restore", token=request.token)
    sim.started_runner.restore_later(
        record,
        progress,
        batch_mode=request.flag("batch_mode"),
        undelete_only=undelete_only,
        unconclude_only=unconclude_only,
    )
    with sim.state.lock:
        return 200, dict(progress), {}


def get_progress(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        progress = sim.progress.get(int(request.captures[0]))
        if progress is None:
            raise ApiError(404, "The specified resource does not exist.")
        return 200, dict(progress), {}


# --- accounts, users, courses and sections addressed by id or SIS id --------------------------------


def get_account(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        return 200, render.account_json(sim.state, _get(sim, "account", request.captures[0])), {}


def get_user(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        user = sim.state.resolve("user", request.captures[0])
        if user is None or user.workflow_state == "deleted":
            raise ApiError(404, "The specified resource does not exist.")
        return 200, render.user_json(user), {}


def user_logins(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        user = sim.state.resolve("user", request.captures[0])
        if user is None:
            raise ApiError(404, "The specified resource does not exist.")
        logins = [user] if user.login_state != "deleted" else []
        return paginate(request, logins, lambda u: render.login_json(sim.state, u))


def get_course(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        course = _get(sim, "course", request.captures[0])
        return 200, render.course_json(sim.state, course, include_term="term" in request.many("include")), {}


def get_section(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        return 200, render.section_json(sim.state, _get(sim, "section", request.captures[0])), {}


def course_users(sim: CanvasSimulator, request: Request) -> Answer:
    """GET courses/:id/users: the users holding an enrollment in the course (active and invited unless
    enrollment_state[] says otherwise; enrollment_type[] narrows by role), each once, sorted by name."""
    types = {t.lower() for t in request.many("enrollment_type")}
    states = set(request.many("enrollment_state")) or {"active", "invited"}
    with sim.state.lock:
        course = _get(sim, "course", request.captures[0])
        seen: dict[int, Any] = {}
        for e in sim.state.course_enrollments(course.id):
            kind = e.type.replace("Enrollment", "").lower()
            if e.workflow_state in states and (not types or kind in types):
                seen.setdefault(e.user_id, sim.state.users[e.user_id])
        users = sorted(seen.values(), key=lambda u: (u.sortable_name.lower(), u.id))
        return paginate(request, users, render.user_json)


# --- roster reads ----------------------------------------------------------------------------------


def account_users(sim: CanvasSimulator, request: Request) -> Answer:
    account = _get(sim, "account", request.captures[0])
    include_deleted = request.flag("include_deleted_users")
    with sim.state.lock:
        if account.id != sim.state.root_account.id:
            # Users "of" a sub-account: those enrolled in its courses (Canvas uses account associations).
            accounts = sim.state.account_and_descendants(account.id)
            user_ids = {
                e.user_id
                for c in sim.state.courses.values()
                if c.account_id in accounts
                for e in sim.state.course_enrollments(c.id)
            }
            users = [sim.state.users[i] for i in sorted(user_ids)]
        else:
            users = sim.cached_users()
        if not include_deleted:
            users = [u for u in users if u.workflow_state != "deleted"]
        return paginate(request, users, render.user_json)


def account_courses(sim: CanvasSimulator, request: Request) -> Answer:
    account = _get(sim, "account", request.captures[0])
    states = set(request.many("state"))
    include_term = "term" in request.many("include")
    with sim.state.lock:
        accounts = sim.state.account_and_descendants(account.id)
        courses = [c for c in sim.state.courses.values() if c.account_id in accounts]
        if "all" not in states:
            if states:
                wanted = {"unpublished": "claimed", "created": "claimed"}
                states = {wanted.get(s, s) for s in states}
                courses = [c for c in courses if c.workflow_state in states]
            else:
                courses = [c for c in courses if c.workflow_state != "deleted"]
        return paginate(request, courses, lambda c: render.course_json(sim.state, c, include_term=include_term))


def course_sections(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        course = _get(sim, "course", request.captures[0])
        sections = [
            sim.state.sections[i]
            for i in sim.state.sections_by_course.get(course.id, [])
            if sim.state.sections[i].workflow_state != "deleted"
        ]
        return paginate(request, sections, lambda s: render.section_json(sim.state, s))


def _filter_enrollments(request: Request, enrollments: list[Any]) -> list[Any]:
    states = set(request.many("state")) or {"active", "invited"}
    if "current_and_concluded" in states:
        states |= {"active", "invited", "completed"}
    return [e for e in enrollments if e.workflow_state in states]


def course_enrollments(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        course = _get(sim, "course", request.captures[0])
        found = _filter_enrollments(request, sim.state.course_enrollments(course.id))
        return paginate(request, found, lambda e: render.enrollment_json(sim.state, e))


def section_enrollments(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        section = _get(sim, "section", request.captures[0])
        found = _filter_enrollments(request, sim.state.section_enrollments(section.id))
        return paginate(request, found, lambda e: render.enrollment_json(sim.state, e))


# --- grades ----------------------------------------------------------------------------------------


def course_assignments(sim: CanvasSimulator, request: Request) -> Answer:
    with sim.state.lock:
        course = _get(sim, "course", request.captures[0])
        # AssignmentsApiController#index -> get_assignments -> Assignments::ScopedToUser#scope
        # (app/models/assignments/scoped_to_user.rb): the course's active_assignments, so a deleted one is gone
        # from the list; unpublished ones are kept for a user with manage_assignments or read_as_admin (our
        # admin token), listed with published: false; the differentiated filter narrows only students' lists.
        found = [
            sim.state.assignments[i]
            for i in sim.state.assignments_by_course.get(course.id, [])
            if sim.state.assignments[i].workflow_state != "deleted"
        ]
        return paginate(request, found, render.assignment_json)


def course_assignment_groups(sim: CanvasSimulator, request: Request) -> Answer:
    # "List assignment groups" (AssignmentGroupsController#index in assignment_groups_controller.rb; the
    # _api_ controller holds show/create/update/destroy), GET /api/v1/courses/:course_id/assignment_groups: the
    # course's active groups by position, each as lib/api/v1/assignment_group.rb renders it.
    with sim.state.lock:
        course = _get(sim, "course", request.captures[0])
        groups = [
            sim.state.assignment_groups[i]
            for i in sim.state.groups_by_course.get(course.id, [])
            if sim.state.assignment_groups[i].workflow_state != "deleted"
        ]
        groups.sort(key=lambda g: (g.position, g.id))
        return paginate(request, groups, render.assignment_group_json)


def assignment_overrides(sim: CanvasSimulator, request: Request) -> Answer:
    # AssignmentOverridesController#index (GET /api/v1/courses/:course_id/assignments/:assignment_id/overrides):
    # the assignment's active overrides; 404 for an assignment not in the course or deleted.
    with sim.state.lock:
        course = _get(sim, "course", request.captures[0])
        assignment = sim.state.assignments.get(int(request.captures[1])) if request.captures[1].isdigit() else None
        if assignment is None or assignment.course_id != course.id or assignment.workflow_state == "deleted":
            raise ApiError(404, "The specified resource does not exist.")
        return paginate(request, assignment.overrides, lambda o: render.assignment_override_json(assignment, o))


def course_submissions(sim: CanvasSimulator, request: Request) -> Answer:
    student_ids = request.many("student_ids")
    if not student_ids:
        raise ApiError(400, "student_ids is required")
    since = request.one("graded_since")
    since_at = _parse_time(since) if since else None
    with sim.state.lock:
        course = _get(sim, "course", request.captures[0])
        wanted: set[int] | None = None
        if "all" not in student_ids:
            wanted = set()
            for ref in student_ids:
                user = sim.state.resolve("user", ref)
                if user is not None:
                    wanted.add(user.id)
        assignment_ids = set(sim.state.assignments_by_course.get(course.id, []))
        found = [
            s
            for s in sim.state.submissions.values()
            if s.assignment_id in assignment_ids
            and (wanted is None or s.user_id in wanted)
            and (since_at is None or (s.graded_at is not None and _parse_time(s.graded_at) >= since_at))
        ]
        found.sort(key=lambda s: s.id)
        return paginate(request, found, render.submission_json)


# --- control API -----------------------------------------------------------------------------------


def control_faults(sim: CanvasSimulator, request: Request) -> Answer:
    spec = request.json or {}
    sim.inject_faults(status=spec.get("status"), hang_seconds=spec.get("hang_seconds"), count=int(spec.get("count", 1)))
    return 200, {"pending": sim.faults.pending()}, {}


def control_clear_faults(sim: CanvasSimulator, request: Request) -> Answer:
    sim.faults.clear()
    return 200, {"pending": 0}, {}


def control_throttle(sim: CanvasSimulator, request: Request) -> Answer:
    spec = request.json or {}
    sim.set_throttle(
        enabled=bool(spec.get("enabled", True)),
        model=str(spec.get("model", "canvas")),
        mode=str(spec.get("mode", "429")),
        capacity=spec.get("capacity"),
        drain_per_second=spec.get("drain_per_second"),
        request_cost=spec.get("request_cost"),
        up_front_cost=spec.get("up_front_cost"),
        extra_cost=spec.get("extra_cost"),
    )
    return 200, {"enabled": sim.throttle_enabled, "model": sim.throttle_model, "mode": sim.throttle_mode}, {}


def control_assignment(sim: CanvasSimulator, request: Request) -> Answer:
    spec = request.json or {}
    assignment = sim.add_assignment(
        str(spec["course_id"]),
        name=spec["name"],
        points_possible=spec.get("points_possible"),
        post_to_sis=bool(spec.get("post_to_sis", False)),
        due_at=spec.get("due_at"),
        group=spec.get("group"),
        published=bool(spec.get("published", True)),
        only_visible_to_overrides=bool(spec.get("only_visible_to_overrides", False)),
        student_ids=spec.get("student_ids"),
        section_ids=spec.get("section_ids"),
    )
    return 200, render.assignment_json(assignment), {}


def control_submission(sim: CanvasSimulator, request: Request) -> Answer:
    spec = request.json or {}
    submission = sim.grade(
        int(spec["assignment_id"]),
        str(spec["user_id"]),
        score=spec.get("score"),
        grade=spec.get("grade"),
        graded_at=spec.get("graded_at"),
        excused=bool(spec.get("excused")),
        late=bool(spec.get("late")),
        missing=bool(spec.get("missing")),
    )
    return 200, render.submission_json(submission), {}


def control_state(sim: CanvasSimulator, request: Request) -> Answer:
    return 200, sim.summary(), {}


def control_pause(sim: CanvasSimulator, request: Request) -> Answer:
    sim.pause_imports()
    return 200, {"imports": "paused"}, {}


def control_resume(sim: CanvasSimulator, request: Request) -> Answer:
    sim.resume_imports()
    return 200, {"imports": "running"}, {}


def _r(method: str, pattern: str, permission: Permission, func: Handler) -> Route:
    return (method, re.compile(pattern + r"/?\Z"), permission, func)


_ACCT = r"/api/v1/accounts/([^/]+)"
SIS_READ = ("import_sis", "manage_sis")
ROUTES: list[Route] = [
    # Permissions as SisImportsApiController#authorized_action asks them: import_sis to create, import_sis or
    # manage_sis to read and abort, manage_sis to restore states.
    _r("POST", _ACCT + r"/sis_imports", "import_sis", create_sis_import),
    _r("GET", _ACCT + r"/sis_imports", SIS_READ, list_sis_imports),
    _r("GET", _ACCT + r"/sis_imports/importing", SIS_READ, importing_sis_imports),
    _r("PUT", _ACCT + r"/sis_imports/abort_all_pending", SIS_READ, abort_all_pending),
    _r("GET", _ACCT + r"/sis_imports/(\d+)", SIS_READ, get_sis_import),
    _r("GET", _ACCT + r"/sis_imports/(\d+)/errors", SIS_READ, sis_import_errors),
    _r("PUT", _ACCT + r"/sis_imports/(\d+)/abort", SIS_READ, abort_sis_import),
    _r("PUT", _ACCT + r"/sis_imports/(\d+)/restore_states", "manage_sis", restore_states),
    _r("GET", r"/api/v1/progress/(\d+)", None, get_progress),
    _r("GET", _ACCT, None, get_account),
    _r("GET", r"/api/v1/users/([^/]+)", "read_roster", get_user),
    _r("GET", r"/api/v1/users/([^/]+)/logins", "read_roster", user_logins),
    _r("GET", r"/api/v1/courses/([^/]+)", "read_course_list", get_course),
    _r("GET", r"/api/v1/courses/([^/]+)/users", "read_roster", course_users),
    # Canvas routes courses/:id/search_users to the same action (CoursesController#users); canvasapi calls it.
    _r("GET", r"/api/v1/courses/([^/]+)/search_users", "read_roster", course_users),
    _r("GET", r"/api/v1/sections/([^/]+)", "read_roster", get_section),
    _r("GET", _ACCT + r"/users", "read_roster", account_users),
    _r("GET", _ACCT + r"/courses", "read_course_list", account_courses),
    _r("GET", r"/api/v1/courses/([^/]+)/sections", "read_roster", course_sections),
    _r("GET", r"/api/v1/courses/([^/]+)/enrollments", "read_roster", course_enrollments),
    _r("GET", r"/api/v1/sections/([^/]+)/enrollments", "read_roster", section_enrollments),
    _r("GET", r"/api/v1/courses/([^/]+)/assignments", "read_course_content", course_assignments),
    _r("GET", r"/api/v1/courses/([^/]+)/assignment_groups", "read_course_content", course_assignment_groups),
    _r("GET", r"/api/v1/courses/([^/]+)/assignments/([^/]+)/overrides", "read_course_content", assignment_overrides),
    _r("GET", r"/api/v1/courses/([^/]+)/students/submissions", "view_all_grades", course_submissions),
    _r("POST", r"/_sim/faults", None, control_faults),
    _r("DELETE", r"/_sim/faults", None, control_clear_faults),
    _r("PUT", r"/_sim/throttle", None, control_throttle),
    _r("POST", r"/_sim/assignments", None, control_assignment),
    _r("POST", r"/_sim/submissions", None, control_submission),
    _r("GET", r"/_sim/state", None, control_state),
    _r("POST", r"/_sim/imports/pause", None, control_pause),
    _r("POST", r"/_sim/imports/resume", None, control_resume),
]

# The account reads (show, permissions) live in their own module; see there.
from canvas.simulator.account_api import ROUTES as _ACCOUNT_ROUTES  # noqa: E402

ROUTES.extend(_ACCOUNT_ROUTES)

# An enrollment a person adds by hand (no SIS import): its own module; see there.
from canvas.simulator.enrollment_api import ROUTES as _ENROLLMENT_ROUTES  # noqa: E402

ROUTES.extend(_ENROLLMENT_ROUTES)
