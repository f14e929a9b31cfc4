"""The signed-in user, read from a process-local cache for a couple of seconds.

AuthenticationMiddleware looks the session's user up on every request, and the dashboard's pages and job
polls are requested often, so that lookup was one database query per request. Here the user is kept for
AUTH_USER_CACHE_SECONDS in the `local` cache, which is always this process's memory (LocMem) and never
the shared Redis: a User carries its password hash, which must not be copied anywhere else.

Saving or deleting a user (a password change, deactivation, losing staff status, an admin edit) drops
their entry at once in the process that did it; any other process notices within AUTH_USER_CACHE_SECONDS.
Django's own checks still run on the cached user for every request: `is_active` here, and the session's
password hash in django.contrib.auth.get_user. LocMem pickles on the way in and out, so each request gets
its own User object.

A password change writes a new hash into the user's own session at once; another process may still hold the
user with the old hash, and Django would then end that fresh session as if the password had been changed
elsewhere. So a cached user is only used for a session that carries that user's current hash (the session's
hash is handed over by AuthenticationMiddleware below); otherwise the user is read from the database again.
"""

from __future__ import annotations

import contextvars

from django.conf import settings
from django.contrib import auth
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.middleware import AuthenticationMiddleware as DjangoAuthenticationMiddleware
from django.core.cache import caches
from django.db.models.signals import post_delete, post_save
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject

CACHE_ALIAS = "local"

# The password hash the current request's session carries (None outside AuthenticationMiddleware's lookup).
_session_hash: contextvars.ContextVar[str | None] = contextvars.ContextVar("session_hash", default=None)


def _key(user_id) -> str:
    return f"authcache-user:{user_id}"


class CachedModelBackend(ModelBackend):
    """Django's ModelBackend (same sign-in, same permissions) with `get_user` read through the cache."""

    def get_user(self, user_id):
        seconds = settings.AUTH_USER_CACHE_SECONDS
        if seconds <= 0:
            return super().get_user(user_id)
        cache = caches[CACHE_ALIAS]
        user = cache.get(_key(user_id))
        expected = _session_hash.get()
        if user is not None and expected and not constant_time_compare(user.get_session_auth_hash(), expected):
            user = None  # cached before a password change this session already knows of: read it again
        if user is None:
            user = super().get_user(user_id)  # None when there is no such user or it may not sign in
            if user is not None:
                cache.set(_key(user_id), user, seconds)
            return user
        return user if self.user_can_authenticate(user) else None


def forget_user(sender, instance, **kwargs) -> None:
    caches[CACHE_ALIAS].delete(_key(instance.pk))


post_save.connect(forget_user, sender=settings.AUTH_USER_MODEL, dispatch_uid="authcache-forget-saved")
post_delete.connect(forget_user, sender=settings.AUTH_USER_MODEL, dispatch_uid="authcache-forget-deleted")


def _get_user(request):
    token = _session_hash.set(request.session.get(auth.HASH_SESSION_KEY))
    try:
        return auth.get_user(request)
    finally:
        _session_hash.reset(token)


class AuthenticationMiddleware(DjangoAuthenticationMiddleware):
    """Django's, with the session's password hash handed to CachedModelBackend.get_user."""

    def process_request(self, request):
        super().process_request(request)
        request.user = SimpleLazyObject(lambda: _get_user(request))
