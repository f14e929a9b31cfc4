"""Adding a district and its conversion from the dashboard, and its Canvas connection, checked live.

Every change is audited; secrets (the Canvas token, the ZIS password) go into the trail only as "changed".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import models, transaction
from django.utils.text import slugify

from canvas.client import CanvasClient
from canvas.errors import (
    CanvasAuthenticationError,
    CanvasError,
    CanvasNotFoundError,
    CanvasPermissionError,
)
from conversion import audit, peers
from conversion.models import AuditEvent, Conversion, District, Hosting
from conversion.rules import require_consultant

# What the conversion asks of the token's user, in Canvas's permission names, with what each is for.
REQUIRED_CANVAS_PERMISSIONS: dict[str, str] = {
    "import_sis": "SIS Data - import (run the SIS imports)",
    "manage_sis": "SIS Data - manage (see and change SIS ids)",
    "read_roster": "Users - view list (read users)",
    "read_course_list": "Courses - view list (read courses)",
}
CANVAS_CHECK_ACTION = "canvas_check"


def hosting_for(powerschool_url: str) -> str:
    """PowerSchool-hosted or self-hosted, told from the PowerSchool URL (unknown when there is none)."""
    hosted = District(powerschool_url=powerschool_url).powerschool_hosted
    if hosted is None:
        return Hosting.UNKNOWN
    return Hosting.POWERSCHOOL if hosted else Hosting.SELF


def unique_slug(name: str) -> str:
    base = (slugify(name) or "district")[:70]
    slug, n = base, 1
    while District.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _require_consultant(user) -> None:
    require_consultant(user)  # rules.AccessRefused


@transaction.atomic
def create_district(*, user, name: str, powerschool_url: str, time_zone: str, school_year: int) -> Conversion:
    """A new district and its conversion for `school_year`, hosting told from the PowerSchool URL."""
    _require_consultant(user)
    district = District.objects.create(
        name=name,
        slug=unique_slug(name),
        powerschool_url=powerschool_url,
        time_zone=time_zone,
    )
    conversion = Conversion.objects.create(
        district=district,
        school_year=school_year,
        hosting=hosting_for(powerschool_url),
    )
    audit.record(
        district=district,
        conversion=conversion,
        user=user,
        action="district_created",
        summary=f"Added the district {name} and its {conversion.school_year_label} conversion",
        detail={"powerschool_url": powerschool_url, "time_zone": time_zone, "hosting": conversion.hosting},
    )
    return conversion


def _field_label(name: str) -> str:
    """The district field's label, for the audit summary (a relation, which has none, by its name)."""
    found = District._meta.get_field(name)
    return str(found.verbose_name) if isinstance(found, models.Field) else name


def _save_changes(district: District, before: District, values: dict) -> list[str]:
    """Set and save the fields whose value differs from `before` (the row as locked); returns their names."""
    changed = [name for name, value in values.items() if getattr(before, name) != value]
    for name in changed:
        setattr(district, name, values[name])
    if changed:
        district.save(update_fields=changed)
    return changed


@transaction.atomic
def update_district(district: District, *, user, **values) -> list[str]:
    """Save the district's own fields (name, PowerSchool URL, time zone); returns the names that changed.

    A changed PowerSchool URL re-detects the hosting of the district's conversions not yet past step 1.
    """
    _require_consultant(user)
    before = District.objects.select_for_update().get(pk=district.pk)
    changed = _save_changes(district, before, values)
    if not changed:
        return []
    if "powerschool_url" in changed:
        district.conversions.filter(state="agent_setup").update(hosting=hosting_for(district.powerschool_url))
    audit.record(
        district=district,
        conversion=None,
        user=user,
        action="edit:district",
        summary="Changed " + ", ".join(_field_label(n) for n in changed),
        detail={n: {"from": str(getattr(before, n)), "to": str(values[n])} for n in changed},
    )
    return changed


@dataclass
class CanvasCheck:
    ok: bool
    account_name: str = ""
    permissions: dict[str, bool] = field(default_factory=dict)
    error: str = ""

    @property
    def missing(self) -> list[str]:
        return [name for name, held in self.permissions.items() if not held]

    def rows(self) -> list[dict]:
        return [
            {"name": n, "label": REQUIRED_CANVAS_PERMISSIONS.get(n, n), "held": held}
            for n, held in self.permissions.items()
        ]

    def as_detail(self) -> dict:
        return {"ok": self.ok, "account_name": self.account_name, "permissions": self.permissions, "error": self.error}


@transaction.atomic
def save_canvas(district: District, *, user, canvas_url: str, account_id: str, token: str = "") -> list[str]:
    """Save the Canvas URL, root account id and (when given) a new token; returns what changed.

    A blank token keeps the stored one: the page never shows it back, so it can only be replaced.
    """
    _require_consultant(user)
    before = District.objects.select_for_update().get(pk=district.pk)
    values = {"canvas_url": canvas_url, "canvas_account_id": account_id}
    if token:
        values["canvas_token"] = token
    elif before.canvas_token and before.canvas_url and peers.origin(canvas_url) != peers.origin(before.canvas_url):
        values["canvas_token"] = ""  # a token never follows its Canvas to a new address
    changed = _save_changes(district, before, values)
    if not changed:
        return []
    detail = {
        n: ({"changed": True} if n == "canvas_token" else {"from": getattr(before, n), "to": values[n]})
        for n in changed
    }
    labels = ", ".join(_field_label(n) for n in changed)
    summary = f"Changed {labels}"
    if "canvas_token" in changed and before.canvas_token:
        summary = summary.replace("Canvas API token", "Canvas API token (replaced)")
    audit.record(district=district, conversion=None, user=user, action="edit:canvas", summary=summary, detail=detail)
    return changed


def check_canvas(district: District, *, user, **client_options) -> CanvasCheck:
    """Ask Canvas, with the district's token, for the root account's name and the permissions the
    conversion needs; the answer is audited (it is what the settings page shows)."""
    check = _ask_canvas(district, **client_options)
    summary = (
        f"Canvas token checked: {check.account_name}, every permission held"
        if check.ok
        else f"Canvas token checked: {check.error or 'missing ' + ', '.join(check.missing)}"
    )
    audit.record(
        district=district,
        conversion=None,
        user=user,
        action=CANVAS_CHECK_ACTION,
        summary=summary,
        detail=check.as_detail(),
    )
    return check


def _ask_canvas(district: District, **client_options) -> CanvasCheck:
    if not district.canvas_url or not district.canvas_token:
        return CanvasCheck(ok=False, error="The Canvas URL or API token is not set.")
    options = {**getattr(settings, "CANVAS_CLIENT_OPTIONS", {}), "max_retries": 1, "timeout": 15.0, **client_options}
    account = district.canvas_account_id or "self"
    try:
        with CanvasClient(district.canvas_url, district.canvas_token, **options) as client:
            name = client.get_account(account).get("name", "")
            held = client.account_permissions(account, list(REQUIRED_CANVAS_PERMISSIONS))
    except CanvasAuthenticationError:
        return CanvasCheck(ok=False, error="Canvas refused the token (401): replace it with a valid one.")
    except CanvasNotFoundError:
        return CanvasCheck(ok=False, error=f"Canvas has no account {account!r}: check the root account id.")
    except CanvasPermissionError:
        return CanvasCheck(ok=False, error="The token's user may not read this account (403).")
    except (CanvasError, OSError) as exc:
        return CanvasCheck(ok=False, error=f"Canvas did not answer: {exc}"[:300])
    check = CanvasCheck(ok=False, account_name=name, permissions=held)
    check.ok = not check.missing
    if check.missing:
        check.error = "The token lacks: " + ", ".join(check.missing)
    return check


def latest_canvas_check(district: District) -> tuple[CanvasCheck, AuditEvent] | None:
    event = district.audit_events.filter(action=CANVAS_CHECK_ACTION).order_by("-created_at", "-id").first()
    if event is None:
        return None
    d = event.detail
    return CanvasCheck(
        ok=d.get("ok", False),
        account_name=d.get("account_name", ""),
        permissions=d.get("permissions", {}),
        error=d.get("error", ""),
    ), event
