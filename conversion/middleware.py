"""Sessions that end when unused, and the one answer to an access refusal (AccessRefusedMiddleware, below).

IdleSessionMiddleware: SESSION_IDLE_SECONDS after the last request, a signed-in user must sign in again.

The time of the last request is kept in the session, rewritten at most once a minute (the job polls of an open
page arrive every 2 s and must not each write the session). An open page's polls count as use.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.handlers.exception import response_for_exception
from django.http import Http404, HttpResponse

from conversion.rules import AccessRefused, NotVisible

LAST_SEEN = "last_seen"
REWRITE_AFTER = 60


class IdleSessionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = int(time.time())
            last = request.session.get(LAST_SEEN)
            if last is not None and now - last > settings.SESSION_IDLE_SECONDS:
                logout(request)
                response: HttpResponse = redirect_to_login(request.get_full_path())
                if request.headers.get("HX-Request"):  # an htmx poll: the whole page goes to the sign-in
                    response = HttpResponse(status=204, headers={"HX-Redirect": response["Location"]})
                return response
            if last is None or now - last >= REWRITE_AFTER:
                request.session[LAST_SEEN] = now
        return self.get_response(request)


class AccessRefusedMiddleware:
    """The one place a refusal of `conversion.rules` becomes an answer: NotVisible is 404 (as if nothing were
    there), any other AccessRefused is 403 with its reasons on the page (templates/403.html). Django's own
    error handlers draw both, so they look like every other 404 and 403."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, NotVisible):
            return response_for_exception(request, Http404(str(exception)))
        if isinstance(exception, AccessRefused):
            return response_for_exception(request, PermissionDenied(str(exception)))
        return None
