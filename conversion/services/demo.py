"""The demo data a fresh start shows: a consultant, two districts with their admins, their conversions.

Idempotent: running it again changes nothing that exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypedDict

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from conversion.models import Conversion, District

DEMO_PASSWORD = "demo-password-1"


@dataclass
class DemoSettings:
    zis_url: str = "http://127.0.0.1:7080/zones"
    canvas_url: str = "http://127.0.0.1:7090"
    canvas_token: str = "demo-canvas-token"
    zone_id: str = "DEMO_USD"


class DemoLogin(TypedDict):
    district: str
    admin: str


class DemoSeed(TypedDict):
    """Who can sign in to the demo (the password is DEMO_PASSWORD)."""

    consultant: str
    districts: list[DemoLogin]


def current_school_year(today: dt.date | None = None) -> int:
    """SIF's SchoolYear: the calendar year the school year ends in (July starts a new one)."""
    today = today or timezone.localdate()
    return today.year + 1 if today.month >= 7 else today.year


@transaction.atomic
def seed_demo(settings: DemoSettings | None = None) -> DemoSeed:
    settings = settings or DemoSettings()
    users = get_user_model().objects
    consultant, created = users.get_or_create(
        username="consultant", defaults={"is_staff": True, "email": "consultant@example.org"}
    )
    if created:
        consultant.set_password(DEMO_PASSWORD)
        consultant.save()
    elif consultant.is_superuser:  # demo databases made before consultants were staff only
        consultant.is_superuser = False
        consultant.save(update_fields=["is_superuser"])
    year = current_school_year()
    result: DemoSeed = {"consultant": consultant.username, "districts": []}
    for name, slug, ps_url, zone in [
        ("Demo Unified School District", "demo-usd", "https://demousd.powerschool.com", settings.zone_id),
        ("Lakeside Public Schools", "lakeside", "https://ps.lakeside.k12.example.org", "LAKESIDE"),
    ]:
        district, _ = District.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "powerschool_url": ps_url,
                "canvas_url": settings.canvas_url,
                "canvas_account_id": "1",
                "canvas_token": settings.canvas_token,
            },
        )
        admin, created = users.get_or_create(username=f"admin@{slug}", defaults={"email": f"admin@{slug}.example.org"})
        if created:
            admin.set_password(DEMO_PASSWORD)
            admin.save()
        district.admins.add(admin)
        Conversion.objects.get_or_create(
            district=district,
            school_year=year,
            defaults={
                "zis_url": settings.zis_url if slug == "demo-usd" else "",
                "zone_id": zone if slug == "demo-usd" else "",
                "agent_source_id": f"KIMONO_{zone}",
                "hosting": "powerschool" if district.powerschool_hosted else "self",
            },
        )
        result["districts"].append({"district": slug, "admin": admin.username})
    return result
