"""Browser tests: Debian's chromium driven by Playwright, against a live server, a real Celery worker
(Redis broker) and the ZIS and Canvas simulators."""

from __future__ import annotations

import os
import shutil

import pytest
from celery.contrib.testing.worker import start_worker
from playwright.sync_api import sync_playwright

from conversion.celery import app as celery_app
from tests.conversion.conftest import (  # noqa: F401 (the personas, shared as fixtures)
    consultant,
    conversion,
    district,
    district_admin,
    other_admin,
    other_district,
)

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("PLAYWRIGHT_CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail("Debian's chromium is not installed; scripts/test installs it (apt-get install chromium).")
    return path


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    artifacts = os.environ.get("SIFCONVERT_VAR_DIR")
    if artifacts:
        os.makedirs(os.path.join(artifacts, "screenshots"), exist_ok=True)
    context.close()


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker thread consuming from the Redis broker on 127.0.0.1."""
    celery_app.conf.task_always_eager = False
    celery_app.control.purge()  # messages left by earlier runs name jobs this database never had
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        queues=["default", "sif", "canvas"],
        shutdown_timeout=30,
    ):
        yield


def sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
