"""The one big test: a district-sized roster (200k users) streams out, imports, and reads back."""

from __future__ import annotations

from canvas.client import CanvasClient
from canvas.csvfiles import ChangeSisIdRow, UserRow, build_zip

N_USERS = 200_000


def test_two_hundred_thousand_users_import_and_remap(sim, sleep, token):
    users = (UserRow(user_id=f"PS{i}", login_id=f"u{i}", first_name="F", last_name=f"L{i}") for i in range(N_USERS))
    archive = build_zip({"users.csv": users})  # streamed from a generator into the zip entry
    with CanvasClient(sim.url, token, sleep=sleep) as api:
        started = api.create_sis_import("self", archive)
        done = api.wait_for_sis_import("self", started.id, poll_interval=0.5, timeout=600)
        assert done.workflow_state == "imported" and done.counts["users"] == N_USERS

        remap = (ChangeSisIdRow(old_id=f"PS{i}", new_id=f"DCID{i}", type="user") for i in range(N_USERS))
        done = api.wait_for_sis_import(
            "self",
            api.create_sis_import("self", build_zip({"change.csv": remap})).id,
            poll_interval=0.5,
            timeout=600,
        )
        assert done.workflow_state == "imported" and done.counts["change_sis_ids"] == N_USERS
        first_user = next(api.iter_users("self"))  # only the first page is fetched
        assert first_user.sis_user_id == "DCID0"
    assert sim.summary()["users"] == N_USERS
    assert sim.state.by_sis("user", f"DCID{N_USERS - 1}").login_id == f"u{N_USERS - 1}"
    assert sim.state.by_sis("user", "PS0") is None
