"""Running jobs in tests the way a worker does, and playing a worker that dies mid-job."""

from __future__ import annotations

import contextlib
import datetime as dt

from conversion import jobs
from conversion.models import Job, JobState


def run(conversion, kind, runner, *, expect_success: bool = False) -> Job:
    """Start a job of `kind` and run it in this process through the real claim-and-run path."""
    job, _ = jobs.start_job(conversion, kind, enqueue=False)
    jobs.run_job(job.pk, runner)
    job.refresh_from_db()
    if expect_success:
        assert job.state == JobState.SUCCEEDED, job.error
    return job


@contextlib.contextmanager
def worker_dies_in(module, name: str):
    """Calls to `module.name` raise SystemExit, as if the worker were killed there (not an Exception)."""
    real = getattr(module, name)

    def die(*args, **kwargs):
        raise SystemExit(f"worker killed in {name}")

    setattr(module, name, die)
    try:
        yield
    finally:
        setattr(module, name, real)


def expire_lease(job: Job) -> None:
    """The dead worker's heartbeat is long gone: another worker may take the job over."""
    Job.objects.filter(pk=job.pk).update(heartbeat_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
