"""A district's conversion for one school year, and the data each of its seven steps collects.

The allowed moves between states, their guards and their audit live in `conversion.workflow`; this
module only holds the data.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

from conversion.fields import EncryptedTextField
from conversion.peers import PeerURLValidator

# Reasons and notes people type (approvals, returns, holds, releases): long enough for a paragraph, no longer.
NOTE_MAX_LENGTH = 2000

# The Zone ID is the last path segment of the zone's URL: letters, digits, '-', '_' and '.', never '..'.
validate_zone_id = RegexValidator(
    r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]*\Z",
    "A Zone ID starts with a letter or digit and holds letters, digits, '-', '_' and '.' only (never '..').",
)


def note_problem(text: str) -> str:
    """Why a reason or note a person typed cannot be kept ("" when it can)."""
    if len(text) > NOTE_MAX_LENGTH:
        return f"Keep the reason or note to {NOTE_MAX_LENGTH:,} characters (this one has {len(text):,})."
    return ""


def check_step_date(value: dt.date | None, school_year: int) -> str:
    """Why a pause or go-live date is out of range ("" when it is fine): within two years of its school year."""
    if value is None:
        return ""
    first, last = dt.date(school_year - 2, 1, 1), dt.date(school_year + 2, 12, 31)
    if not first <= value <= last:
        return f"Choose a date between {first:%B %-d, %Y} and {last:%B %-d, %Y}."
    return ""


class ConversionState(models.TextChoices):
    AGENT_SETUP = "agent_setup", "ZIS information and SIF agent set-up"
    CONNECTION = "connection", "Connection set-up and testing"
    PAUSE = "pause", "Pause of the current Canvas sync"
    MAPPING = "mapping", "Mapping"
    REMAPPING = "remapping", "Remapping"
    GO_LIVE = "go_live", "Go-live on the appointed date"
    LIVE = "live", "Live: nightly sync"


# The order of the main track: steps 1 to 6, then live. Step 7 (grade passback) is a side track.
STATE_ORDER: tuple[str, ...] = tuple(ConversionState.values)


class Hosting(models.TextChoices):
    UNKNOWN = "", "Not known yet"
    SELF = "self", "Self-hosted (district, region or state)"
    POWERSCHOOL = "powerschool", "PowerSchool-hosted"


class SifVersion(models.TextChoices):
    # The SIF 2.x versions our agent speaks (sifclient.messages.SIF_VERSIONS).
    V2_0R1 = "2.0r1", "SIF 2.0r1"
    V2_1 = "2.1", "SIF 2.1"
    V2_2 = "2.2", "SIF 2.2"
    V2_3 = "2.3", "SIF 2.3"
    V2_4 = "2.4", "SIF 2.4"
    V2_5 = "2.5", "SIF 2.5"


class Gradebook(models.TextChoices):
    NONE = "", "Not chosen"
    LEGACY = "legacy", "PowerSchool legacy gradebook"
    PTP = "ptp", "PowerTeacher Pro"


class GpbState(models.TextChoices):
    NOT_REQUESTED = "not_requested", "Not requested"
    PLUGIN_PENDING = "plugin_pending", "Waiting for the plug-in to be installed"
    PLUGIN_INSTALLED = "plugin_installed", "Plug-in installed, ready to enable"
    ENABLED = "enabled", "Enabled"


# The agent settings the district (or PowerSchool support) must check, in the seeds' words.
AGENT_CHECKLIST: tuple[tuple[str, str, str], ...] = (
    (
        "agent_mode_pull",
        "Messaging mode is Pull",
        "SIF Agent Console / Agent Settings / Registration / Messaging Mode. Push makes the connection fail.",
    ),
    (
        "agent_method_http",
        "Protocol method is HTTP",
        "SIF Agent Console / Agent Settings / Protocol. HTTP still reaches an https:// ZIS URL over HTTPS; "
        "HTTPS needs the platform's certificate in Java's trusted certificates.",
    ),
    (
        "agent_school_year_checked",
        "Default school year is the right one",
        "SIF Agent Console / Agent Settings / Default Zone Settings / School Year.",
    ),
    (
        "agent_smp_disabled",
        "State Messaging Plug-ins are off for the Canvas connection",
        "SIF Agent Console / Agent Settings / Plugins. If SMP serves state reporting, disable it for the Canvas "
        "connection only.",
    ),
    ("agent_zone_ready", 'Zone status shows "ready"', "SIF Agent Console / Zone Settings / Zone / General."),
    (
        "agent_schools_selected",
        "Only the schools to sync are selected",
        "SIF Agent Console / Zone Settings / Zone / District: deselect every school Canvas should not get.",
    ),
)


class Conversion(models.Model):
    district = models.ForeignKey("conversion.District", on_delete=models.CASCADE, related_name="conversions")
    school_year = models.PositiveSmallIntegerField(
        help_text="The calendar year in which the school year ends (SIF's SchoolYear): 2027 for 2026–27."
    )
    state = models.CharField(max_length=20, choices=ConversionState.choices, default=ConversionState.AGENT_SETUP)
    state_changed_at = models.DateTimeField(auto_now_add=True)

    # Step 1: ZIS information and SIF agent set-up.
    zis_url = models.URLField("ZIS URL", blank=True, validators=[PeerURLValidator("ZIS URL")])
    zone_id = models.CharField("Zone ID", max_length=100, blank=True, validators=[validate_zone_id])
    zis_username = models.CharField("ZIS user name", max_length=100, blank=True)
    zis_password = EncryptedTextField("ZIS password", blank=True, default="")
    zis_ca_bundle = models.TextField(
        "ZIS CA certificate (PEM)",
        blank=True,
        help_text="Only when the ZIS presents a certificate the standard trust store does not know.",
    )
    agent_source_id = models.CharField("Our agent's SIF_SourceId", max_length=64, blank=True)
    sif_version = models.CharField(
        "Zone's SIF version",
        max_length=5,
        choices=SifVersion.choices,
        default=SifVersion.V2_4,
        help_text="A zone speaks one SIF version and refuses messages in any other; our agent speaks this one. "
        "The connection test corrects it when the ZIS names another.",
    )
    hosting = models.CharField(max_length=20, choices=Hosting.choices, blank=True, default=Hosting.UNKNOWN)
    agent_mode_pull = models.BooleanField(default=False)
    agent_method_http = models.BooleanField(default=False)
    agent_school_year_checked = models.BooleanField(default=False)
    agent_smp_disabled = models.BooleanField(default=False)
    agent_zone_ready = models.BooleanField(default=False)
    agent_schools_selected = models.BooleanField(default=False)
    expected_school_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="PowerSchool school numbers the district wants in Canvas; any other school in a pull is flagged.",
    )

    # Step 3: pause of the legacy Canvas sync.
    pause_date = models.DateField(null=True, blank=True, help_text="Blank means May 31 of the school year.")
    legacy_sync_paused_at = models.DateTimeField(null=True, blank=True)

    # Step 6: go-live and nightly sync.
    go_live_date = models.DateField(null=True, blank=True)
    live_since = models.DateTimeField(null=True, blank=True)
    nightly_sync_paused = models.BooleanField(
        default=False, help_text="Roster sync held (e.g. over the summer); grade passback keeps running."
    )

    # Step 7: grade passback (optional).
    gpb_state = models.CharField(max_length=20, choices=GpbState.choices, default=GpbState.NOT_REQUESTED)
    gradebook = models.CharField(max_length=10, choices=Gradebook.choices, blank=True, default=Gradebook.NONE)
    gpb_last_run_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["district__name", "-school_year"]
        constraints = [
            models.UniqueConstraint(fields=["district", "school_year"], name="one_conversion_per_district_year"),
        ]

    def __str__(self) -> str:
        return f"{self.district} {self.school_year_label}"

    @property
    def school_year_label(self) -> str:
        return f"{self.school_year - 1}–{str(self.school_year)[-2:]}"

    @property
    def default_pause_date(self) -> dt.date:
        return dt.date(self.school_year, 5, 31)

    @property
    def effective_pause_date(self) -> dt.date:
        return self.pause_date or self.default_pause_date

    @property
    def step_number(self) -> int:
        return min(STATE_ORDER.index(self.state) + 1, 6)

    def is_past(self, state: str) -> bool:
        """True when the main track has moved beyond `state`."""
        return STATE_ORDER.index(self.state) > STATE_ORDER.index(state)

    @property
    def agent_checklist(self) -> list[dict]:
        return [
            {"field": f, "label": label, "where": where, "done": getattr(self, f)}
            for f, label, where in AGENT_CHECKLIST
        ]

    @property
    def agent_checklist_complete(self) -> bool:
        return all(getattr(self, f) for f, _, _ in AGENT_CHECKLIST)


class ApprovalKind(models.TextChoices):
    AGENT_READY = "agent_ready", "SIF agent set up"
    PULL_VERIFIED = "pull_verified", "Pulled data verified"
    MAPPING = "mapping", "Mapping approved"
    PLUGIN_INSTALLED = "plugin_installed", "Grade passback plug-in installed"
    SYNC_RELEASE = "sync_release", "Held sync released"


class Approval(models.Model):
    """A district admin's sign-off, tied to the exact data it approved (new data needs a new approval)."""

    conversion = models.ForeignKey(Conversion, on_delete=models.CASCADE, related_name="approvals")
    kind = models.CharField(max_length=20, choices=ApprovalKind.choices)
    subject = models.CharField(max_length=100, blank=True, help_text="What was approved, e.g. snapshot:12 or diff:7.")
    fingerprint = models.CharField(max_length=64, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    approved_at = models.DateTimeField(auto_now_add=True)
    note = models.CharField(max_length=NOTE_MAX_LENGTH, blank=True)

    class Meta:
        ordering = ["-approved_at"]
        get_latest_by = "approved_at"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.conversion} by {self.approved_by} ({self.subject or '—'})"
