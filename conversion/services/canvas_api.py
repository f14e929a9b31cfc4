"""The Django side of the Canvas client: a client for a district, and Canvas errors as job failures."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.conf import settings

from canvas.client import CanvasClient
from canvas.errors import (
    CanvasAuthenticationError,
    CanvasError,
    CanvasNotFoundError,
    CanvasPermissionError,
    CanvasRetriesExhaustedError,
)
from conversion import peers
from conversion.jobs import JobFailed
from conversion.models import District


@contextlib.contextmanager
def canvas_for(district: District, **options) -> Iterator[CanvasClient]:
    """A Canvas client for the district; Canvas errors come out as JobFailed with advice."""
    if not district.canvas_url or not district.canvas_token:
        raise JobFailed("The district's Canvas URL or API token is not set.")
    try:
        peers.check_url(
            district.canvas_url, what="Canvas URL", unknown_host_ok=True
        )  # again now: a name may point elsewhere since
    except peers.PeerRefused as exc:
        raise JobFailed(f"{exc} Correct the district's Canvas URL.") from None
    client = CanvasClient(
        district.canvas_url, district.canvas_token, **{**getattr(settings, "CANVAS_CLIENT_OPTIONS", {}), **options}
    )
    try:
        yield client
    except CanvasAuthenticationError as exc:
        raise JobFailed(f"Canvas refused the API token (401): replace the district's token. {exc}") from exc
    except CanvasPermissionError as exc:
        raise JobFailed(f"The Canvas token lacks a permission this step needs: {exc}") from exc
    except CanvasNotFoundError as exc:
        raise JobFailed(f"Canvas has no such object (check the root account id): {exc}") from exc
    except CanvasRetriesExhaustedError as exc:
        raise JobFailed(f"Canvas kept failing or throttling after every retry: {exc}") from exc
    except CanvasError as exc:
        raise JobFailed(f"Canvas error: {exc}") from exc
    finally:
        client.close()
