"""Step 1 aids: the support ticket text (PowerSchool-hosted), the checklist (self-hosted), the agent.cfg
mappings document, and the district's choice of schools. The wording rules live here, not in templates.

A change of the chosen schools refreshes the diagnostics, so this module imports `diagnostics`; the DCID
list both read lives in `dcid`, so that diagnostics never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from lxml import etree

from conversion import audit
from conversion.models import AGENT_CHECKLIST, Conversion, ConversionState, Hosting, Snapshot
from conversion.rules import can_act_for, require
from conversion.services import diagnostics
from conversion.services.dcid import DCID_ELEMENT, DCID_OBJECTS, DCID_SOURCES
from conversion.services.step_data import EditRefused
from conversion.services.zis import source_id

# The states in which the district's choice of schools may still change: after the mapping is approved
# the scope is fixed (a changed scope would need a new mapping check and approval).
SCHOOL_CHOICE_STATES = (
    ConversionState.AGENT_SETUP,
    ConversionState.CONNECTION,
    ConversionState.PAUSE,
    ConversionState.MAPPING,
)


def hosting_of(conversion: Conversion) -> Hosting:
    """What the consultant recorded, else what the PowerSchool URL says (Hosting.UNKNOWN when neither)."""
    if conversion.hosting:
        return Hosting(conversion.hosting)
    hosted = conversion.district.powerschool_hosted
    if hosted is None:
        return Hosting.UNKNOWN
    return Hosting.POWERSCHOOL if hosted else Hosting.SELF


# ---- the mappings document ---------------------------------------------------------------------


def mappings_document(conversion: Conversion) -> bytes:
    """The agent.cfg mappings the district (or PowerSchool support) adds, as an XML document.

    Each object lists the SIF_ExtendedElement it must carry and where PowerSchool keeps the value, with
    an example of what the agent then publishes. Built with lxml so names are always escaped.
    """
    root = etree.Element(
        "AgentMappings",
        District=conversion.district.name,
        ZoneId=conversion.zone_id or "",
        SchoolYear=str(conversion.school_year),
        Agent=source_id(conversion),
    )
    root.append(
        etree.Comment(
            " Add these SIF_ExtendedElements mappings to agent.cfg, restart the SIF agent, then check that "
            "agent.cfg still holds them after the restart. "
        )
    )
    for object_name in DCID_OBJECTS:
        obj = etree.SubElement(root, "Object", Name=object_name)
        etree.SubElement(obj, "ExtendedElement", Name=DCID_ELEMENT, Source=DCID_SOURCES[object_name], Required="Yes")
        example = etree.SubElement(obj, "Example")
        ext = etree.SubElement(
            etree.SubElement(example, "SIF_ExtendedElements"), "SIF_ExtendedElement", Name=DCID_ELEMENT
        )
        ext.text = "12345"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def mappings_filename(conversion: Conversion) -> str:
    return f"agent-cfg-mappings-{conversion.district.slug}-{conversion.school_year}.xml"


# ---- the ticket and the checklist --------------------------------------------------------------


@dataclass(frozen=True)
class SetupItem:
    key: str
    label: str
    where: str
    done: bool | None  # None: not a box the district ticks (information to pass on)


def connection_items(conversion: Conversion, mappings_url: str) -> list[SetupItem]:
    """What the agent needs to reach the zone, in the order the seeds list it."""
    return [
        SetupItem(
            "zis_url", f"ZIS URL: {conversion.zis_url or '(not set yet)'}", "From your implementation consultant.", None
        ),
        SetupItem(
            "zone_id", f"Zone ID: {conversion.zone_id or '(not set yet)'}", "From your implementation consultant.", None
        ),
        SetupItem(
            "mappings",
            f"SIF mappings document: {mappings_url}",
            "The changes to apply to the SIF agent's agent.cfg (the DCID extended elements).",
            None,
        ),
    ]


def checklist(conversion: Conversion) -> list[SetupItem]:
    return [SetupItem(f, label, where, getattr(conversion, f)) for f, label, where in AGENT_CHECKLIST]


def missing_information(conversion: Conversion) -> list[str]:
    missing = []
    if not conversion.zis_url:
        missing.append("the ZIS URL")
    if not conversion.zone_id:
        missing.append("the Zone ID")
    return missing


def support_ticket_text(conversion: Conversion, mappings_url: str) -> str:
    """The request a PowerSchool-hosted district sends to PowerSchool Hosting Support, ready to paste."""
    d = conversion.district
    lines = [
        f"Subject: SIF agent set-up for {d.name} - connection to the Kimono SIF platform (Canvas)",
        "",
        "Hello PowerSchool Hosting Support,",
        "",
        "Please set up our PowerSchool SIF agent"
        f"{f' ({d.powerschool_url})' if d.powerschool_url else ''} and connect it "
        "to the Kimono SIF platform with these settings. Please review them carefully: if the mode or the "
        "method is not correct, the connection will not work.",
        "",
        f"- ZIS URL: {conversion.zis_url or '(to be provided)'}",
        f"- Zone ID: {conversion.zone_id or '(to be provided)'}",
        "- Mode: Pull (SIF Agent Console / Agent Settings / Registration / Messaging Mode). "
        "If the mode is set to Push, the connection will fail.",
        "- Method: HTTP (SIF Agent Console / Agent Settings / Protocol). If this is the only ZIS connection, "
        "select HTTP: the https:// in the ZIS URL still connects the agent to the ZIS using HTTPS. If the "
        "HTTPS method must be used, add the Kimono platform's certificate (the one securing its website) to "
        "Java's trusted certificates, or the agent will return connection errors.",
        f"- SIF mappings document (changes to apply to agent.cfg): {mappings_url}",
        "",
        "Please also check these settings in the SIF Agent Console:",
        f"- School Year (Agent Settings / Default Zone Settings / School Year): it must show the "
        f"{conversion.school_year_label} school year.",
        "- Plug-ins (Agent Settings / Plugins): disable the State Messaging Plug-ins (SMP) for the Canvas "
        "connection only. If we use SMP for state reporting, keep it on for that connection.",
        '- Zone Status (Zone Settings / Zone / General): the zone must display as "ready".',
        "- Schools (Zone Settings / Zone / District): deselect every school that should not be included in "
        "the Canvas data sync.",
        "",
        "Please let us know when the agent is ready so that we can request a connection test.",
        "",
        "Thank you,",
        d.name,
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class SetupAids:
    hosting: Hosting
    hosting_label: str
    from_url: bool  # True when the hosting was read from the PowerSchool URL, not recorded
    missing: list[str]
    connection: list[SetupItem]
    checklist: list[SetupItem]
    ticket_text: str  # empty unless PowerSchool-hosted

    @property
    def powerschool_hosted(self) -> bool:
        return self.hosting == Hosting.POWERSCHOOL


def setup_aids(conversion: Conversion, mappings_url: str) -> SetupAids:
    hosting = hosting_of(conversion)
    return SetupAids(
        hosting=hosting,
        hosting_label=Hosting(hosting).label,
        from_url=not conversion.hosting and hosting != Hosting.UNKNOWN,
        missing=missing_information(conversion),
        connection=connection_items(conversion, mappings_url),
        checklist=checklist(conversion),
        ticket_text=support_ticket_text(conversion, mappings_url) if hosting == Hosting.POWERSCHOOL else "",
    )


# ---- the district's schools --------------------------------------------------------------------


def pulled_schools(conversion: Conversion) -> list[dict]:
    """The schools of the latest complete pull (number, name, students, sections, staff), with `chosen`."""
    snapshot = Snapshot.objects.latest_complete(conversion)
    if snapshot is None:
        return []
    chosen = {str(s) for s in conversion.expected_school_ids or ()}
    return [
        {**school, "chosen": school["local_id"] in chosen}
        for school in (snapshot.summary or {}).get("schools", [])
        if school.get("local_id")
    ]


def can_choose_schools(conversion: Conversion, user) -> bool:
    return conversion.state in SCHOOL_CHOICE_STATES and can_act_for(user, conversion.district)


@transaction.atomic
def set_expected_schools(conversion: Conversion, school_ids: list[str], *, user) -> bool:
    """Set the schools the district wants in Canvas, from the pulled ones; audited. Returns True if changed."""
    require(can_act_for(user, conversion.district), "Only the district's consultant or admins choose its schools.")
    if conversion.state not in SCHOOL_CHOICE_STATES:
        raise EditRefused("You cannot change the district's schools now.")
    pulled = {s["local_id"] for s in pulled_schools(conversion)}
    unknown = sorted(set(school_ids) - pulled)
    if unknown:
        raise EditRefused(f"Not a school of the latest pull: {', '.join(unknown)}.")
    locked = Conversion.objects.select_for_update().get(pk=conversion.pk)
    before = [str(s) for s in locked.expected_school_ids or ()]
    after = sorted(set(school_ids), key=lambda s: (len(s), s))
    if sorted(before, key=lambda s: (len(s), s)) == after:
        return False
    locked.expected_school_ids = after
    locked.save(update_fields=["expected_school_ids"])
    conversion.expected_school_ids = after
    audit.record(
        district=locked.district,
        conversion=locked,
        user=user,
        action="edit:schools",
        summary=f"Chose the schools to sync: {', '.join(after) or 'all schools'}",
        detail={"expected_school_ids": {"from": before, "to": after}},
    )
    diagnostics.update_diagnostics(locked)  # the "schools not chosen" finding depends on this choice
    return True
