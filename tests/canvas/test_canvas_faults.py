"""Throttling, server faults and timeouts: retried with bounded backoff, then surfaced clearly."""

from __future__ import annotations

import logging

import httpx
import pytest

from canvas.client import CanvasClient
from canvas.errors import CanvasRetriesExhaustedError, CanvasServerError
from canvas.simulator import CanvasSimulator, FakeClock


@pytest.mark.parametrize("mode, status", [("429", 429), ("403", 403)])
def test_throttled_run_completes_with_backoff(mode, status, token, roster_zip):
    clock = FakeClock()
    with CanvasSimulator(token=token, clock=clock) as sim:
        sim.seed_sis_import(roster_zip(30))
        sim.set_throttle(enabled=True, model="harsh", mode=mode, capacity=200, drain_per_second=10, request_cost=60)
        waits: list[float] = []

        def sleep(seconds: float) -> None:  # time passes only for the bucket: no real waiting
            waits.append(seconds)
            clock.advance(seconds)

        # Low-water pacing off, so the bucket really overflows and the retry path is exercised.
        with CanvasClient(sim.url, token, per_page=5, sleep=sleep, rate_limit_low_water=0) as api:
            users = list(api.iter_users("self"))
        assert len(users) == 32
        assert sim.throttled_count > 0
        assert api.stats.retries == sim.throttled_count
        assert all(reason == f"rate limited ({status})" for reason in api.stats.retry_reasons)
        assert max(waits) <= 60


def test_low_remaining_budget_slows_the_client_down_before_it_is_refused(token, roster_zip):
    clock = FakeClock()
    with CanvasSimulator(token=token, clock=clock) as sim:
        sim.seed_sis_import(roster_zip(30))
        sim.set_throttle(enabled=True, model="harsh", capacity=300, drain_per_second=10, request_cost=60)
        with CanvasClient(sim.url, token, per_page=5, sleep=clock.advance, rate_limit_low_water=150) as api:
            assert len(list(api.iter_users("self"))) == 32
        assert api.stats.throttle_pauses > 0
        assert sim.throttled_count == 0 and api.stats.retries == 0


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried_then_succeed(sim, api, sleep, status, roster_zip):
    sim.seed_sis_import(roster_zip(4))
    sim.inject_faults(status=status, count=3)
    assert len(list(api.iter_users("self"))) == 6
    assert api.stats.retries == 3
    assert sleep.calls == [1.0, 2.0, 4.0]  # exponential backoff


def test_persistent_server_errors_surface_after_the_retry_budget(sim, sleep, token, caplog):
    sim.inject_faults(status=503, count=10)
    caplog.set_level(logging.DEBUG)
    with CanvasClient(sim.url, token, max_retries=3, sleep=sleep, backoff_cap=3) as api:
        with pytest.raises(CanvasRetriesExhaustedError) as failed:
            api.get_sis_import("self", 1)
    assert failed.value.attempts == 4 and failed.value.last_problem == "HTTP 503"
    assert sleep.calls == [1.0, 2.0, 3.0]  # capped
    assert token not in str(failed.value) and token not in caplog.text


def test_hanging_requests_time_out_and_are_retried(sim, sleep, token, roster_zip):
    sim.seed_sis_import(roster_zip(4))
    sim.inject_faults(hang_seconds=2.0, count=1)
    with CanvasClient(sim.url, token, timeout=0.3, sleep=sleep) as api:
        assert len(list(api.iter_users("self"))) == 6
    assert api.stats.retry_reasons == ["timed out after 0.3s"]


def test_timeouts_that_persist_are_reported_as_such(sim, sleep, token):
    # The simulator's control API sets up the fault, as an out-of-process test would.
    response = httpx.post(
        f"{sim.url}/_sim/faults", json={"hang_seconds": 2.0, "count": 2}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json() == {"pending": 2}
    with CanvasClient(sim.url, token, timeout=0.2, max_retries=1, sleep=sleep) as api:
        with pytest.raises(CanvasRetriesExhaustedError, match="timed out"):
            list(api.iter_courses("self"))


def test_creating_an_import_is_not_repeated_after_a_500(sim, api, roster_zip):
    sim.inject_faults(status=500, count=1)
    with pytest.raises(CanvasServerError, match="not retried"):
        api.create_sis_import("self", roster_zip(2))
    assert api.stats.retries == 0


def test_creating_an_import_is_retried_after_a_503(sim, api, roster_zip):
    sim.inject_faults(status=503, count=1)
    started = api.create_sis_import("self", roster_zip(2))
    assert api.stats.retries == 1
    assert api.wait_for_sis_import("self", started.id, poll_interval=0.5).workflow_state == "imported"
    assert sim.summary()["sis_imports"] == 1
