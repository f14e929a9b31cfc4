"""The Django side of sifclient: an Agent for a conversion, from its stored settings."""
from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from sifclient import (
    Agent, HttpTransport, SifClientError, SifError, SifErrorInfo, TransportError, ZisHttpStatusError,
    ZisTimeoutError, ZisTlsError,
)
from sifclient.errors import (
    CAT_ACCESS, CAT_REGISTRATION, CODE_ACCESS_SOURCE_ID_NOT_REGISTERED, CODE_REG_REGISTERED_FOR_PUSH,
)

from conversion.jobs import JobFailed, Progress
from conversion.models import Conversion
from conversion.models.conversion import validate_zone_id
from conversion.services import peers

# What our agent asks the zone for, in the order a sync needs them (schools before people, people
# before enrollments). PowerSchool's agent publishes all of them by default.
PULL_OBJECTS: tuple[str, ...] = (
    "LEAInfo", "SchoolInfo", "TermInfo", "SchoolCourseInfo", "SectionInfo", "StaffPersonal",
    "StaffAssignment", "StudentPersonal", "StudentSchoolEnrollment", "StudentSectionEnrollment",
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
        peers.check_url(conversion.zis_url, what="ZIS URL", unknown_host_ok=True)  # again now: a name may point elsewhere since
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
            yield Agent(transport, source_id=source_id(conversion), name="Canvas SIS platform",
                        max_buffer_size=MAX_BUFFER_SIZE, retries=options["retries"],
                        retry_delay=options["retry_delay"])
        finally:
            close = getattr(transport, "close", None)
            if close:
                close()


# What each SIF_Error category (named by sifclient.errors.ERROR_CATEGORIES) asks of the implementation
# consultant. {source_id} is our agent's SourceId, {object} the object concerned.
SIF_ERROR_ADVICE: dict[int, str] = {
    0: "The ZIS gave no category: send this message to the ZIS administrator.",
    1: "The ZIS found our message invalid, which usually means the zone expects another SIF version: check the "
       "zone's SIF version in the ZIS (this platform speaks SIF 2.x) and send this message to support.",
    2: "The ZIS wants message encryption this platform does not use: in the ZIS, set the encryption level "
       "required of agent {source_id} to none (the connection itself is encrypted with HTTPS).",
    3: "The ZIS did not accept who our agent is: check that agent {source_id} is defined in the zone and that "
       "the user name, password and certificate in the ZIS settings are the ones the ZIS expects.",
    4: "Agent {source_id} lacks a permission in the ZIS: check its access control list (ACL) in the zone; it "
       "needs permission to register and to request {object}.",
    5: "The ZIS refused the agent's registration: check that the SourceId ({source_id}) is the agent defined in "
       "the zone, that it may register in Pull mode with SIF 2.x, then re-register it by running the "
       "connection test again.",
    6: "The zone's provisioning is wrong: the PowerSchool SIF agent must provide {object} in this zone; check the "
       "objects it provides in the ZIS and in the PowerSchool SIF agent's settings.",
    7: "The zone refused a subscription: check in the ZIS that agent {source_id} may subscribe to {object} and "
       "that the PowerSchool SIF agent publishes it.",
    8: "The request for {object} could not be answered: check that the PowerSchool SIF agent is running, "
       "connected to the zone and provides {object}, then run the pull again.",
    9: "The zone refused an event: check the event permissions (publish Add/Change/Delete) of agent {source_id} "
       "in the ZIS.",
    10: "The ZIS could not pass the message on to the PowerSchool SIF agent: check that the agent is running, "
        "registered in Pull mode (or reachable at its Push URL) and connected to the zone, then retry.",
    11: "The ZIS had an internal failure (database, operating system). This is usually transient: retry later; "
        "if it persists, ask the ZIS administrator to check the ZIS's logs.",
    12: "The ZIS could not handle the message (unsupported message or version, or a protocol error): check the "
        "zone's SIF version in the ZIS, then retry; if it persists, send this message to support.",
    13: "The ZIS reports a selective message blocking (SMB) problem with our agent's queue: retry; if it "
        "persists, ask the ZIS administrator to clear the queue of agent {source_id}.",
    14: "The zone is not ready or a zone service failed: check the zone's state in the ZIS, then retry.",
}

# Advice for single codes that ask for something else than their category's advice: (category, code) -> advice.
SIF_ERROR_CODE_ADVICE: dict[tuple[int, int], str] = {
    # Our agent registers again once on 4/9 (a ZIS that restarted forgets its agents); this is read when the ZIS
    # still does not know it.
    (CAT_ACCESS, CODE_ACCESS_SOURCE_ID_NOT_REGISTERED):
        "The ZIS does not know agent {source_id}: it answered that this SIF_SourceId is not registered although "
        "our agent had registered (and registered once more when told so). Check in the ZIS that the agent defined "
        "in the zone has the SourceId {source_id} and that the ZIS keeps its registration, then re-register it by "
        "running the connection test again.",
    # 5/9 answers SIF_GetMessage when the ZIS holds the agent in Push mode; registering again is no cure.
    (CAT_REGISTRATION, CODE_REG_REGISTERED_FOR_PUSH):
        "The ZIS has agent {source_id} in Push mode, so it does not hand over messages to be pulled: set the agent "
        "to Pull mode in the ZIS agent settings (this platform only pulls), then run the connection test again.",
}

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


def describe_sif_error(conversion: Conversion, info: SifErrorInfo, *, during: str | None = None,
                       object_name: str | None = None) -> str:
    """A SIF_Error in words: what we sent, the category, the ZIS's own description, and what to do."""
    text = info.description + (f" ({info.extended_description})" if info.extended_description else "")
    advice = SIF_ERROR_CODE_ADVICE.get((info.category, info.code)) or SIF_ERROR_ADVICE.get(
        info.category, SIF_ERROR_ADVICE[0])
    advice = advice.format(source_id=source_id(conversion), object=object_name or "the objects the pull asks for")
    who = "The zone answered" if during == "SIF_Response" else "The ZIS refused"
    # Advice before the ZIS's own words: a page that shows only the first 300 characters keeps it.
    return (f"{who} {_doing(during, object_name)} with a SIF_Error: {info.category_name} error. What to do: "
            f"{advice} The ZIS said (category {info.category}, code {info.code}): \"{text}\"")


def sif_error_detail(info: SifErrorInfo, *, during: str | None = None, object_name: str | None = None) -> dict:
    """The raw facts of a SIF_Error for the job's detail (diagnostics read category and code)."""
    return {"category": info.category, "code": info.code, "description": info.description or "",
            "category_name": info.category_name, "extended_description": info.extended_description,
            "during": during, "object": object_name}


# SifErrorInfo.__str__ as stored in a snapshot's requests ("SIF error category 4 (...), code 5: text").
_STORED_SIF_ERROR = re.compile(r"SIF error category (\d+) \(.*?\), code (\d+): (.*)", re.DOTALL)


def stored_sif_error(text: str) -> SifErrorInfo:
    """Back from the stored text to the error (the extended description stays in the description)."""
    match = _STORED_SIF_ERROR.fullmatch(text or "")
    if match is None:
        return SifErrorInfo(0, 0, text or "")
    return SifErrorInfo(int(match[1]), int(match[2]), match[3])


def response_errors_failure(conversion: Conversion, errors: dict[str, str], progress: Progress | None = None
                            ) -> JobFailed:
    """The JobFailed for SIF_Responses that carried a SIF_Error (object name -> stored error text)."""
    described, details = [], []
    for name, text in errors.items():
        info = stored_sif_error(text)
        described.append(describe_sif_error(conversion, info, during="SIF_Response", object_name=name))
        details.append(sif_error_detail(info, during="SIF_Response", object_name=name))
    if progress is not None:
        raw = "; ".join(f"{n}: {e}" for n, e in errors.items())
        progress.update(detail={"error_kind": "sif", "raw_error": raw, "sif_error": details[0],
                                "sif_errors": details}, force=True)
    if len(described) == 1:
        return JobFailed(described[0] + " This pull's data is kept aside and not used.")
    return JobFailed(f"The zone answered {len(described)} requests with SIF errors; this pull's data is kept "
                     "aside and not used.\n" + "\n".join(described))


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
        fail("tls", "The ZIS certificate was not trusted. If the ZIS uses a private certificate authority, paste "
                    f"its CA certificate into the ZIS settings. ({exc})", exc)
    except ZisTimeoutError as exc:
        fail("timeout", f"The ZIS at {url} timed out: no answer to {_doing(exc.during, None)} within "
                        f"{_seconds(exc.timeout)}, {_attempts(exc)}. The ZIS is down or overloaded, or the network "
                        "drops the traffic: check that the ZIS is running and answers at that address, then try "
                        "again.",
             exc, attempts=exc.attempts, timeout_seconds=exc.timeout)
    except ZisHttpStatusError as exc:
        status = exc.status_code
        if exc.transient:
            advice = ("The ZIS (or a proxy in front of it) is failing: retry later; if it persists, ask the ZIS "
                      "administrator to check the ZIS's logs.")
        elif status in (401, 403):
            advice = "Check the ZIS user name and password in the ZIS settings."
        else:
            advice = "Check the ZIS URL and the Zone ID in the ZIS settings."
        fail("http_status", f"The ZIS at {url} answered HTTP {status} to {_doing(exc.during, None)}, "
                            f"{_attempts(exc)}. {advice}", exc, attempts=exc.attempts, http_status=status)
    except TransportError as exc:
        fail("transport", f"Could not reach the ZIS at {url} ({_attempts(exc)}): {exc}. Check the ZIS URL, that "
                          "the ZIS is running, and that no firewall stands between it and this platform.",
             exc, attempts=exc.attempts)
    except SifError as exc:
        fail("sif", describe_sif_error(conversion, exc.info, during=exc.during, object_name=exc.object_name),
             exc, sif_error=sif_error_detail(exc.info, during=exc.during, object_name=exc.object_name))
    except SifClientError as exc:
        fail("protocol", f"The ZIS answered something that is not valid SIF: {exc}. Check that the ZIS URL is the "
                         "zone's SIF address, not a web page, a login page or a proxy's error page.", exc)
