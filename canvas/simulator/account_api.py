"""Two account reads the product makes when a consultant saves a district's Canvas token: the account
itself (its name) and what the token's user may do there.

Kept apart from server.py (hooked in by one line at its end) so the account surface stays small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from canvas.simulator.server import Answer, ApiError, Request, Route, _get, _r

if TYPE_CHECKING:
    from canvas.simulator import CanvasSimulator


def show_account(sim: CanvasSimulator, request: Request) -> Answer:
    # canvas-lms app/controllers/accounts_controller.rb#show: any user with :read on the account gets its
    # JSON (id, name, parent and root account ids, workflow_state); `self` names the domain's root account.
    account = _get(sim, "account", request.captures[0])
    root = sim.state.root_account
    body: dict[str, Any] = {
        "id": account.id,
        "name": account.name,
        "workflow_state": account.workflow_state,
        "parent_account_id": account.parent_account_id,
        "root_account_id": None if account.id == root.id else root.id,
        "sis_account_id": account.sis_id,
        "integration_id": account.integration_id,
    }
    return 200, body, {}


def account_permissions(sim: CanvasSimulator, request: Request) -> Answer:
    # canvas-lms app/controllers/accounts_controller.rb#permissions: needs :read on the account, takes a
    # `permissions[]` list and answers one JSON object mapping each asked name to true or false
    # (Account#rights_status for the calling user); names not asked for are not listed.
    _get(sim, "account", request.captures[0])
    granted = sim.tokens.get(request.token) if request.token is not None else None
    names = request.many("permissions")
    if not names:
        return 200, {}, {}
    if granted is not None and not granted:
        # A token whose user holds no role in the account has no :read on it either.
        raise ApiError(
            401,
            "user not authorized to perform that action",
            body={"status": "unauthorized", "errors": [{"message": "user not authorized to perform that action"}]},
        )
    return 200, {name: granted is None or name in granted for name in names}, {}


_ACCT = r"/api/v1/accounts/([^/]+)"
ROUTES: list[Route] = [
    _r("GET", _ACCT, None, show_account),
    _r("GET", _ACCT + r"/permissions", None, account_permissions),
]
