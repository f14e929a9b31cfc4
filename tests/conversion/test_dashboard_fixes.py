"""What new users tripped on (issue 17): each test here failed on the code as it was."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from conversion import jobs
from conversion.models import ConversionState, Job, JobKind, JobState, SyncRun

ROOT = Path(__file__).resolve().parents[2]


def test_no_template_has_a_multi_line_hash_comment():
    # Django's {# #} comment ends at the line's end: across lines it is printed as text.
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "templates").rglob("*.html")
        if any("{#" in line and "#}" not in line for line in p.read_text().splitlines())
    ]
    assert offenders == []


def test_the_portfolio_and_a_job_print_no_template_syntax(client, consultant, conversion):
    job = Job.objects.create(conversion=conversion, kind=JobKind.PULL, state=JobState.RUNNING)
    client.force_login(consultant)
    for url in (
        reverse("portfolio"),
        reverse("district_year", args=("alpha", 2027)),
        reverse("job", kwargs={"slug": "alpha", "year": 2027, "job_id": job.pk}),
    ):
        html = client.get(url).content.decode()
        assert not re.search(r"\{#|#\}|\{%|%\}|\{\{|\}\}", html), url


SQLITE_POLL = r"""
import datetime as dt, django, os
django.setup()
from django.core.management import call_command
from django.contrib.auth import get_user_model
from django.template.loader import render_to_string
from conversion.models import Conversion, District, Job, JobKind, JobState
from conversion.views.access import get_job_for_user
call_command("migrate", verbosity=0)
user = get_user_model().objects.create_user("ic", password="x", is_staff=True)
district = District.objects.create(name="Alpha", slug="alpha")
conversion = Conversion.objects.create(district=district, school_year=2027)
started = dt.datetime(2026, 11, 28, 15, 0, 0, tzinfo=dt.timezone.utc)
job = Job.objects.create(conversion=conversion, kind=JobKind.PULL, state=JobState.RUNNING, requested_by=user,
                         started_at=started)
polled = get_job_for_user(user, "alpha", 2027, job.pk)
print(polled.started_at.isoformat())
print(render_to_string("district/_job.html", {"job": polled, "conversion": polled.conversion}))
"""


def test_on_sqlite_a_polled_job_keeps_its_start_time_zone(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "SIFCONVERT_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "conversion.settings",
        "CELERY_BROKER_URL": "memory://",
    }
    out = subprocess.run(
        [sys.executable, "-c", SQLITE_POLL], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    first, html = out.stdout.split("\n", 1)
    assert dt.datetime.fromisoformat(first) == dt.datetime(2026, 11, 28, 15, tzinfo=dt.UTC)
    # 15:00 UTC is 08:00 in Denver (MST): the label and the browser's clock both read the right moment.
    assert 'data-started="2026-11-28T08:00:00-07:00"' in html
    assert "started 08:00:00 MST" in html


def test_a_failed_jobs_message_ends_at_a_sentence():
    long = ("The ZIS refused the request because the zone DEMO is not ready. " * 6).strip()
    assert len(long) > 300
    message = jobs.summary(long)
    assert len(message) <= 300 and message.endswith("not ready.")
    wrapped = "The ZIS at http://zis.example/zones answered 503:\nthe zone is being rebuilt.\n\nTraceback (most ..."
    assert jobs.summary(wrapped) == "The ZIS at http://zis.example/zones answered 503: the zone is being rebuilt."
    words = "x" * 20 + " word" * 100
    cut = jobs.summary(words)
    assert len(cut) <= 300 and cut.endswith(" word…")


def test_a_failed_job_row_keeps_whole_sentences(conversion):
    job, _ = jobs.start_job(conversion, JobKind.TEST_CONNECTION, enqueue=False)

    def fails(job, progress):
        raise jobs.JobFailed(("Could not reach the ZIS at http://127.0.0.1:9/zones/NOPE. " * 8).strip())

    jobs.run_job(job.pk, fails)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and job.message.endswith("/NOPE.") and len(job.message) <= 300


@pytest.fixture
def live(conversion):
    conversion.state = ConversionState.LIVE
    conversion.save()
    return conversion


def test_holding_and_resuming_the_nightly_sync_is_confirmed(client, consultant, live):
    client.force_login(consultant)
    url = reverse("hold_sync", args=("alpha", 2027))
    held = client.post(url, {"held": "1", "reason": "district asked"}, follow=True).content.decode()
    assert "The nightly roster sync is held" in held
    resumed = client.post(url, {"held": "0", "reason": "go on"}, follow=True).content.decode()
    assert "The nightly roster sync is resumed" in resumed


def test_a_skipped_sync_shows_nothing_sent_and_numbers_have_separators(client, consultant, live):
    SyncRun.objects.create(
        conversion=live,
        trigger="manual",
        state="imported",
        counts={"users": 12345, "enrollments": 67890},
        warning_count=1200,
    )
    SyncRun.objects.create(
        conversion=live,
        trigger="nightly",
        business_date=dt.date(2026, 11, 2),
        state="skipped",
        counts={"users": 4444, "enrollments": 5555},
    )
    client.force_login(consultant)
    html = client.get(reverse("district_section", args=("alpha", 2027, "syncs"))).content.decode()
    assert "12,345" in html and "67,890" in html and "1,200" in html
    assert "4444" not in html and "4,444" not in html and "5,555" not in html
    assert "nothing sent: no new data" in html
    assert 'class="scroll"' in html  # the table scrolls inside its card instead of spilling out


def test_an_unknown_grade_passback_course_is_404(client, consultant, conversion):
    client.force_login(consultant)
    assert client.get(reverse("gpb_course", args=("alpha", 2027, 999))).status_code == 404


def test_favicon_is_served(client):
    response = client.get("/favicon.ico", follow=True)
    assert response.status_code == 200 and b"<svg" in b"".join(response.streaming_content)


def test_gunicorns_control_socket_is_in_the_var_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SIFCONVERT_VAR_DIR", str(tmp_path))
    spec = importlib.util.spec_from_file_location("gconf", ROOT / "conversion" / "gunicorn_conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.control_socket == str(tmp_path / "gunicorn.ctl")


def test_the_readme_runs_gunicorn_on_loopback():
    readme = (ROOT / "README.md").read_text()
    lines = [line for line in readme.splitlines() if "gunicorn conversion.wsgi" in line]
    assert lines and all("--bind 127.0.0.1:" in line for line in lines)
