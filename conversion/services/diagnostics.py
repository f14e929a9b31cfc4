"""The seeds' troubleshooting Q&A, detected from data: each finding names the SIF Agent Console setting.

After every pull and connection test, `update_diagnostics` looks at the evidence (the latest complete
snapshot, and the latest contact with the zone: the newest connection test or pull) and reconciles the
conversion's Diagnostic rows: a finding the evidence shows is created or refreshed; one it no longer shows
is cleared (kept, with `cleared_at`, so the page can say it went away).

Protocol findings (Push mode, zone not ready, certificate) follow the newest contact with the zone: a
later successful pull or a clean connection test clears them. Data findings follow the latest complete
snapshot: a failed pull leaves them as they were.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from conversion.models import (
    Conversion,
    Diagnostic,
    Job,
    JobKind,
    JobState,
    Severity,
    SifRecord,
    Snapshot,
)
from conversion.services import legacy_seen
from conversion.services.dcid import DCID_ELEMENT, DCID_OBJECTS
from conversion.services.sifdata import EXTENDED_NAMES_SEPARATOR, data_of
from conversion.services.zis import PULL_OBJECTS, sif_error_detail
from sifclient import SifError, ZisTlsError
from sifclient.errors import CAT_GENERIC, CAT_TRANSPORT, CAT_ZONE_SERVICES, CODE_ZONE_NOT_READY
from sifclient.records import EMAIL_RULE, choose_email

log = logging.getLogger(__name__)

EXAMPLES = 5
# State reporting plug-ins name their extended elements after the state: CO_SASID, TX_PEIMSId, ...
STATE_ELEMENT = re.compile(r"^[A-Z]{2}_[A-Za-z0-9]")

FindingCode = Literal[
    "mappings_missing",
    "previous_school_years",
    "excluded_schools",
    "smp_on",
    "several_emails",
    "push_mode",
    "zone_not_ready",
    "certificate",
    "legacy_imports",
    "zone_asleep",
]


@dataclass(frozen=True)
class FindingKind:
    """What a finding's code stands for: how bad it is, its title, and the advice in the seeds' words."""

    severity: Severity
    title: str
    advice: str


FINDINGS: Final[Mapping[FindingCode, FindingKind]] = MappingProxyType(
    {
        "mappings_missing": FindingKind(
            Severity.ERROR,
            "The agent.cfg mappings are not coming over (records without a DCID)",
            "The mappings added to agent.cfg were lost. Restart the SIF agent, then check that agent.cfg still "
            "holds the mappings after the restart (compare it with the mappings document), and pull again.",
        ),
        "previous_school_years": FindingKind(
            Severity.WARNING,
            "Data from previous school years is coming over",
            "Check SIF Agent Console / Agent Settings / Default Zone Settings / School Year and make sure it shows "
            'the right school year. Some objects have their own "current" or "future" setting: talk to '
            "PowerSchool about those.",
        ),
        "excluded_schools": FindingKind(
            Severity.WARNING,
            "Schools the district did not choose are in the data",
            "Deselect these schools in SIF Agent Console / Zone Settings / Zone / District (or ask PowerSchool to), "
            "or add them to the district's schools if Canvas should get them.",
        ),
        "smp_on": FindingKind(
            Severity.WARNING,
            "State Messaging Plug-ins (SMP) are on for the Canvas connection",
            "Disable SMP in SIF Agent Console / Agent Settings / Plugins (or ask PowerSchool to). If SIF serves "
            "state reporting, work with PowerSchool to disable it for the Canvas connection only.",
        ),
        "several_emails": FindingKind(
            Severity.WARNING,
            "Several e-mail addresses in PowerSchool's primary Email",
            "Canvas takes one e-mail address (and one login) per person: it gets " + EMAIL_RULE + ". The other "
            "addresses are listed in the mapping. PowerSchool fills this Email from the family e-mail field; if "
            "another address should be the login, put it first in PowerSchool (or map the student's own address "
            "to the Email in agent.cfg), then pull again.",
        ),
        "push_mode": FindingKind(
            Severity.ERROR,
            "The PowerSchool SIF agent is in Push mode",
            "Set Mode to Pull in SIF Agent Console / Agent Settings / Registration / Messaging Mode. With Push, "
            "the connection fails. Then run the connection test again.",
        ),
        "zone_not_ready": FindingKind(
            Severity.ERROR,
            "The zone is not ready",
            'Check SIF Agent Console / Zone Settings / Zone / General: the zone must display as "ready". '
            "Then run the connection test again.",
        ),
        "certificate": FindingKind(
            Severity.ERROR,
            "Certificate error on the connection to the ZIS",
            "The certificate presented on the connection was not trusted. On the PowerSchool side, select the "
            "HTTP method (SIF Agent Console / Agent Settings / Protocol): the https:// in the ZIS URL still "
            "connects using HTTPS. If the HTTPS method must be used, add the platform's certificate to Java's "
            "trusted certificates. If the ZIS uses a private certificate authority, paste its CA certificate "
            "into the ZIS settings here.",
        ),
        "legacy_imports": FindingKind(
            Severity.ERROR,
            "Canvas still receives SIS imports this product did not make, after the pause",
            "The legacy PowerSchool sync (or another integration) still imports into Canvas. The district must: "
            "turn off the legacy Canvas plug-in's scheduled sync in PowerSchool; remove or pause any other SIS "
            "import job that posts to this Canvas account; tell us when it is done. The remap waits until no such "
            "import arrived for a day and a half, since each one re-creates users under their PowerSchool IDs.",
        ),
        # A zone or ZIS put to sleep answers every message with SIF_Status 8 (OpenZIS: SifProcessRequest.php).
        "zone_asleep": FindingKind(
            Severity.ERROR,
            "The zone is asleep",
            "The ZIS answers every message with SIF_Status 8 (receiver sleeping) and does nothing with it: someone put "
            "the zone, or the whole ZIS, to sleep in the ZIS's administration. Ask the ZIS administrator to wake it, "
            "then run the connection test again. Grades not taken meanwhile are sent on the next run.",
        ),
    }
)
# The findings that follow the newest contact with the zone (the others follow the latest snapshot).
PROTOCOL_CODES: Final[tuple[FindingCode, ...]] = ("push_mode", "zone_not_ready", "certificate", "zone_asleep")


@dataclass(frozen=True)
class Finding:
    """One finding the evidence shows now, with that evidence (kept in the Diagnostic row)."""

    code: FindingCode
    evidence: dict[str, Any]

    @property
    def kind(self) -> FindingKind:
        return FINDINGS[self.code]

    @property
    def severity(self) -> Severity:
        return self.kind.severity

    @property
    def title(self) -> str:
        return self.kind.title

    @property
    def advice(self) -> str:
        return self.kind.advice


# ---- evidence ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    """One job that talked to the zone, as the protocol checks see it."""

    job_id: int
    kind: str
    failed: bool
    detail: dict = field(default_factory=dict)


def _contact(job: Job, failed: bool | None = None) -> Contact:
    return Contact(job.pk, job.kind, job.state == JobState.FAILED if failed is None else failed, job.detail or {})


def latest_contacts(conversion: Conversion, current: Contact | None = None) -> dict[str, Contact]:
    """The newest finished connection test and pull (the running `current` one counts as finished)."""
    result: dict[str, Contact] = {}
    for kind in (JobKind.TEST_CONNECTION, JobKind.PULL):
        job = conversion.jobs.filter(kind=kind, state__in=(JobState.SUCCEEDED, JobState.FAILED)).order_by("-id").first()
        if job is not None:
            result[kind] = _contact(job)
    if current is not None and (current.kind not in result or result[current.kind].job_id <= current.job_id):
        result[current.kind] = current
    return result


def protocol_signals(contact: Contact) -> dict[FindingCode, dict[str, Any]]:
    """code -> evidence, for what one contact with the zone shows."""
    signals: dict[FindingCode, dict[str, Any]] = {}
    detail = contact.detail
    if detail.get("error_kind") == "tls":
        signals["certificate"] = {"job": contact.job_id, "kind": contact.kind, "error": detail.get("raw_error", "")}
    if detail.get("error_kind") == "asleep":
        signals["zone_asleep"] = {"job": contact.job_id, "kind": contact.kind, "during": detail.get("during")}
    zone = detail.get("zone") or {}
    if zone.get("ready") is False:
        signals["zone_not_ready"] = {
            "job": contact.job_id,
            "kind": contact.kind,
            "zone_id": zone.get("zone_id"),
            "zone_status": "not ready",
        }
    providers = set((zone.get("providers") or {}).values())
    pushing = [
        {
            "source_id": n["source_id"],
            "name": n.get("name") or "",
            "mode": n["mode"],
            "provides": sorted(o for o, s in (zone.get("providers") or {}).items() if s == n["source_id"]),
        }
        for n in zone.get("nodes") or ()
        if n.get("mode") == "Push" and n.get("source_id") in providers
    ]
    if pushing:
        signals["push_mode"] = {"job": contact.job_id, "kind": contact.kind, "nodes": pushing}
    error = detail.get("sif_error")
    if error:
        category, code = error.get("category"), error.get("code")
        shown = {
            "job": contact.job_id,
            "kind": contact.kind,
            "request_errors": [f"category {category}, code {code}: {error.get('description', '')}"],
        }
        if category == CAT_TRANSPORT:
            signals.setdefault("push_mode", {}).update(shown)
        elif code == CODE_ZONE_NOT_READY and category in (CAT_ZONE_SERVICES, CAT_GENERIC):
            signals.setdefault("zone_not_ready", {}).update(shown)
    return signals


def protocol_findings(contacts: dict[str, Contact]) -> list[Finding]:
    """What the newest contact shows; an older contact adds its evidence to the same findings only."""
    if not contacts:
        return []
    ordered = sorted(contacts.values(), key=lambda c: c.job_id, reverse=True)
    newest = protocol_signals(ordered[0])
    older = protocol_signals(ordered[1]) if len(ordered) > 1 else {}
    findings = []
    for code in PROTOCOL_CODES:
        if code in newest:
            sources = [newest[code]] + ([older[code]] if code in older else [])
            findings.append(Finding(code, {"seen_in": sources}))
    return findings


# ---- data checks on a snapshot -----------------------------------------------------------------


def _extended_element_counts(snapshot: Snapshot) -> dict[str, dict[str, int]]:
    """object name -> {extended element name: records carrying it}, from the names stored at ingest."""
    result: dict[str, dict[str, int]] = {}
    rows = (
        SifRecord.objects.filter(snapshot=snapshot)
        .values("object_name", "extended_names")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in rows:
        counts = result.setdefault(row["object_name"], {})
        for name in set(row["extended_names"].split(EXTENDED_NAMES_SEPARATOR)) if row["extended_names"] else ():
            counts[name] = counts.get(name, 0) + row["n"]
    return {name: counts for name, counts in result.items() if counts}


def check_mappings(snapshot: Snapshot) -> Finding | None:
    rows = (
        SifRecord.objects.filter(snapshot=snapshot, object_name__in=DCID_OBJECTS)
        .values("object_name")
        .annotate(total=Count("id"), missing=Count("id", filter=Q(dcid="")))
        .order_by("object_name")
    )
    per_object = {r["object_name"]: {"records": r["total"], "without_dcid": r["missing"]} for r in rows if r["missing"]}
    if not per_object:
        return None
    for name, figures in per_object.items():
        figures["examples"] = [
            {"ref_id": ref, "local_id": local}
            for ref, local in SifRecord.objects.filter(snapshot=snapshot, object_name=name, dcid="")
            .order_by("ref_id")
            .values_list("ref_id", "local_id")[:EXAMPLES]
        ]
    return Finding(
        "mappings_missing",
        {
            "snapshot": snapshot.pk,
            "element": DCID_ELEMENT,
            "objects": per_object,
            "records_without_dcid": sum(f["without_dcid"] for f in per_object.values()),
        },
    )


def check_school_years(snapshot: Snapshot, school_year: int) -> Finding | None:
    years = (snapshot.summary or {}).get("school_years") or {}
    per_object = {name: {str(y): n for y, n in sorted(counts.items())} for name, counts in sorted(years.items())}
    previous = {name: {y: n for y, n in counts.items() if int(y) < school_year} for name, counts in per_object.items()}
    previous = {name: counts for name, counts in previous.items() if counts}
    if not previous:
        return None
    return Finding(
        "previous_school_years",
        {
            "snapshot": snapshot.pk,
            "school_year": school_year,
            "per_object": per_object,
            "previous_records": sum(sum(c.values()) for c in previous.values()),
            "previous_years": sorted({y for c in previous.values() for y in c}),
        },
    )


def check_schools(snapshot: Snapshot, expected_school_ids) -> Finding | None:
    expected = {str(s) for s in expected_school_ids or ()}
    if not expected:
        return None  # only the district's own list says which schools are unwanted
    extra = [
        {k: s.get(k) for k in ("local_id", "name", "students", "sections", "staff")}
        for s in (snapshot.summary or {}).get("schools", [])
        if s.get("local_id") and s["local_id"] not in expected
    ]
    if not extra:
        return None
    return Finding(
        "excluded_schools",
        {
            "snapshot": snapshot.pk,
            "expected": sorted(expected),
            "schools": extra,
            "students": sum(s["students"] or 0 for s in extra),
        },
    )


def check_smp(snapshot: Snapshot, element_counts: dict[str, dict[str, int]]) -> Finding | None:
    elements = {
        name: {key: n for key, n in sorted(keys.items()) if STATE_ELEMENT.match(key)}
        for name, keys in sorted(element_counts.items())
    }
    elements = {name: keys for name, keys in elements.items() if keys}
    events = {
        key: n
        for key, n in sorted(((snapshot.summary or {}).get("events") or {}).items())
        if key.split(":", 1)[0] not in PULL_OBJECTS
    }
    if not elements and not events:
        return None
    return Finding("smp_on", {"snapshot": snapshot.pk, "state_elements": elements, "unsolicited_events": events})


# A primary Email whose text holds a separator: the candidates, read and decided by the e-mail rule itself.
_SEVERAL_EMAILS = r"<([A-Za-z0-9_.-]+:)?Email[ >][^<]*[,; ][^<]*</"


def check_emails(snapshot: Snapshot) -> Finding | None:
    per_object: dict[str, dict] = {}
    candidates = (
        SifRecord.objects.filter(
            snapshot=snapshot, object_name__in=("StaffPersonal", "StudentPersonal"), xml__regex=_SEVERAL_EMAILS
        )
        .order_by("object_name", "local_id", "ref_id")
        .values_list("object_name", "local_id", "xml")
    )
    for object_name, local_id, xml in candidates.iterator(chunk_size=2000):
        choice = choose_email(data_of(xml, ("email",)).get("email"))
        if not choice.several:
            continue
        figures = per_object.setdefault(object_name, {"people": 0, "examples": []})
        figures["people"] += 1
        if len(figures["examples"]) < EXAMPLES:
            figures["examples"].append(
                {
                    "local_id": local_id,
                    "chosen": choice.chosen or "",
                    "not_used": list(choice.others),
                    "not_an_address": list(choice.invalid),
                }
            )
    if not per_object:
        return None
    return Finding(
        "several_emails",
        {
            "snapshot": snapshot.pk,
            "rule": EMAIL_RULE,
            "objects": per_object,
            "people": sum(f["people"] for f in per_object.values()),
        },
    )


def snapshot_findings(conversion: Conversion, snapshot: Snapshot | None) -> list[Finding]:
    if snapshot is None:
        return []
    found = [
        check_mappings(snapshot),
        check_school_years(snapshot, conversion.school_year),
        check_schools(snapshot, conversion.expected_school_ids),
        check_smp(snapshot, _extended_element_counts(snapshot)),
        check_emails(snapshot),
    ]
    return [f for f in found if f is not None]


def findings_for(conversion: Conversion, current: Contact | None = None) -> list[Finding]:
    snapshot = Snapshot.objects.latest_complete(conversion)
    legacy = legacy_seen.finding_evidence(conversion)
    return (
        snapshot_findings(conversion, snapshot)
        + protocol_findings(latest_contacts(conversion, current))
        + ([Finding("legacy_imports", legacy)] if legacy else [])
    )


# ---- keeping the rows ----------------------------------------------------------------------------


@transaction.atomic
def update_diagnostics(conversion: Conversion, *, current: Contact | None = None) -> list[Diagnostic]:
    """Reconcile the conversion's diagnostics with what the evidence shows now; returns the current ones."""
    now = timezone.now()
    Conversion.objects.select_for_update().filter(pk=conversion.pk).first()  # one reconciler at a time
    found = findings_for(conversion, current)
    existing = {d.code: d for d in Diagnostic.objects.filter(conversion=conversion)}
    current_rows = []
    for finding in found:
        row = existing.get(finding.code)
        if row is None:
            row = Diagnostic(conversion=conversion, code=finding.code, first_seen=now)
        elif row.cleared_at is not None:
            row.first_seen, row.cleared_at = now, None  # back again: a new episode
        row.severity, row.title, row.advice = finding.severity, finding.title, finding.advice
        row.evidence, row.last_seen = finding.evidence, now
        row.save()
        current_rows.append(row)
    (
        Diagnostic.objects.filter(conversion=conversion, cleared_at__isnull=True)
        .exclude(code__in=[f.code for f in found])
        .update(cleared_at=now)
    )
    return current_rows


def _failure_detail(exc: BaseException) -> dict:
    """What a failed pull or test tells the protocol checks (the SIF error or the TLS failure behind it)."""
    cause = exc.__cause__ or exc
    if isinstance(cause, ZisTlsError):
        return {"error_kind": "tls", "raw_error": str(cause)}
    if isinstance(cause, SifError):
        return {"sif_error": sif_error_detail(cause.info, during=cause.during, object_name=cause.object_name)}
    return {}


def refreshes_diagnostics(runner):
    """Decorate a pull or connection-test runner: diagnostics are updated when it ends, failed or not.

    A failure's SIF error is written into the job's detail first (the page and later updates read it).
    Diagnostics never turn a good run into a failed one: an error while updating them is logged.
    """

    @functools.wraps(runner)
    def run(job: Job, progress) -> None:
        try:
            runner(job, progress)
        except Exception as exc:
            extra = _failure_detail(exc)
            if extra:
                progress.update(detail=extra, force=True)
            _update_quietly(job, failed=True)
            raise
        _update_quietly(job, failed=False)

    return run


def _update_quietly(job: Job, *, failed: bool) -> None:
    try:
        update_diagnostics(job.conversion, current=_contact(job, failed))
    except Exception:  # noqa: BLE001 - diagnostics are advice; the job's own outcome stands
        log.exception("updating diagnostics after job %s failed", job.pk)
