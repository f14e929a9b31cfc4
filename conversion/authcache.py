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
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import caches
from django.db.models.signals import post_delete, post_save

CACHE_ALIAS = "local"


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
