"""The request as this project's middleware leaves it, for the views' annotations."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class Request(HttpRequest):
    """`request.htmx` from django-htmx's HtmxMiddleware (the typing its documentation suggests), and a signed-in
    `request.user`: LoginRequiredMiddleware sends anyone else to the sign-in before a view runs (the views that
    are `login_not_required` take a plain HttpRequest)."""

    htmx: HtmxDetails
    user: User
