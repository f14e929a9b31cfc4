"""Jobs under a hostile probe: one active job per kind in the database, claims that tell workers apart, writes
that check the claim, cancel, capped re-sends, finished sync records, pruned snapshots, errors without paths,
a broker that is down."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from conversion import jobs
from conversion.celery import app as celery_app
from conversion.models import (
    AuditEvent,
    Job,
    JobKind,
    JobLost,
    JobState,
    SifRecord,
    Snapshot,
    SnapshotState,
    SyncRun,
    SyncState,
)
from conversion.services import schedule, sync
from tests.conversion.jobhelpers import expire_lease

pytestmark = pytest.mark.django_db(transaction=True)
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def job_url(job: Job, suffix: str = "") -> str:
    c = job.conversion
    return reverse("job", kwargs={"slug": c.district.slug, "year": c.school_year, "job_id": job.pk}) + suffix


# ---- 1. one active job per conversion and kind, in the database --------------------------------------


def test_the_database_refuses_a_second_active_job_of_a_kind(conversion):
    Job.objects.create(conversion=conversion, kind=JobKind.REMAP)
    with pytest.raises(IntegrityError), transaction.atomic():
        Job.objects.create(conversion=conversion, kind=JobKind.REMAP, state=JobState.RUNNING)
    # Another kind, or once the first has ended, is fine.
    Job.objects.create(conversion=conversion, kind=JobKind.PULL)
    Job.objects.filter(kind=JobKind.REMAP).update(state=JobState.FAILED)
    Job.objects.create(conversion=conversion, kind=JobKind.REMAP)


def test_start_job_turns_the_refusal_into_already_active(conversion):
    first, created = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    assert created
    with pytest.raises(jobs.JobAlreadyActive) as refused:
        jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    assert refused.value.job == first and str(refused.value) == "One is already queued or running."
    assert Job.objects.filter(kind=JobKind.PULL).count() == 1
    assert AuditEvent.objects.filter(action=f"job_started:{JobKind.PULL}").count() == 1


def test_a_nightly_trigger_finds_a_manual_sync_still_running(conversion):
    conversion.state = "live"
    conversion.save()
    manual, _ = jobs.start_job(conversion, JobKind.SYNC, enqueue=False)
    result = schedule.start_nightly_syncs()
    assert result["already"] == [manual.pk] and result["started"] == []


# ---- 7. every pool process of one worker claims under its own name ----------------------------------------

PREFORK = """
import os, sys
import django
django.setup()
from django.db import connections
from conversion import jobs  # imported once in the parent, before the fork, as Celery's prefork pool does
connections.close_all()
children = []
for job_id in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        jobs.run_job(int(job_id), lambda job, progress: None)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(" ".join(map(str, children)))
"""


def test_every_pool_process_of_a_worker_claims_under_its_own_name(conversion, settings):
    import os
    import subprocess
    import sys
    from pathlib import Path

    ids = [jobs.start_job(conversion, kind, enqueue=False)[0].pk for kind in (JobKind.PULL, JobKind.TEST_CONNECTION)]
    # A fresh, single-threaded interpreter forks (forking this test process, with its threads, could deadlock).
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "conversion.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    done = subprocess.run(
        [sys.executable, "-c", PREFORK, *map(str, ids)],
        env=env,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    children = done.stdout.split()
    names = [Job.objects.get(pk=pk).worker for pk in ids]
    assert all(Job.objects.get(pk=pk).state == JobState.SUCCEEDED for pk in ids)
    assert len(set(names)) == 2, names
    for pid, name in zip(children, names, strict=False):
        assert f":{pid}:" in name, (pid, name)


def test_two_claims_in_one_process_have_different_names(conversion):
    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    seen = []

    def runner(j, progress):
        seen.append(j.worker)
        expire_lease(j)
        # Another thread of this very process takes the job over (a threads pool, or a stalled run).
        taken = Job.objects.get(pk=j.pk)
        assert taken.claim(jobs.worker_name())
        seen.append(taken.worker)
        raise jobs.JobFailed("the first run's outcome")

    jobs.run_job(job.pk, runner)
    job.refresh_from_db()
    assert seen[0] != seen[1]
    assert (job.state, job.worker) == (JobState.RUNNING, seen[1])  # the first run did not finish it


# ---- 8. writes after the claim check that the writer still holds the job --------------------------------


def test_a_run_that_lost_its_job_writes_no_progress_and_no_detail(conversion):
    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    raised = []

    def runner(j, progress):
        # Meanwhile another worker took the job over and is writing its own progress.
        Job.objects.filter(pk=j.pk).update(
            worker="other:1:abcd", heartbeat_at=timezone.now(), message="other run", detail={"owner": "other"}
        )
        for write in (
            lambda: progress.update(current=5, message="stale run", force=True),
            lambda: j.merge_detail({"import_id": 999}),
        ):
            try:
                write()
            except JobLost:
                raised.append(True)
        progress.update(message="stale run again", force=True)

    jobs.run_job(job.pk, runner)
    job.refresh_from_db()
    assert raised == [True, True]
    assert (job.state, job.message, job.detail, job.current) == (JobState.RUNNING, "other run", {"owner": "other"}, 0)


# ---- 2. a consultant cancels a job ---------------------------------------------------------------------


def test_a_running_job_stops_at_its_next_step_when_a_consultant_cancels_it(conversion, consultant):
    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    steps = []

    def runner(j, progress):
        for step in range(1000):
            if step == 3:
                assert (
                    jobs.cancel_job(Job.objects.get(pk=j.pk), user=consultant, reason="wrong zone")
                    == "Cancelling: the job stops at its next step."
                )
            progress.update(current=step, force=True)
            steps.append(step)

    jobs.run_job(job.pk, runner)
    job.refresh_from_db()
    assert steps == [0, 1, 2]
    assert job.state == JobState.CANCELLED and job.finished_at and "Cancelled" in job.message
    actions = list(AuditEvent.objects.filter(conversion=conversion).values_list("action", "actor_label", "reason"))
    assert (f"job_cancel:{JobKind.PULL}", "ic", "wrong zone") in actions
    assert (f"job_cancelled:{JobKind.PULL}", "worker", "") in actions
    # The place is free again.
    assert jobs.start_job(conversion, JobKind.PULL, enqueue=False)[1]


def test_a_queued_job_is_cancelled_at_once_and_never_runs(client, conversion, consultant):
    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    client.force_login(consultant)
    response = client.post(job_url(job, "cancel/"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Cancelled" in response.content.decode()
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert jobs.run_job(job.pk, lambda j, p: pytest.fail("a cancelled job ran")) is None


def test_a_district_admin_cannot_cancel_a_job(client, conversion, district_admin):
    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    client.force_login(district_admin)
    assert client.post(job_url(job, "cancel/")).status_code == 403
    page = client.get(job_url(job)).content.decode()
    assert "Cancel job" not in page
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.cancel_requested_at is None


def test_the_consultant_sees_a_cancel_button_on_a_running_job(client, conversion, consultant):
    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    client.force_login(consultant)
    assert "Cancel job" in client.get(job_url(job)).content.decode()


# ---- 5. errors shown to district admins carry the message, not the traceback ------------------------------


def test_an_unexpected_fault_shows_its_message_to_admins_and_its_traceback_to_consultants(
    client, conversion, consultant, district_admin
):
    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)

    def runner(j, progress):
        raise KeyError("SIF_Response")

    jobs.run_job(job.pk, runner)
    job.refresh_from_db()
    assert job.state == JobState.FAILED
    assert job.error == "Unexpected error: KeyError: 'SIF_Response'"
    assert "Traceback (most recent call last)" in job.traceback and __file__ in job.traceback

    client.force_login(district_admin)
    seen_by_admin = client.get(job_url(job)).content.decode()
    page = client.get(reverse("district_year", kwargs={"slug": "alpha", "year": 2027})).content.decode()
    for shown in (seen_by_admin, page):
        assert "KeyError: &#x27;SIF_Response&#x27;" in shown
        assert "Traceback" not in shown and 'File "/' not in shown and "File &quot;/" not in shown

    client.force_login(consultant)
    seen_by_consultant = client.get(job_url(job)).content.decode()
    assert "Traceback (most recent call last)" in seen_by_consultant


# ---- 4. failed syncs end their record; dying jobs are capped; abandoned snapshots are pruned --------------


def test_a_failed_sync_leaves_its_sync_record_failed(conversion, settings):
    settings.ZIS_CLIENT_OPTIONS = {"timeout": 5.0, "retries": 0, "retry_delay": 0.0}
    conversion.zis_url, conversion.zone_id = "http://127.0.0.1:9/zones", "ALPHA"  # nothing listens there
    conversion.save()
    job, _ = jobs.start_job(conversion, JobKind.SYNC, enqueue=False)
    jobs.run_job(job.pk, sync.run_sync)
    job.refresh_from_db()
    run = SyncRun.objects.get(job=job)
    assert job.state == JobState.FAILED
    assert run.state == SyncState.FAILED and run.finished_at is not None


def test_a_job_that_keeps_killing_its_worker_is_failed_after_the_capped_attempts(conversion, settings):
    dying, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    Job.objects.filter(pk=dying.pk).update(
        state=JobState.RUNNING, attempts=settings.JOB_MAX_ATTEMPTS, heartbeat_at=LONG_AGO, worker="gone:1:dead"
    )
    once, _ = jobs.start_job(conversion, JobKind.TEST_CONNECTION, enqueue=False)
    Job.objects.filter(pk=once.pk).update(state=JobState.RUNNING, attempts=1, heartbeat_at=LONG_AGO)

    assert schedule.requeue_stale_jobs() == 1  # only the job with attempts left is sent again
    dying.refresh_from_db()
    assert dying.state == JobState.FAILED and dying.finished_at
    assert f"Stopped after {settings.JOB_MAX_ATTEMPTS} attempts" in dying.error and "killed" in dying.error
    assert AuditEvent.objects.filter(action=f"job_failed:{JobKind.PULL}", detail__job=dying.pk).exists()
    assert schedule.requeue_stale_jobs() == 1  # and it stays failed: not sent again
    # A redelivered message of it is not run either.
    Job.objects.filter(pk=dying.pk).update(state=JobState.RUNNING, heartbeat_at=LONG_AGO)
    assert jobs.run_job(dying.pk, lambda j, p: pytest.fail("ran again")) is None


def test_snapshots_abandoned_while_receiving_are_pruned_after_a_while(conversion):
    failed_pull, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    Job.objects.filter(pk=failed_pull.pk).update(state=JobState.FAILED)
    abandoned = Snapshot.objects.create(conversion=conversion, job=failed_pull)
    SifRecord.objects.create(snapshot=abandoned, object_name="StudentPersonal", ref_id="A" * 32, xml="<x/>", digest="d")
    orphan = Snapshot.objects.create(conversion=conversion, job=None)
    recent = Snapshot.objects.create(conversion=conversion, job=failed_pull)
    running_pull, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    resumable = Snapshot.objects.create(conversion=conversion, job=running_pull)
    complete = Snapshot.objects.create(conversion=conversion, state=SnapshotState.COMPLETE)
    Snapshot.objects.filter(pk__in=[abandoned.pk, orphan.pk, resumable.pk, complete.pk]).update(created_at=LONG_AGO)

    schedule.requeue_stale_jobs()

    left = set(Snapshot.objects.values_list("pk", flat=True))
    assert left == {recent.pk, resumable.pk, complete.pk}
    assert not SifRecord.objects.filter(snapshot_id=abandoned.pk).exists()


# ---- 2. maintenance on a queue of its own ------------------------------------------------------------------


@pytest.mark.parametrize(
    "task",
    [
        "conversion.scheduled.requeue_stale_jobs",
        "conversion.scheduled.advance_due_dates",
        "conversion.scheduled.nightly_syncs",
    ],
)
def test_maintenance_tasks_go_to_their_own_queue(task):
    assert celery_app.amqp.router.route({}, task)["queue"].name == "maintenance"
    assert celery_app.amqp.router.route({}, "conversion.canvas.sync")["queue"].name == "canvas"


def test_the_start_script_runs_a_worker_for_the_maintenance_queue():
    from pathlib import Path

    start = (Path(__file__).resolve().parents[2] / "scripts" / "start").read_text()
    workers = [line for line in start.splitlines() if "celery -A conversion worker" in line]
    maintenance = [w for w in workers if "-Q maintenance" in w]
    assert maintenance and all("maintenance" not in w for w in workers if w not in maintenance)


# ---- 6. starting a job while the broker is down ------------------------------------------------------------


@pytest.fixture
def broker_down():
    """The Celery app's broker is an address where nothing listens (a real, refused connection)."""
    before = celery_app.conf.broker_url, celery_app.conf.broker_write_url
    point_broker_at("redis://127.0.0.1:1/0")
    yield
    point_broker_at(*before)


def point_broker_at(url: str, write_url: str | None = None) -> None:
    celery_app.conf.broker_url, celery_app.conf.broker_write_url = url, write_url or url
    celery_app._after_fork()  # drop the pooled connections to the previous broker


def test_a_job_started_while_the_broker_is_down_starts_when_it_is_back(
    client, conversion, consultant, broker_down, settings
):
    conversion.zis_url, conversion.zone_id = "http://127.0.0.1:9/zones", "ALPHA"
    conversion.save()
    client.force_login(consultant)
    url = reverse("start_job", kwargs={"slug": "alpha", "year": 2027, "kind": JobKind.TEST_CONNECTION})
    response = client.post(url, follow=True)
    assert response.status_code == 200
    assert "the job will start when they are back" in response.content.decode()
    job = Job.objects.get(conversion=conversion, kind=JobKind.TEST_CONNECTION)
    assert job.state == JobState.QUEUED and job.message == jobs.BROKER_DOWN_MESSAGE

    # Pressing again while it is still down: no second job, and the same promise (not a bare refusal).
    again = client.post(url, follow=True).content.decode()
    assert "the job will start when they are back" in again
    assert Job.objects.filter(kind=JobKind.TEST_CONNECTION).count() == 1

    # The broker is back: the stale-job re-send (a few minutes later) sends it, and its message says so.
    point_broker_at(settings.CELERY_BROKER_URL)
    Job.objects.filter(pk=job.pk).update(created_at=LONG_AGO)
    assert schedule.requeue_stale_jobs() == 1
    job.refresh_from_db()
    assert job.state == JobState.QUEUED and job.message == jobs.WAITING_MESSAGE


# ---- the migration: duplicates left by the race are settled before the constraint; SQLite enforces it too --


def test_the_migration_settles_duplicate_active_jobs_and_moves_old_tracebacks():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("conversion", "0008_sif_version")], [("conversion", "0009_job_hardening")]
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        apps = executor.loader.project_state(before).apps
        District_, Conversion_, Job_ = (apps.get_model("conversion", n) for n in ("District", "Conversion", "Job"))
        conversion = Conversion_.objects.create(
            district=District_.objects.create(name="Old", slug="old"), school_year=2027
        )
        older = Job_.objects.create(conversion=conversion, kind="remap", state="queued")
        running = Job_.objects.create(conversion=conversion, kind="remap", state="running")
        newer = Job_.objects.create(conversion=conversion, kind="remap", state="queued")
        failed = Job_.objects.create(
            conversion=conversion,
            kind="pull",
            state="failed",
            error='KeyError: x\n\nTraceback (most recent call last):\n  File "/srv/app/x.py"',
        )

        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(after)
        states = dict(Job.objects.filter(conversion_id=conversion.pk).values_list("pk", "state"))
        assert states == {older.pk: "cancelled", running.pk: "running", newer.pk: "cancelled", failed.pk: "failed"}
        moved = Job.objects.get(pk=failed.pk)
        assert moved.error == "KeyError: x" and moved.traceback.startswith("Traceback (most recent call last)")

    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())  # back to the latest for the tests that follow


SQLITE_CHECK = """
import django
from django.db import IntegrityError, transaction
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from conversion.models import Conversion, District, Job
c = Conversion.objects.create(district=District.objects.create(name="S", slug="s"), school_year=2027)
Job.objects.create(conversion=c, kind="sync")
try:
    with transaction.atomic():
        Job.objects.create(conversion=c, kind="sync", state="running")
except IntegrityError:
    print("refused")
Job.objects.filter(conversion=c).update(state="succeeded")
Job.objects.create(conversion=c, kind="sync")
print("then allowed")
"""


def test_the_embedded_sqlite_database_enforces_one_active_job_too(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DJANGO_SETTINGS_MODULE="conversion.settings", SIFCONVERT_VAR_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", SQLITE_CHECK],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["refused", "then", "allowed"]


def test_a_cancelled_job_whose_worker_died_is_ended_cancelled_not_sent_again(conversion, consultant):
    job, _ = jobs.start_job(conversion, JobKind.PULL, enqueue=False)
    assert job.claim(jobs.worker_name())
    jobs.cancel_job(job, user=consultant)
    expire_lease(job)  # the worker died before its next step
    assert schedule.requeue_stale_jobs() == 0
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED and "consultant's request" in job.error


def test_an_htmx_press_refused_by_the_database_reloads_the_page_with_the_message(
    client, conversion, consultant, monkeypatch
):
    from conversion import workflow

    conversion.zis_url, conversion.zone_id = "http://127.0.0.1:9/zones", "ALPHA"
    conversion.save()
    jobs.start_job(conversion, JobKind.TEST_CONNECTION, enqueue=False)
    # As when a parallel press inserted its job between this press's check and its insert.
    monkeypatch.setattr(workflow, "job_problems", lambda conversion, kind, user: [])
    client.force_login(consultant)
    url = reverse("start_job", kwargs={"slug": "alpha", "year": 2027, "kind": JobKind.TEST_CONNECTION})
    response = client.post(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Refresh"] == "true"
    page = client.get(reverse("district_year", kwargs={"slug": "alpha", "year": 2027})).content.decode()
    assert "Connection test cannot start: One is already queued or running." in page
    assert Job.objects.filter(kind=JobKind.TEST_CONNECTION).count() == 1
