"""Settings for the test suite: the real PostgreSQL and Redis on 127.0.0.1, never the embedded SQLite.

pytest-django loads settings before any conftest runs, so the defaults are set here, where they are
read in time. scripts/test sets the same variables explicitly; these are for a bare `pytest`.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/sifconvert")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
# This run's own queues on the shared Redis, so parallel runs never take each other's jobs.
os.environ.setdefault("CELERY_KEY_PREFIX", f"test-{os.getpid()}:")
# Under pytest-xdist each worker is a process of its own, but it inherits the controller's environment, and
# with it the controller's prefix: each worker adds its id (gw0, gw1, ...), so workers never take or purge each
# other's messages. A process that a test starts inherits its worker's prefix, id included, and keeps it.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _xdist_worker and not os.environ["CELERY_KEY_PREFIX"].endswith(f":{_xdist_worker}:"):
    os.environ["CELERY_KEY_PREFIX"] += f"{_xdist_worker}:"
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# Tests change data and look again at once; the portfolio's short render cache is tested on its own.
os.environ.setdefault("PORTFOLIO_CACHE_SECONDS", "0")  # Playwright's sync API runs an event loop.
# DATABASE_URL is set and DEBUG off, as in production: the keys must be given (fixed, for tests only; child
# processes the tests start inherit them). The simulators listen on loopback, which tests allow explicitly.
os.environ.setdefault("DJANGO_SECRET_KEY", "tests-only-secret-key-not-for-any-deployment-6f1c2a9e7b3d4c5a")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "dGVzdHMtb25seS1maWVsZC1rZXktbm90LWZvci11c2U=")
os.environ.setdefault("PEER_ALLOWED_NETWORKS", "loopback")

from conversion.settings import *  # noqa: E402,F401,F403
