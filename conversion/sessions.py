"""Sessions in the database, read through this process's memory for at most SESSION_LOCAL_SECONDS.

The session engine when no shared cache (Redis) is configured. Django's cached_db engine over per-process
memory would keep a session that was deleted at sign-out in one gunicorn worker valid in the others' memory
for as long as the session lives (two weeks); the plain database engine costs a query on every request. Here
a process keeps what it read or wrote for a couple of seconds only: a sign-out (or a password change, which
rewrites the session's hash) takes effect at once in the worker that handled it and within
SESSION_LOCAL_SECONDS in the others, like the user lookup beside it (conversion/authcache.py).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore
from django.core.cache import caches


class _ShortLived:
    """The `local` cache with every entry's lifetime capped at SESSION_LOCAL_SECONDS."""

    def __init__(self, cache, seconds: int):
        self._cache, self._seconds = cache, seconds

    def _timeout(self, timeout):
        return self._seconds if timeout is None else min(timeout, self._seconds)

    def get(self, key, default=None):
        return self._cache.get(key, default)

    def set(self, key, value, timeout=None):
        self._cache.set(key, value, self._timeout(timeout))

    def delete(self, key):
        return self._cache.delete(key)

    def __contains__(self, key):
        return key in self._cache

    async def aget(self, key, default=None):
        return self.get(key, default)

    async def aset(self, key, value, timeout=None):
        self.set(key, value, timeout)

    async def adelete(self, key):
        return self.delete(key)


class SessionStore(CachedDBStore):
    cache_key_prefix = "conversion.sessions"

    def __init__(self, session_key=None):
        super().__init__(session_key)
        self._cache = _ShortLived(caches["local"], settings.SESSION_LOCAL_SECONDS)
