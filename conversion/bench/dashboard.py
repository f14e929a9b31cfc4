"""Dashboard latency: 1,000 districts in the scratch database, gunicorn on a free loopback port, and a
pool of signed-in clients (httpx, one per thread) polling the portfolio and a job's progress partial."""
from __future__ import annotations

import contextlib
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

import httpx

USERNAME, PASSWORD = "bench-consultant", "bench-password-1"
GUNICORN_WORKERS, GUNICORN_THREADS = 2, 4  # as scripts/start runs it


def seed(districts: int = 1000, jobs_per_conversion: int = 5) -> dict:
    """Districts in every state with a few jobs each, and a consultant; returns a job poll URL."""
    from django.contrib.auth import get_user_model

    from conversion.models import Conversion, ConversionState, District, Job, JobKind, JobState

    get_user_model().objects.create_user(USERNAME, password=PASSWORD, is_staff=True)
    states = list(ConversionState.values)
    made = District.objects.bulk_create(
        District(name=f"District {n:04d}", slug=f"district-{n:04d}", canvas_url="https://canvas.example.org")
        for n in range(districts))
    conversions = Conversion.objects.bulk_create(
        Conversion(district=d, school_year=2027, state=states[n % len(states)], zis_url="https://zis.example.org",
                   zone_id=f"ZONE{n}") for n, d in enumerate(made))
    kinds, finished = list(JobKind.values), [JobState.SUCCEEDED, JobState.FAILED]
    Job.objects.bulk_create(
        (Job(conversion=c, kind=kinds[(n + k) % len(kinds)], state=finished[k % 2] if k else JobState.RUNNING,
             current=k * 10, total=100, message=f"step {k}", detail={"objects": {"StudentPersonal": {"records": k}}})
         for n, c in enumerate(conversions) for k in range(jobs_per_conversion)), batch_size=2000)
    job = Job.objects.filter(conversion=conversions[len(conversions) // 2], state=JobState.RUNNING).first()
    c = job.conversion
    return {"districts": districts, "jobs": districts * jobs_per_conversion,
            "job_url": f"/districts/{c.district.slug}/{c.school_year}/jobs/{job.pk}/?polling=1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(database_url: str, repo: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_DEBUG": "0"}
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "gunicorn"), "conversion.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(GUNICORN_WORKERS), "--threads", str(GUNICORN_THREADS), "--log-level", "warning"],
        cwd=repo, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):  # up to ~20 s for the workers to boot
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {proc.returncode}")
            try:
                httpx.get(base + "/accounts/login/", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not answer")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def signed_in_client(base: str) -> httpx.Client:
    # Idle connections are let go before gunicorn's 2 s keep-alive closes them under the client's feet.
    client = httpx.Client(base_url=base, timeout=30.0, limits=httpx.Limits(keepalive_expiry=1.0))
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = client.post("/accounts/login/", data={"username": USERNAME, "password": PASSWORD,
                                                 "csrfmiddlewaretoken": token}, headers={"Referer": base + "/"})
    if done.status_code != 302:
        raise RuntimeError(f"sign-in failed: {done.status_code}")
    return client


@dataclass
class Latency:
    requests: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    per_second: float


def drive(base: str, path: str, *, clients: int = 20, per_client: int = 50, headers: dict | None = None,
          expect: str = "") -> Latency:
    """`clients` threads, each signed in, each sending `per_client` GETs back to back."""
    sessions = [signed_in_client(base) for _ in range(clients)]
    for session in sessions:  # one warm-up each, not timed
        session.get(path, headers=headers)
    timings: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)

    def work(session: httpx.Client) -> None:
        mine = []
        barrier.wait()
        for _ in range(per_client):
            started = time.perf_counter()
            response = session.get(path, headers=headers)
            mine.append(time.perf_counter() - started)
            if response.status_code != 200 or expect not in response.text:
                failures.append(f"{response.status_code} for {path}")
        with lock:
            timings.extend(mine)

    threads = [threading.Thread(target=work, args=(s,)) for s in sessions]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    for session in sessions:
        session.close()
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[0]}")
    cuts = statistics.quantiles(timings, n=100)
    return Latency(len(timings), cuts[49] * 1000, cuts[94] * 1000, max(timings) * 1000, len(timings) / wall)
