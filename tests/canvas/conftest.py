"""Fixtures for the Canvas client and simulator tests: no Django, no database, loopback only."""

from __future__ import annotations

import time

import pytest

from canvas.client import CanvasClient
from canvas.csvfiles import (
    AccountRow,
    CourseRow,
    EnrollmentRow,
    SectionRow,
    TermRow,
    UserRow,
    build_zip,
)
from canvas.simulator import CanvasSimulator

TOKEN = "sim-token-3f9c"


class RecordingSleep:
    """Stands in for time.sleep: records each wait, and yields the CPU briefly so the
    simulator's import thread can move on while a test polls."""

    def __init__(self, then=None):
        self.calls: list[float] = []
        self.then = then

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        if self.then is not None:
            self.then(seconds)
        time.sleep(0.005)


@pytest.fixture
def sim():
    with CanvasSimulator(token=TOKEN) as simulator:
        yield simulator


@pytest.fixture
def sleep():
    return RecordingSleep()


@pytest.fixture
def api(sim, sleep):
    with CanvasClient(sim.url, TOKEN, sleep=sleep, timeout=5) as canvas_client:
        yield canvas_client


def roster_zip(n_students: int = 30, *, id_prefix: str = "PS") -> bytes:
    """Two schools, one term, two courses with two sections each, teachers and students."""
    students = [
        UserRow(
            user_id=f"{id_prefix}{i:05d}",
            login_id=f"student{i}@district.example",
            first_name="Ana",
            last_name=f"Student{i}",
            email=f"student{i}@district.example",
        )
        for i in range(n_students)
    ]
    teachers = [
        UserRow(user_id=f"{id_prefix}T{i}", login_id=f"teacher{i}", first_name="Tom", last_name=f"Teacher{i}")
        for i in range(2)
    ]
    enrollments = []
    for i in range(n_students):
        section = f"SEC{i % 4}"
        enrollments.append(EnrollmentRow(section_id=section, user_id=f"{id_prefix}{i:05d}", role="student"))
    for s in range(4):
        enrollments.append(EnrollmentRow(section_id=f"SEC{s}", user_id=f"{id_prefix}T{s // 2}", role="teacher"))
    return build_zip(
        {
            # Deliberately out of processing order and with unconventional names:
            # Canvas detects the kind from the header and orders the work itself.
            "01_enrollments.csv": enrollments,
            "02_people.csv": students + teachers,
            "03_sections.csv": [
                SectionRow(section_id=f"SEC{s}", course_id=f"CRS{s // 2}", name=f"Period {s}") for s in range(4)
            ],
            "04_courses.csv": [
                CourseRow(
                    course_id="CRS0",
                    short_name="ALG1",
                    long_name="Algebra I",
                    account_id="SCH1",
                    term_id="2025-26",
                    status="published",
                ),
                CourseRow(
                    course_id="CRS1", short_name="BIO", long_name="Biology", account_id="SCH2", term_id="2025-26"
                ),
            ],
            "05_terms.csv": [
                TermRow(
                    term_id="2025-26",
                    name="School Year 2025-26",
                    start_date="2025-08-15T06:00:00Z",
                    end_date="2026-06-01T06:00:00Z",
                )
            ],
            "06_accounts.csv": [
                AccountRow(account_id="SCH1", name="North High"),
                AccountRow(account_id="SCH2", name="South High"),
            ],
        }
    )


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture(name="roster_zip")
def roster_zip_fixture():
    return roster_zip


@pytest.fixture(autouse=True)
def _fast_password_hashing():
    """Overrides tests/conftest.py's Django-settings fixture: these tests use no Django at all,
    so they also run with `-p no:django` on a machine without the Django settings' services."""
    yield
