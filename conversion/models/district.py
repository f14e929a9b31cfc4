"""A school district that runs PowerSchool and provisions Canvas."""

from __future__ import annotations

import zoneinfo
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from conversion.fields import EncryptedTextField
from conversion.peers import PeerURLValidator

# PowerSchool's own cloud serves hosted instances under this domain (the seeds: "If your PowerSchool URL
# ends with ..., then your instance is cloud hosted by PowerSchool").
POWERSCHOOL_CLOUD_DOMAIN = "powerschool.com"


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone (e.g. America/Denver).")


class District(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    powerschool_url = models.URLField("PowerSchool URL", blank=True)
    time_zone = models.CharField(max_length=64, default="America/Denver", validators=[validate_time_zone])
    canvas_url = models.URLField("Canvas URL", blank=True, validators=[PeerURLValidator("Canvas URL")])
    canvas_account_id = models.CharField("Canvas root account id", max_length=64, blank=True, default="1")
    canvas_token = EncryptedTextField("Canvas API token", blank=True, default="")
    # Canvas unbinds each imported login from its sign-in provider when users.csv leaves this empty
    # (canvas-lms lib/sis/user_importer.rb): the id of the district's provider (SAML, LDAP…), empty for Canvas's own.
    canvas_authentication_provider_id = models.CharField(
        "Canvas authentication provider id",
        max_length=64,
        blank=True,
        default="",
        help_text="The sign-in provider Canvas logins are bound to (Admin › Authentication); empty for Canvas's own.",
    )
    # accounts.csv must carry parent_account_id, and Canvas puts an account whose parent is empty straight under the
    # root account (lib/sis/account_importer.rb): the SIS id of the sub-account the schools sit under, if any.
    canvas_parent_account_id = models.CharField(
        "Canvas parent account (SIS id) of the schools",
        max_length=255,
        blank=True,
        default="",
        help_text="Schools' sub-accounts are kept under this account; empty: directly under the root account.",
    )
    # The nightly sync's safety net (conversion/services/sync_policy.py reads these; a consultant sets them from the
    # sync history, audited): the share of the last sync's enrollments that may go in one night before a person must
    # look, for the whole district and, optionally, per school ({school account SIS id: percent}).
    sync_deletion_threshold = models.PositiveSmallIntegerField(
        "Enrollments a sync may remove (%)", default=10, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    sync_school_thresholds = models.JSONField("Per-school thresholds (%)", default=dict, blank=True)
    admins = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        related_name="administered_districts",
        blank=True,
        help_text="District admins: they see this district only and approve what it asks of them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("district", kwargs={"slug": self.slug})

    @property
    def powerschool_hosted(self) -> bool | None:
        """True when PowerSchool's cloud hosts the instance, False when self-hosted, None when unknown."""
        if not self.powerschool_url:
            return None
        host = (urlsplit(self.powerschool_url).hostname or "").lower().rstrip(".")
        return host == POWERSCHOOL_CLOUD_DOMAIN or host.endswith("." + POWERSCHOOL_CLOUD_DOMAIN)

    @property
    def tzinfo(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)
