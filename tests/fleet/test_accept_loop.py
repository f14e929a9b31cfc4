"""The fleet's Canvases answer through one shared accept loop (conversion/bench/fleet_peers.AcceptLoop)."""

from __future__ import annotations

import threading

import httpx
import pytest

from conversion.bench.fleet_peers import CANVAS_TOKEN, AcceptLoop, Peers
from sifclient.powerschool import DistrictSpec


def _root_account(url: str, account_id: int) -> httpx.Response:
    return httpx.get(
        f"{url}/api/v1/accounts/{account_id}", headers={"Authorization": f"Bearer {CANVAS_TOKEN}"}, timeout=10
    )


def test_every_canvas_answers_on_its_own_port_with_no_thread_of_its_own():
    with Peers() as peers:
        zis = peers.add_zis()
        before = threading.active_count()
        districts = [peers.add_district(f"l{i}", DistrictSpec(students=5, schools=1, seed=i), zis) for i in range(6)]
        # Each simulator's import runner has a thread; nothing else is started per Canvas (one loop for all).
        assert threading.active_count() - before <= len(districts) + 1
        assert len({d.canvas.url for d in districts}) == len(districts)
        for district in districts:
            answer = _root_account(district.canvas.url, district.canvas.root_account_id)
            assert answer.status_code == 200
            assert answer.json()["id"] == district.canvas.root_account_id
        # Several requests at once on one Canvas: each connection has its own request thread.
        results: list[int] = []
        target = districts[0].canvas
        threads = [
            threading.Thread(
                target=lambda: results.append(_root_account(target.url, target.root_account_id).status_code)
            )
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert results == [200] * 8
        stopped = districts[1]
        url = stopped.canvas.url
        stopped.canvas.stop()
        with pytest.raises(httpx.ConnectError):
            _root_account(url, stopped.canvas.root_account_id)
        assert _root_account(districts[2].canvas.url, districts[2].canvas.root_account_id).status_code == 200


def test_a_closed_loop_ends_its_thread():
    loop = AcceptLoop()
    loop.close()
    assert not loop._thread.is_alive()
