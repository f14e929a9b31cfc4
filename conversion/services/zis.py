"""The Django side of sifclient: an Agent for a conversion, from its stored settings."""
from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator

from sifclient import Agent, HttpTransport, SifClientError, SifError, TransportError, ZisTlsError

from conversion.jobs import JobFailed, Progress
from conversion.models import Conversion

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
    return base if base.endswith("/" + zone) else f"{base}/{zone}"


def source_id(conversion: Conversion) -> str:
    return conversion.agent_source_id or f"KIMONO_{conversion.district.slug.upper().replace('-', '_')}"


@contextlib.contextmanager
def agent_for(conversion: Conversion, *, timeout: float = 60.0) -> Iterator[Agent]:
    """An Agent for the conversion's zone; a custom CA bundle is written to a private temp file."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=True) as ca_file:
        verify: bool | str = True
        if conversion.zis_ca_bundle.strip():
            ca_file.write(conversion.zis_ca_bundle)
            ca_file.flush()
            verify = ca_file.name
        auth = (conversion.zis_username, conversion.zis_password) if conversion.zis_username else None
        transport = HttpTransport(zone_url(conversion), timeout=timeout, verify=verify, auth=auth)
        try:
            yield Agent(transport, source_id=source_id(conversion), name="Canvas SIS platform",
                        max_buffer_size=MAX_BUFFER_SIZE)
        finally:
            close = getattr(transport, "close", None)
            if close:
                close()


@contextlib.contextmanager
def zis_failures(conversion: Conversion, progress: Progress | None = None) -> Iterator[None]:
    """sifclient's errors as JobFailed with advice; the kind and the raw text go into the job's detail."""

    def fail(kind: str, message: str, exc: Exception):
        if progress is not None:
            progress.update(detail={"error_kind": kind, "raw_error": str(exc)}, force=True)
        raise JobFailed(message) from exc

    try:
        yield
    except ZisTlsError as exc:
        fail("tls", "The ZIS certificate was not trusted. If the ZIS uses a private certificate authority, paste "
                    f"its CA certificate into the ZIS settings. ({exc})", exc)
    except TransportError as exc:
        fail("transport", f"Could not reach the ZIS at {zone_url(conversion)}: {exc}", exc)
    except SifError as exc:
        fail("sif", f"The ZIS refused: {exc}", exc)
    except SifClientError as exc:
        fail("protocol", f"The ZIS answered something that is not valid SIF: {exc}", exc)
