"""The simulator's account reads (GET accounts/:id, GET accounts/:id/permissions) through CanvasClient."""

from __future__ import annotations

import pytest

from canvas.client import CanvasClient
from canvas.errors import CanvasAuthenticationError, CanvasNotFoundError
from canvas.simulator import CanvasSimulator

NEEDED = ["import_sis", "manage_sis", "read_roster", "read_course_list"]


@pytest.fixture
def canvas():
    with CanvasSimulator(
        token="full", root_account_name="Lakeview USD", tokens={"narrow": {"read_roster", "read_course_list"}}
    ) as sim:
        yield sim


def test_account_name_and_every_permission_for_an_admin_token(canvas):
    with CanvasClient(canvas.url, "full", max_retries=0) as client:
        account = client.get_account("self")
        assert account["name"] == "Lakeview USD"
        assert account["id"] == canvas.root_account_id and account["root_account_id"] is None
        assert client.get_account(canvas.root_account_id)["name"] == "Lakeview USD"
        assert client.account_permissions(canvas.root_account_id, NEEDED) == dict.fromkeys(NEEDED, True)


def test_a_narrow_token_answers_false_for_what_it_lacks(canvas):
    with CanvasClient(canvas.url, "narrow", max_retries=0) as client:
        held = client.account_permissions("self", NEEDED)
    assert held == {"import_sis": False, "manage_sis": False, "read_roster": True, "read_course_list": True}


def test_unknown_account_and_bad_token(canvas):
    with CanvasClient(canvas.url, "full", max_retries=0) as client, pytest.raises(CanvasNotFoundError):
        client.get_account(999_999)
    with CanvasClient(canvas.url, "wrong", max_retries=0) as client, pytest.raises(CanvasAuthenticationError):
        client.account_permissions("self", NEEDED)
