"""The Django side of sifclient: an Agent for a conversion, from its stored settings."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError

from conversion import peers
from conversion.jobs import JobFailed, Progress
from conversion.models import Conversion
from conversion.models.conversion import validate_zone_id
from sifclient import (
    Agent,
    HttpTransport,
    SifClientError,
    SifError,
    SifErrorInfo,
    TransportError,
    ZisHttpStatusError,
    ZisTimeoutError,
    ZisTlsError,
    ZoneAsleepError,
)

# What our agent asks the zone for, in the order a sync needs them (schools before people, people
# before enrollments). PowerSchool's agent publishes all of them by default.
PULL_OBJECTS: tuple[str, ...] = (
    "LEAInfo",
    "SchoolInfo",
    "TermInfo",
    "SchoolCourseInfo",
    "SectionInfo",
    "StaffPersonal",
    "StaffAssignment",
    "StudentPersonal",
    "StudentSchoolEnrollment",
    "StudentSectionEnrollment",
    "GradingCategory",
)

# Big enough to keep the number of round trips low, small enough that one packet parses in a blink.
MAX_BUFFER_SIZE = 1024 * 1024


def zone_url(conversion: Conversion) -> str:
    """The URL our agent posts to: the ZIS URL with the Zone ID as its last path segment."""
    base = conversion.zis_url.rstrip("/")
    zone = conversion.zone_id
    zone = quote(zone, safe="") if zone not in (".", "..") else ""  # one path segment, never up a level
    return base if base.endswith("/" + zone) else f"{base}/{zone}"


def source_id(conversion: Conversion) -> str:
    return conversion.agent_source_id or f"KIMONO_{conversion.district.slug.upper().replace('-', '_')}"


def register(conversion: Conversion, agent: Agent, progress: Progress | None = None) -> None:
    """Register, and keep what the zone taught the agent: a SIF version it detected is saved as the
    district's, and what the agent did on its own (re-registering, switching version) goes into the job."""
    agent.register()
    record_agent_notes(conversion, agent, progress)


def record_agent_notes(conversion: Conversion, agent: Agent, progress: Progress | None = None) -> None:
    if agent.detected_version and agent.detected_version != conversion.sif_version:
        conversion.sif_version = agent.detected_version
        Conversion.objects.filter(pk=conversion.pk).update(sif_version=agent.detected_version)
    if progress is not None and agent.notes and (progress.job.detail or {}).get("agent_notes") != agent.notes:
        progress.update(detail={"agent_notes": list(agent.notes), "sif_version": agent.version}, force=True)


# Defaults of settings.ZIS_CLIENT_OPTIONS: seconds to wait for each answer; transport retries and the
# first delay between them (doubling). See sifclient.Agent for what is retried.
ZIS_CLIENT_DEFAULTS = {"timeout": 60.0, "retries": 3, "retry_delay": 0.5}


def zis_options() -> dict:
    return {**ZIS_CLIENT_DEFAULTS, **getattr(settings, "ZIS_CLIENT_OPTIONS", {})}


@contextlib.contextmanager
def agent_for(conversion: Conversion, *, timeout: float | None = None) -> Iterator[Agent]:
    """An Agent for the conversion's zone; a custom CA bundle is written to a private temp file.

    ``timeout`` lets a caller wait less than settings.ZIS_CLIENT_OPTIONS["timeout"] (the connection test
    does), never more.
    """
    try:
        peers.check_url(
            conversion.zis_url, what="ZIS URL", unknown_host_ok=True
        )  # again now: a name may point elsewhere since
    except peers.PeerRefused as exc:
        raise JobFailed(f"{exc} Correct the ZIS URL in the ZIS settings.") from None
    try:
        if conversion.zone_id:
            validate_zone_id(conversion.zone_id)
    except ValidationError as exc:
        raise JobFailed(f"{exc.messages[0]} Correct the Zone ID in the ZIS settings.") from None
    options = zis_options()
    wait = options["timeout"] if timeout is None else min(timeout, options["timeout"])
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=True) as ca_file:
        verify: bool | str = True
        if conversion.zis_ca_bundle.strip():
            ca_file.write(conversion.zis_ca_bundle)
            ca_file.flush()
            verify = ca_file.name
        auth = (conversion.zis_username, conversion.zis_password) if conversion.zis_username else None
        transport = HttpTransport(zone_url(conversion), timeout=wait, verify=verify, auth=auth)
        try:
            yield Agent(
                transport,
                source_id=source_id(conversion),
                name="Canvas SIS platform",
                max_buffer_size=MAX_BUFFER_SIZE,
                retries=options["retries"],
                retry_delay=options["retry_delay"],
                version=conversion.sif_version,
            )
        finally:
            close = getattr(transport, "close", None)
            if close:
                close()


# OpenZIS refuses Change events as 4/12 and Delete events as 4/11: one cure for both.
_EVENT_KIND_REFUSED = (
    "Agent {source_id} may not publish {object} events of this kind (OpenZIS numbers Change 12 and "
    "Delete 11): ask the ZIS administrator to allow publishing Add, Change and Delete of {object} "
    "in the agent's access control list (ACL)."
)


# ONE table of advice: what to do for every SIF_Error and every failure to talk with the ZIS. Keys:
#   ("sif", category)            the category's advice (every category of sifclient.errors.ERROR_CATEGORIES)
#   ("sif", category, code)      a code that asks for something else than its category (checked first)
#   ("http", status) / ("http", "4xx") / ("http", "5xx")   an HTTP status instead of a SIF answer
#   ("asleep",), ("no_answer",)  a zone answering SIF_Status 8; requests that never got an answer
#   ("no_answer", "partial")     an answer that stopped after some packets while the rest arrived
# Texts name what OpenZIS (openzis/OpenZIS, the open-source ZIS, see sifclient/zis/strict.py) answers in each
# situation, because a real zone says it that way: an unknown agent is 8/2, "not registered" 5/1, a message in
# another SIF version 12/3, an event of an object the agent does not provide 6/5.
# {source_id} is our agent's SourceId, {object} the object concerned, {version} the district's SIF version,
# {during} what we sent.
ADVICE: dict[tuple, str] = {
    ("sif", 0): "The ZIS gave no category: send this message to the ZIS administrator.",
    ("sif", 1): "The ZIS found our message invalid, which usually means the zone expects another SIF version: check "
    "that the zone's SIF version in the ZIS is the one set in step 1 (SIF {version}) and send this "
    "message to support.",
    ("sif", 2): "The ZIS wants message encryption this platform does not use: in the ZIS, set the encryption level "
    "required of agent {source_id} to none (the connection itself is encrypted with HTTPS).",
    ("sif", 3): "The ZIS did not accept who our agent is: check that agent {source_id} is defined in the zone and "
    "that the user name, password and certificate in the ZIS settings are the ones the ZIS expects.",
    ("sif", 4): "Agent {source_id} lacks a permission in the ZIS: check its access control list (ACL) in the zone; "
    "it needs permission to register and to request {object}.",
    ("sif", 5): "The ZIS refused the agent's registration: check that the SourceId ({source_id}) is the agent "
    "defined in the zone, that it may register in Pull mode with SIF {version}, then re-register it by "
    "running the connection test again.",
    ("sif", 6): "The zone's provisioning is wrong: the PowerSchool SIF agent must provide {object} in this zone; "
    "check the objects it provides in the ZIS and in the PowerSchool SIF agent's settings.",
    ("sif", 7): "The zone refused a subscription: check in the ZIS that agent {source_id} may subscribe to {object} "
    "and that the PowerSchool SIF agent publishes it.",
    ("sif", 8): "The request for {object} could not be answered: check that the PowerSchool SIF agent is running, "
    "connected to the zone and provides {object}, then run the pull again.",
    ("sif", 9): "The zone refused an event: check the event permissions (publish Add/Change/Delete) of agent "
    "{source_id} in the ZIS.",
    ("sif", 10): "The ZIS could not pass the message on to the PowerSchool SIF agent: check that the agent is "
    "running, registered in Pull mode (or reachable at its Push URL) and connected to the zone, then "
    "retry.",
    ("sif", 11): "The ZIS had an internal failure (database, operating system). This is usually transient: retry "
    "later; if it persists, ask the ZIS administrator to check the ZIS's logs.",
    ("sif", 12): "The ZIS could not handle the message (unsupported message or version, or a protocol error): check "
    "the zone's SIF version in the ZIS against step 1 (SIF {version}), then retry; if it persists, "
    "send this message to support.",
    ("sif", 13): "The ZIS reports a selective message blocking (SMB) problem with our agent's queue: retry; if it "
    "persists, ask the ZIS administrator to clear the queue of agent {source_id}.",
    ("sif", 14): "The zone is not ready or a zone service failed: check the zone's state in the ZIS, then retry.",
    # Codes that ask for something else than their category.
    ("sif", 1, 2): "The ZIS found our message invalid against the schema of its SIF version: check that step 1's "
    "SIF version (SIF {version}) is the zone's, then run it again; if it persists, send this message "
    "to support.",
    ("sif", 3, 1): 'The ZIS did not accept our user name and password (OpenZIS answers "Invalid User"): check the '
    "ZIS user name and password in step 1 against agent {source_id}'s in the ZIS.",
    ("sif", 3, 3): "The zone authenticates agents by certificate and our agent sends none: set the zone's "
    "authentication to user name and password for agent {source_id}, or ask support.",
    ("sif", 4, 3): "Agent {source_id} may not provide {object}: ask the ZIS administrator to allow it in the "
    'agent\'s access control list (ACL), "provide" column; grade passback publishes {object}.',
    ("sif", 4, 5): "Agent {source_id} may not request {object}: ask the ZIS administrator to allow it in the agent's "
    'access control list (ACL), "request" column, then run the pull again.',
    ("sif", 4, 9): "The ZIS does not know agent {source_id}: it answered that this SIF_SourceId is not registered "
    "although our agent had registered (and registered once more when told so). Check in the ZIS that "
    "the agent defined in the zone has the SourceId {source_id} and that the ZIS keeps its "
    "registration, then re-register it by running the connection test again.",
    ("sif", 4, 10): "Agent {source_id} may not publish Add events of {object}: ask the ZIS administrator to allow "
    "it in the agent's access control list (ACL).",
    ("sif", 4, 11): _EVENT_KIND_REFUSED,
    ("sif", 4, 12): _EVENT_KIND_REFUSED,
    # OpenZIS says "Agent Not Registerd" as 5/1, and refuses a registration repeated within one second so too;
    # our agent registers again once in both cases, so this is read when that did not cure it.
    ("sif", 5, 1): "The ZIS says agent {source_id} is not registered, or refused its registration, although our "
    "agent registered again once when told so. Check in the ZIS that agent {source_id} is defined in "
    "this zone and allowed to register, and that the ZIS keeps its registration; then run the "
    "connection test again.",
    # 5/9 answers SIF_GetMessage when the ZIS holds the agent in Push mode; registering again is no cure.
    ("sif", 5, 9): "The ZIS has agent {source_id} in Push mode, so it does not hand over messages to be pulled: set "
    "the agent to Pull mode in the ZIS agent settings (this platform only pulls), then run the "
    "connection test again.",
    ("sif", 6, 5): "Agent {source_id} is not the provider of {object} in the zone, and a ZIS passes on only the "
    "provider's events. Grade passback declares it (SIF_Provision) before sending; if this persists, "
    "ask the ZIS administrator to allow agent {source_id} to provide and publish {object} (its access "
    "control list, ACL) and check that no other agent provides it.",
    # OpenZIS answers 8/2 (words: "Registration Error", "The SIF_SourceId is invalid") to ANY message from a
    # SourceId no agent of the zone has: it is about who we are, not about a request.
    ("sif", 8, 2): "The ZIS does not know an agent with SourceId {source_id}: define the agent in the ZIS with "
    'exactly this SourceId and add it to the zone with its permissions (ACL), or correct "Our '
    "agent's SIF_SourceId\" in step 1; then run the connection test again.",
    ("sif", 8, 10): "The ZIS no longer holds our request for {object} (a ZIS without duplicate detection refuses the "
    "answers to a request it got twice so): run the pull again.",
    ("sif", 12, 3): "The zone speaks another SIF version than the one set for this district (SIF {version}), and a "
    'zone refuses every message in another version: set "Zone\'s SIF version" in step 1 to the '
    "zone's (the ZIS's zone settings show it), then run the connection test again.",
    # HTTP failures.
    ("http", 401): "Check the ZIS user name and password in the ZIS settings.",
    ("http", 403): "Check the ZIS user name and password in the ZIS settings.",
    ("http", "4xx"): "Check the ZIS URL and the Zone ID in the ZIS settings.",
    ("http", "5xx"): "The ZIS (or a proxy in front of it) is failing: retry later; if it persists, ask the ZIS "
    "administrator to check the ZIS's logs.",
    # OpenZIS fails with HTTP 500, not a SIF_Error, when a zone that wants a user name and password gets none
    # (SifProcessRequest.php authenticateAgent reads a message it does not have), and when it refuses a request or
    # an event for lack of permission (the handlers for SIF_Request and SIF_Event do not load the error builder
    # of permissions, ProvisionError.php).
    ("http", 500): "The ZIS failed on our message. A ZIS in trouble answers so, and OpenZIS also fails with HTTP "
    "500 when the zone wants a user name and password and none was sent, when agent {source_id} "
    "lacks a permission (ACL) for what it sent, or when it publishes an event (a grade) that no agent "
    "of the zone subscribes to: check that PowerSchool's grade write-back is on. Check the ZIS user name and "
    "password in step 1 and the agent's permissions in the zone; if both are right, retry later, and if it "
    "persists ask the "
    "ZIS administrator to check the ZIS's logs.",
    ("asleep",): "The zone is asleep: the ZIS answered {during} with SIF_Status 8 (receiver sleeping) and did "
    "nothing with it, also after pausing and asking again. Someone put the zone, or the whole ZIS, to "
    "sleep in the ZIS's administration: ask the ZIS administrator to wake it, then run this again. "
    "Nothing was lost: what was not taken is sent again.",
    ("no_answer",): "No answer came for {object}, while the zone kept answering everything else. A ZIS drops an "
    "answer it cannot file: OpenZIS drops a provider's answer that holds no record at all, so "
    "{object} may simply have no records in PowerSchool. Check in PowerSchool whether the district "
    "has any; if it does, check that the PowerSchool SIF agent is running and provides {object}. "
    "OpenZIS also drops, without a word to us, a packet larger than the {buffer} bytes our request "
    "allows (it refuses it to PowerSchool with error 8/11): if PowerSchool's SIF log shows 8/11, "
    "ask its administrator to send packets within that size.",
    # response/Response.php (see sifclient/zis/strict.py, StrictZone._oversized): a packet over the request's
    # SIF_MaxBufferSize is refused to the provider, and every packet after it, so the answer stops half way.
    ("no_answer", "partial"): "{object} stopped after packet {packet} of an answer that said more packets were "
    "coming, while the zone kept answering everything else. OpenZIS drops, without a word "
    "to us, a packet larger than the {buffer} bytes our request allows (it refuses it to "
    "PowerSchool with error 8/11) and every packet after it. Ask the PowerSchool SIF "
    "administrator to send packets within that size (PowerSchool's SIF log shows the "
    "8/11), then pull again.",
}


def advice(key: tuple, conversion: Conversion | None = None, **values) -> str:
    """The advice of one key of ADVICE; a SIF (category, code) without its own falls back to its category."""
    if key[0] == "sif" and len(key) == 3 and key not in ADVICE:
        key = key[:2]
    if key[0] == "sif" and key not in ADVICE:
        key = ("sif", 0)
    if key[0] == "http" and key not in ADVICE:
        key = ("http", "5xx" if int(key[1]) >= 500 else "4xx")
    if conversion is not None:
        values.setdefault("source_id", source_id(conversion))
        values.setdefault("version", conversion.sif_version)
    values.setdefault("object", "the objects the pull asks for")
    values.setdefault("during", "our message")
    values.setdefault("source_id", "our agent")
    values.setdefault("version", "2.4")
    values.setdefault("buffer", f"{MAX_BUFFER_SIZE:,}")  # the SIF_MaxBufferSize our agent announces
    values.setdefault("packet", "some")
    return ADVICE[key].format(**values)


_DURING = {
    "SIF_Register": "our registration (SIF_Register)",
    "SIF_GetMessage": "our SIF_GetMessage (reading the agent's queue)",
    "SIF_Ack": "our acknowledgement of a delivered message (SIF_Ack)",
}


def _doing(during: str | None, object_name: str | None) -> str:
    if object_name and during in ("SIF_Request", "SIF_Response"):
        return f"our request for {object_name} ({during})"
    if during:
        return _DURING.get(during, f"our {during}")
    return "our message"


def describe_sif_error(
    conversion: Conversion, info: SifErrorInfo, *, during: str | None = None, object_name: str | None = None
) -> str:
    """A SIF_Error in words: what we sent, the category, the ZIS's own description, and what to do."""
    text = info.description + (f" ({info.extended_description})" if info.extended_description else "")
    what_to_do = advice(
        ("sif", info.category, info.code), conversion, object=object_name or "the objects the pull asks for"
    )
    who = "The zone answered" if during == "SIF_Response" else "The ZIS refused"
    # Advice before the ZIS's own words: a page that shows only the first 300 characters keeps it.
    return (
        f"{who} {_doing(during, object_name)} with a SIF_Error: {info.category_name} error. What to do: "
        f'{what_to_do} The ZIS said (category {info.category}, code {info.code}): "{text}"'
    )


def sif_error_detail(info: SifErrorInfo, *, during: str | None = None, object_name: str | None = None) -> dict:
    """The raw facts of a SIF_Error for the job's detail (diagnostics read category and code)."""
    return {
        "category": info.category,
        "code": info.code,
        "description": info.description or "",
        "category_name": info.category_name,
        "extended_description": info.extended_description,
        "during": during,
        "object": object_name,
    }


# SifErrorInfo.__str__ as stored in a snapshot's requests ("SIF error category 4 (...), code 5: text").
_STORED_SIF_ERROR = re.compile(r"SIF error category (\d+) \(.*?\), code (\d+): (.*)", re.DOTALL)


def stored_sif_error(text: str) -> SifErrorInfo:
    """Back from the stored text to the error (the extended description stays in the description)."""
    match = _STORED_SIF_ERROR.fullmatch(text or "")
    if match is None:
        return SifErrorInfo(0, 0, text or "")
    return SifErrorInfo(int(match[1]), int(match[2]), match[3])


def response_errors_failure(
    conversion: Conversion, errors: dict[str, str], progress: Progress | None = None
) -> JobFailed:
    """The JobFailed for SIF_Responses that carried a SIF_Error (object name -> stored error text)."""
    described, details = [], []
    for name, text in errors.items():
        info = stored_sif_error(text)
        described.append(describe_sif_error(conversion, info, during="SIF_Response", object_name=name))
        details.append(sif_error_detail(info, during="SIF_Response", object_name=name))
    if progress is not None:
        raw = "; ".join(f"{n}: {e}" for n, e in errors.items())
        progress.update(
            detail={"error_kind": "sif", "raw_error": raw, "sif_error": details[0], "sif_errors": details}, force=True
        )
    if len(described) == 1:
        return JobFailed(described[0] + " This pull's data is kept aside and not used.")
    return JobFailed(
        f"The zone answered {len(described)} requests with SIF errors; this pull's data is kept "
        "aside and not used.\n" + "\n".join(described)
    )


def _seconds(timeout: float | None) -> str:
    return "the time allowed" if timeout is None else f"{timeout:g} s"


def _attempts(exc: TransportError) -> str:
    return "once" if exc.attempts == 1 else f"on each of {exc.attempts} attempts"


@contextlib.contextmanager
def zis_failures(conversion: Conversion, progress: Progress | None = None) -> Iterator[None]:
    """sifclient's errors as JobFailed with advice; the kind and the raw text go into the job's detail."""

    def fail(kind: str, message: str, exc: Exception, **facts):
        if progress is not None:
            progress.update(detail={"error_kind": kind, "raw_error": str(exc), **facts}, force=True)
        raise JobFailed(message) from exc

    url = zone_url(conversion)
    try:
        yield
    except ZisTlsError as exc:
        fail(
            "tls",
            "The ZIS certificate was not trusted. If the ZIS uses a private certificate authority, paste "
            f"its CA certificate into the ZIS settings. ({exc})",
            exc,
        )
    except ZisTimeoutError as exc:
        fail(
            "timeout",
            f"The ZIS at {url} timed out: no answer to {_doing(exc.during, None)} within "
            f"{_seconds(exc.timeout)}, {_attempts(exc)}. The ZIS is down or overloaded, or the network "
            "drops the traffic: check that the ZIS is running and answers at that address, then try "
            "again.",
            exc,
            attempts=exc.attempts,
            timeout_seconds=exc.timeout,
        )
    except ZisHttpStatusError as exc:
        status = exc.status_code
        what_to_do = advice(("http", status), conversion, during=_doing(exc.during, None))
        fail(
            "http_status",
            f"The ZIS at {url} answered HTTP {status} to {_doing(exc.during, None)}, {_attempts(exc)}. {what_to_do}",
            exc,
            attempts=exc.attempts,
            http_status=status,
        )
    except TransportError as exc:
        fail(
            "transport",
            f"Could not reach the ZIS at {url} ({_attempts(exc)}): {exc}. Check the ZIS URL, that "
            "the ZIS is running, and that no firewall stands between it and this platform.",
            exc,
            attempts=exc.attempts,
        )
    except SifError as exc:
        fail(
            "sif",
            describe_sif_error(conversion, exc.info, during=exc.during, object_name=exc.object_name),
            exc,
            sif_error=sif_error_detail(exc.info, during=exc.during, object_name=exc.object_name),
        )
    except ZoneAsleepError as exc:
        fail("asleep", advice(("asleep",), conversion, during=_doing(exc.during, None)), exc, during=exc.during)
    except SifClientError as exc:
        fail(
            "protocol",
            f"The ZIS answered something that is not valid SIF: {exc}. Check that the ZIS URL is the "
            "zone's SIF address, not a web page, a login page or a proxy's error page.",
            exc,
        )
