"""Dashboard latency: 1,000 districts in the scratch database, gunicorn on a free loopback port, and a
pool of signed-in clients polling the portfolio and a job's progress partial.

The clients share the machine's cores with the server, so they are kept cheap: each is a thread with one
keep-alive `http.client` connection and its own cookies, signed in through the login form, sending real GETs
and checking every answer's content. The CPU that the gunicorn workers, the database's backends and the client
process spend while the clock runs is measured and reported, so a reader can see how much of the machine the
load generator itself took.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from conversion.bench.runner import child_env

USERNAME, PASSWORD = "bench-consultant", "bench-password-1"
GUNICORN_CONF = "conversion/gunicorn_conf.py"  # as scripts/start runs it (see there why)


def seed(districts: int = 1000, jobs_per_conversion: int = 5) -> dict:
    """Districts in every state with a few jobs each, and a consultant; returns a job poll URL."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from conversion.models import (
        Conversion,
        ConversionState,
        District,
        Job,
        JobKind,
        JobState,
    )

    consultant = get_user_model().objects.create_user(USERNAME, password=PASSWORD, is_staff=True)
    states = list(ConversionState.values)
    made = District.objects.bulk_create(
        District(name=f"District {n:04d}", slug=f"district-{n:04d}", canvas_url="https://canvas.example.org")
        for n in range(districts)
    )
    conversions = Conversion.objects.bulk_create(
        Conversion(
            district=d,
            school_year=2027,
            state=states[n % len(states)],
            zis_url="https://zis.example.org",
            zone_id=f"ZONE{n}",
        )
        for n, d in enumerate(made)
    )
    kinds, finished = list(JobKind.values), [JobState.SUCCEEDED, JobState.FAILED]
    # Each conversion's newest job runs, as a worker's claim() leaves it: started, with a heartbeat and the
    # consultant who asked for it; so its item shows who and the time elapsed, which changes on every poll.
    now = timezone.now()
    Job.objects.bulk_create(
        (
            Job(
                conversion=c,
                kind=kinds[(n + k) % len(kinds)],
                state=finished[k % 2] if k else JobState.RUNNING,
                current=k * 10,
                total=100,
                message=f"step {k}",
                detail={"objects": {"StudentPersonal": {"records": k}}},
                **(
                    {}
                    if k
                    else {
                        "started_at": now - dt.timedelta(minutes=5),
                        "heartbeat_at": now,
                        "requested_by": consultant,
                        "attempts": 1,
                    }
                ),
            )
            for n, c in enumerate(conversions)
            for k in range(jobs_per_conversion)
        ),
        batch_size=2000,
    )
    job = Job.objects.filter(conversion=conversions[len(conversions) // 2], state=JobState.RUNNING).first()
    if job is None:
        raise RuntimeError("the seeded fleet has no running job to poll")
    c = job.conversion
    return {
        "districts": districts,
        "jobs": districts * jobs_per_conversion,
        "job_id": job.pk,
        "job_url": f"/districts/{c.district.slug}/{c.school_year}/jobs/{job.pk}/?polling=1",
    }


@contextlib.contextmanager
def moving_job(database_url: str, job_id: int, interval: float) -> Iterator[list[int]]:
    """While open, the job's progress moves as a running worker writes it (jobs.Progress): one more item and a
    heartbeat every `interval` seconds. Yields a one-item list that ends up holding the number of writes."""
    import psycopg

    writes, stop, failed = [0], threading.Event(), []

    def write() -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                while not stop.wait(interval):
                    conn.execute(
                        "UPDATE conversion_job SET current = mod(current + 1, 100), heartbeat_at = now() WHERE id = %s",
                        [job_id],
                    )
                    writes[0] += 1
        except Exception as error:  # the measurement is void without it: re-raised below
            failed.append(error)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield writes
    finally:
        stop.set()
        thread.join()
    if failed:
        raise RuntimeError(f"the job's progress writer failed: {failed[0]}") from failed[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base: str
    pid: int  # gunicorn's master; its children are the workers
    database: str  # the database name, to find PostgreSQL's backends serving it

    def worker_cpu_seconds(self) -> float:
        """User + system CPU of the live workers so far (Linux /proc; 0 elsewhere)."""
        total = 0.0
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                children = f.read().split()
        except OSError:
            return 0.0
        for child in children:
            total += _cpu_seconds(int(child))
        return total

    def database_cpu_seconds(self) -> float:
        """CPU of the PostgreSQL backends connected to this database (their process titles name it)."""
        total = 0.0
        for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    title = f.read().split(b"\0")[0].decode(errors="replace")
            except OSError:
                continue
            if title.startswith("postgres:") and f" {self.database} " in title:
                total += _cpu_seconds(int(entry))
        return total


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def gunicorn(database_url: str, repo: str, env: dict | None = None) -> Iterator[Server]:
    port = free_port()
    env = {**child_env(database_url), **(env or {})}
    under_test_settings = os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith("settings_test")
    if under_test_settings and env.get("PORTFOLIO_CACHE_SECONDS") == "0":
        # Started under the test settings, whose default (the portfolio cache off, for Playwright) landed in this
        # environment: the server measured keeps the portfolio cache scripts/start runs with (settings.py's default).
        env["PORTFOLIO_CACHE_SECONDS"] = "2"
    proc = subprocess.Popen(
        [
            os.path.join(os.path.dirname(sys.executable), "gunicorn"),
            "conversion.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--config",
            GUNICORN_CONF,
            "--log-level",
            "warning",
        ],
        cwd=repo,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # up to ~20 s for the workers to boot
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}")
            try:
                Client(base).get("/accounts/login/")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not answer")
        yield Server(base, proc.pid, urlsplit(database_url).path.lstrip("/"))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def shared_cache(url: str) -> Iterator[dict]:
    """The server's CACHE_URL and CACHE_KEY_PREFIX when a Redis answers at `url` (as production runs:
    sessions through it), else nothing (process memory, sessions in the database). This run's keys are
    deleted afterwards."""
    if not url:
        yield {}
        return
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        yield {}
        return
    prefix = f"bench-dashboard-{os.getpid()}-{time.time_ns()}"
    try:
        yield {"CACHE_URL": url, "CACHE_KEY_PREFIX": prefix}
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


class Client:
    """One browser-like client: one keep-alive connection, its own cookie jar, and a browser's private
    cache of answers that came with an ETag: the next GET of that URL asks If-None-Match, and a 304 Not
    Modified is answered from the copy kept (which is then what gets checked), as a browser does for htmx."""

    def __init__(self, base: str, conditional: bool = True):
        parts = urlsplit(base)
        if not parts.hostname:
            raise ValueError(f"{base!r} names no host")
        self.conditional = conditional  # False: never asks If-None-Match (a first load, every answer rendered)
        self.base, self.host, self.port = base, parts.hostname, parts.port
        self.cookies: dict[str, str] = {}
        self.kept: dict[str, tuple[str, bytes]] = {}  # path -> (ETag, body)
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.reconnects = 0
        self.not_modified = 0

    def request(
        self, method: str, path: str, headers: dict | None = None, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        sent = {**(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method == "GET" and self.conditional and path in self.kept:
            sent["If-None-Match"] = self.kept[path][0]
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=sent)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection as we reused it: a new one, once.
                self.conn.close()
                self.reconnects += 1
                if attempt == 2:
                    raise
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                cookie, _, _ = value.partition(";")
                key, _, val = cookie.partition("=")
                if val.strip('"'):
                    self.cookies[key.strip()] = val
                else:
                    self.cookies.pop(key.strip(), None)
        if response.will_close:
            self.conn.close()
        received = {k.lower(): v for k, v in response.getheaders()}
        if response.status == 304 and path in self.kept:
            self.not_modified += 1
            return 200, received, self.kept[path][1]
        if method == "GET" and response.status == 200 and "etag" in received:
            self.kept[path] = (received["etag"], data)
        return response.status, received, data

    def get(self, path: str, headers: dict | None = None) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, headers)

    def close(self) -> None:
        self.conn.close()


def signed_in_client(base: str, conditional: bool = True) -> Client:
    """A client that signed in through the login form, as a browser does (CSRF token and cookie)."""
    client = Client(base, conditional)
    _, _, page = client.get("/accounts/login/")
    found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    if found is None:
        raise RuntimeError("the login page carries no CSRF token")
    token = found.group(1).decode()
    form = urlencode({"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token}).encode()
    status, _, _ = client.request(
        "POST",
        "/accounts/login/",
        body=form,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Referer": base + "/accounts/login/"},
    )
    if status != 302 or "sessionid" not in client.cookies:
        raise RuntimeError(f"sign-in failed: {status}")
    return client


@dataclass
class Latency:
    requests: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    per_second: float
    server_cpu_ms: float  # gunicorn workers' CPU per request
    database_cpu_ms: float  # PostgreSQL backends' CPU per request
    client_cpu_ms: float  # this process's CPU per request (the load generator)
    not_modified: int  # answers that were 304 Not Modified (served from the client's kept copy)

    @property
    def client_share(self) -> float:
        """The load generator's part of the CPU spent while measuring (workers + database + clients)."""
        total = self.server_cpu_ms + self.database_cpu_ms + self.client_cpu_ms
        return self.client_cpu_ms / total if total else 0.0


def drive(
    server: Server,
    path: str,
    *,
    clients: int = 20,
    per_client: int = 50,
    headers: dict | None = None,
    expect: str = "",
    conditional: bool = True,
) -> Latency:
    """`clients` threads, each signed in with its own session, each sending `per_client` GETs back to back.

    Every answer must be 200 (or 304 with a kept copy, as a browser shows it) with `expect` in its body.
    Only the timed loop is charged CPU: sign-in (password hashing) and the one untimed warm-up request per
    client happen before the clock starts.
    """
    sessions = [signed_in_client(server.base, conditional) for _ in range(clients)]
    for session in sessions:  # the sign-ins above took long enough for gunicorn to drop idle connections
        session.close()
    wanted = expect.encode()
    timings: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    go = threading.Event()

    def work(session: Client) -> None:
        session.get(path, headers)  # warm-up, not timed: connection opened, worker's code paths loaded
        ready.wait()
        go.wait()
        mine = []
        for _ in range(per_client):
            started = time.perf_counter()
            status, _, body = session.get(path, headers)
            mine.append(time.perf_counter() - started)
            if status != 200 or wanted not in body:
                failures.append(f"{status} for {path}")
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=work, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    ready.wait()
    not_modified_before = sum(s.not_modified for s in sessions)
    server_cpu, db_cpu = server.worker_cpu_seconds(), server.database_cpu_seconds()
    client_cpu, started = time.process_time(), time.perf_counter()
    go.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    client_cpu = time.process_time() - client_cpu
    server_cpu = server.worker_cpu_seconds() - server_cpu
    db_cpu = server.database_cpu_seconds() - db_cpu
    for session in sessions:
        session.close()
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[0]}")
    n = len(timings)
    cuts = statistics.quantiles(timings, n=100)
    not_modified = sum(s.not_modified for s in sessions) - not_modified_before
    return Latency(
        n,
        cuts[49] * 1000,
        cuts[94] * 1000,
        max(timings) * 1000,
        n / wall,
        server_cpu / n * 1000,
        db_cpu / n * 1000,
        client_cpu / n * 1000,
        not_modified,
    )
