"""Typed errors of the Canvas client. None of them ever holds the API token."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict, Unpack

if TYPE_CHECKING:
    from canvas.models import SisImport


class Where(TypedDict, total=False):
    """Where an error happened: the keyword arguments every CanvasError takes."""

    method: str
    path: str
    status: int | None


class CanvasError(Exception):
    """Base of everything the client raises about Canvas."""

    def __init__(self, message: str, *, method: str = "", path: str = "", status: int | None = None):
        super().__init__(message)
        self.method = method
        self.path = path
        self.status = status


class CanvasAuthenticationError(CanvasError):
    """401: the token is missing, wrong, expired or revoked."""


class CanvasPermissionError(CanvasError):
    """403 that is not rate limiting: the token's user lacks a permission (named in `permission`)."""

    def __init__(self, message: str, *, permission: str, **kwargs: Unpack[Where]):
        super().__init__(message, **kwargs)
        self.permission = permission


class CanvasNotFoundError(CanvasError):
    """404: the account, course, section or import does not exist (or is invisible to the token)."""


class CanvasRequestError(CanvasError):
    """Any other 4xx: Canvas refused the request as sent (bad parameters, unprocessable file)."""


class CanvasResponseTooLargeError(CanvasError):
    """An answer larger than the client's limit: not read further (the request is not retried)."""


class CanvasRetriesExhaustedError(CanvasError):
    """Throttling, 5xx or timeouts went on past the retry budget."""

    def __init__(self, message: str, *, attempts: int, last_problem: str, **kwargs: Unpack[Where]):
        super().__init__(message, **kwargs)
        self.attempts = attempts
        self.last_problem = last_problem


class SisImportTimeoutError(CanvasError):
    """wait_for_sis_import gave up before the import reached a terminal state."""

    def __init__(self, message: str, *, sis_import: SisImport, **kwargs: Unpack[Where]):
        super().__init__(message, **kwargs)
        self.sis_import = sis_import


class CanvasServerError(CanvasError):
    """A 5xx or timeout on a request that is not safe to repeat (creating an SIS import).

    Retrying could start the same import twice, so the caller must look at the import list
    before trying again.
    """
