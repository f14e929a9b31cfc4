"""Step 2's pull (and every nightly sync's): request each object from the zone and store what streams in.

Each delivered packet is stored in one transaction (its records, in bulk, and a ReceivedMessage row)
before it is acked, so a worker killed mid-pull loses nothing: the ZIS redelivers what was not acked,
and a redelivered SIF_MsgId is recognised and acked without storing it twice.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from conversion.jobs import JobFailed, Progress
from conversion.models import Conversion, Job, ReceivedMessage, SifRecord, Snapshot, SnapshotState
from conversion.services.diagnostics import refreshes_diagnostics
from conversion.services.sif_keys import payload_rows
from conversion.services.sif_store import gc_paused, store_rows
from conversion.services.sif_tally import Tally, tally_of_rows
from conversion.services.sifdata import data_of
from conversion.services.zis import (
    PULL_OBJECTS,
    advice,
    agent_for,
    record_agent_notes,
    register,
    response_errors_failure,
    zis_failures,
)
from sifclient import Delivered, ZoneAsleepError

log = logging.getLogger(__name__)

BATCH = 2000
# How long the zone may stay silent, with requests still unanswered, before the pull gives up.
IDLE_TIMEOUT_SECONDS = getattr(settings, "PULL_IDLE_TIMEOUT_SECONDS", 120)
POLL_SECONDS = 0.5
KEEP_SNAPSHOTS = 3


class Ingest:
    """Stores delivered packets into the receiving snapshots of one conversion."""

    def __init__(self, conversion: Conversion, snapshot: Snapshot, progress: Progress | None):
        self.conversion = conversion
        self.snapshot = snapshot
        self.progress = progress
        # request SIF_MsgId -> (snapshot, object name), over every snapshot still receiving, so the late
        # answers to a killed pull's requests are still stored where they belong.
        self.requests: dict[str, tuple[Snapshot, str]] = {}
        for snap in Snapshot.objects.filter(conversion=conversion, state=SnapshotState.RECEIVING):
            snap = self.snapshot if snap.pk == snapshot.pk else snap
            for name, info in snap.requests.items():
                self.requests[info["msg_id"]] = (snap, name)
        self.last_activity = time.monotonic()
        # The progress bar counts records: the last complete pull's total is the estimate of this one's.
        previous = (
            Snapshot.objects.filter(conversion=conversion, state=SnapshotState.COMPLETE)
            .order_by("-completed_at", "-id")
            .values_list("counts", flat=True)
            .first()
        )
        self.expected_records = sum((previous or {}).values())

    def seen(self, msg_id: str) -> bool:
        return ReceivedMessage.objects.filter(conversion=self.conversion, msg_id=msg_id).exists()

    def handle(self, delivered: Delivered) -> None:
        self.last_activity = time.monotonic()
        if delivered.kind == "event":
            self._store_event(delivered)
        else:
            self._store_response(delivered)

    def _store_event(self, delivered: Delivered) -> None:
        # Unsolicited events (state reporting plug-ins, say) are counted for diagnostics, not ingested.
        with transaction.atomic():
            snap = Snapshot.objects.select_for_update().get(pk=self.snapshot.pk)
            events = snap.summary.setdefault("events", {})
            key = f"{delivered.object_name or 'unknown'}:{delivered.action or ''}"
            events[key] = events.get(key, 0) + 1
            snap.save(update_fields=["summary"])
            self.snapshot.summary = snap.summary
            ReceivedMessage.objects.create(
                conversion=self.conversion,
                msg_id=delivered.msg_id,
                snapshot=snap,
                kind="event",
                object_name=delivered.object_name or "",
            )

    def _store_response(self, delivered: Delivered) -> None:
        target = self.requests.get(delivered.request_msg_id or "")
        if target is None:
            # An answer to a request no receiving snapshot made (e.g. one already abandoned): nothing to
            # store it in. It is recorded as seen so it is not counted twice, and acked.
            ReceivedMessage.objects.create(
                conversion=self.conversion,
                msg_id=delivered.msg_id,
                kind="orphan",
                object_name=delivered.object_name or "",
            )
            log.warning("response %s to unknown request %s dropped", delivered.msg_id, delivered.request_msg_id)
            return
        snap, name = target
        count = 0
        packet = delivered.packet_number or 0
        if packet and packet in snap.requests[name].get("packet_numbers", ()):
            # A second answer to the same request: a ZIS without duplicate detection (OpenZIS) queues a
            # re-sent SIF_Request again, and its provider answers each copy in messages of their own
            # SIF_MsgIds. The packet is stored once, by request and packet number; the copy is acked.
            ReceivedMessage.objects.create(
                conversion=self.conversion, msg_id=delivered.msg_id, snapshot=snap, kind="duplicate", object_name=name
            )
            return
        added = Tally()
        with transaction.atomic():
            if delivered.error is None:

                def rows():  # parsed while stored; parsed again if the packet repeats a stored RefId
                    return payload_rows(delivered.raw, max_bytes=delivered.max_bytes, arrived_in=delivered.msg_id)

                with gc_paused():
                    count = store_rows(snap, rows, added)
            locked = Snapshot.objects.select_for_update().get(pk=snap.pk)
            info = locked.requests[name]
            if "tally" in info:  # the request's rows so far, kept for finish_snapshot (sif_tally)
                if added.complete:
                    tally = Tally.from_json(info["tally"])
                    tally.merge(added)
                    info["tally"] = tally.to_json()
                else:
                    del info["tally"]  # finish_snapshot counts the rows instead
            info["packets"] += 1
            info["records"] += count
            if packet:
                info.setdefault("packet_numbers", []).append(packet)
            if not delivered.more_packets:
                info["last_packet"] = delivered.packet_number or info["packets"]
            if delivered.error is not None:
                info["error"] = str(delivered.error)
                info["last_packet"] = info["packets"]
            locked.save(update_fields=["requests"])
            snap.requests = locked.requests
            ReceivedMessage.objects.create(
                conversion=self.conversion,
                msg_id=delivered.msg_id,
                snapshot=locked,
                kind="response",
                object_name=name,
                record_count=count,
            )
        if snap.pk == self.snapshot.pk:
            self._report()

    def _report(self) -> None:
        if self.progress is None:
            return
        reqs = self.snapshot.requests
        done = sum(1 for info in reqs.values() if is_complete(info))
        records = sum(info["records"] for info in reqs.values())
        current = next((n for n, info in reqs.items() if info["packets"] and not is_complete(info)), None)
        message = f"{records:,} records stored; {done} of {len(reqs)} object types complete"
        if current:
            message += f"; receiving {current} (packet {reqs[current]['packets']})"
        # With no earlier pull the total is unknown: total 0 leaves the bar indeterminate.
        total = max(self.expected_records, records) if self.expected_records else 0
        self.progress.update(
            current=records,
            total=total,
            message=message,
            detail={
                "objects": {
                    n: {
                        "records": i["records"],
                        "packets": i["packets"],
                        "done": is_complete(i),
                        "error": i.get("error"),
                    }
                    for n, i in reqs.items()
                }
            },
        )

    def complete(self) -> bool:
        return all(is_complete(info) for info in self.snapshot.requests.values())


def is_complete(info: dict) -> bool:
    return info.get("last_packet") is not None and info["packets"] >= info["last_packet"]


def new_request(msg_id: str) -> dict:
    """What a snapshot keeps of one request it sent: the answers' packets and records, and their tally."""
    return {"msg_id": msg_id, "packets": 0, "last_packet": None, "records": 0, "error": None, "tally": {}}


def receiving_snapshot(conversion: Conversion, job: Job) -> Snapshot:
    """The job's snapshot: the one it already started (a retried job resumes it), or a new one."""
    snapshot = Snapshot.objects.filter(job=job).order_by("-id").first()
    if snapshot is None or snapshot.state != SnapshotState.RECEIVING:
        snapshot = Snapshot.objects.create(conversion=conversion, job=job)
    return snapshot


def pull(
    conversion: Conversion, *, job: Job, progress: Progress | None = None, idle_timeout: float = IDLE_TIMEOUT_SECONDS
) -> Snapshot:
    """Pull every object into a snapshot and complete it. Raises JobFailed with a clear reason."""
    snapshot = receiving_snapshot(conversion, job)
    with zis_failures(conversion, progress):
        with agent_for(conversion) as agent:
            register(conversion, agent, progress)
            for name in PULL_OBJECTS:
                if name not in snapshot.requests:
                    msg_id = agent.request(name)
                    snapshot.requests[name] = new_request(msg_id)
                    snapshot.save(update_fields=["requests"])
            ingest = Ingest(conversion, snapshot, progress)
            ingest._report()
            started = time.monotonic()
            while True:
                stats = agent.drain(ingest.handle, seen=ingest.seen)
                record_agent_notes(conversion, agent, progress)
                if stats.stopped_by == "sleeping":
                    raise ZoneAsleepError("SIF_GetMessage")  # the agent paused and asked again already
                if ingest.complete():
                    break
                if progress is not None:
                    progress.update()  # a quiet zone still renews the lease and sees a consultant's cancel
                if time.monotonic() - started > settings.PULL_MAX_SECONDS:
                    raise JobFailed(
                        f"The pull did not complete within {settings.PULL_MAX_SECONDS / 3600:g} hours, the longest "
                        "a pull may run (the zone kept it going with a trickle of packets). Check the ZIS and the "
                        "PowerSchool SIF agent, then pull again."
                    )
                if time.monotonic() - ingest.last_activity > idle_timeout:
                    raise JobFailed(no_answer_message(snapshot, idle_timeout, conversion))
                time.sleep(POLL_SECONDS)
    finish_snapshot(snapshot)
    errors = {n: i["error"] for n, i in snapshot.requests.items() if i.get("error")}
    if errors:
        raise response_errors_failure(conversion, errors, progress)
    return snapshot


def no_answer_message(snapshot: Snapshot, idle_timeout: float, conversion: Conversion) -> str:
    order = {name: index for index, name in enumerate(PULL_OBJECTS)}
    waiting = sorted((n for n, i in snapshot.requests.items() if not is_complete(i)), key=lambda n: order.get(n, 99))
    silent = [n for n in waiting if not snapshot.requests[n]["packets"]]
    if waiting and len(waiting) < len(snapshot.requests):
        # Everything else arrived: these never began (a ZIS that drops empty answers, or a first packet too large
        # for our buffer) or stopped half way (a later packet too large, which OpenZIS drops with all after it).
        parts = []
        if silent:
            parts.append(
                f"No answer for {', '.join(silent)} within {int(idle_timeout)} s. "
                + advice(("no_answer",), conversion, object=", ".join(silent))
            )
        for name in (n for n in waiting if n not in silent):
            parts.append(
                advice(("no_answer", "partial"), conversion, object=name, packet=snapshot.requests[name]["packets"])
            )
        return " ".join(parts)
    return (
        f"The zone stopped answering: no data for {int(idle_timeout)} s while waiting for "
        f"{', '.join(waiting)}. Check that the PowerSchool SIF agent is running and provides them."
    )


def finish_snapshot(snapshot: Snapshot) -> None:
    """Count, summarise and fingerprint a fully received snapshot, and mark it complete.

    The counts, school years and fingerprint were tallied packet by packet as the rows were stored
    (sif_tally); a snapshot with a request whose rows were not all tallied is counted from its rows.
    """
    tallies = [info.get("tally") for info in snapshot.requests.values()]
    if snapshot.requests and all(t is not None for t in tallies):
        tally = Tally()
        for part in tallies:
            tally.merge(Tally.from_json(part or {}))
    else:
        tally = tally_of_rows(
            SifRecord.objects.filter(snapshot=snapshot)
            .values_list("object_name", "digest", "school_year")
            .iterator(chunk_size=10000)
        )
    has_errors = any(info.get("error") for info in snapshot.requests.values())
    snapshot.counts = dict(tally.objects)
    snapshot.summary = {**snapshot.summary, "school_years": tally.school_years, "schools": school_summary(snapshot)}
    snapshot.fingerprint = tally.fingerprint
    snapshot.state = SnapshotState.FAILED if has_errors else SnapshotState.COMPLETE
    snapshot.completed_at = timezone.now()
    snapshot.save(update_fields=["counts", "summary", "fingerprint", "state", "completed_at"])
    if not has_errors:
        prune_snapshots(snapshot.conversion)


def school_summary(snapshot: Snapshot) -> list[dict]:
    """Per school: name, number, students enrolled, sections, staff — the table the district verifies."""
    from django.db.models import Count

    records = SifRecord.objects.filter(snapshot=snapshot)
    schools = {
        r.ref_id: {
            "ref_id": r.ref_id,
            "name": data_of(r.xml).get("name", ""),
            "local_id": r.local_id,
            "dcid": r.dcid,
            "students": 0,
            "sections": 0,
            "staff": 0,
        }
        for r in records.filter(object_name="SchoolInfo")
    }

    def add(object_name: str, key: str, field: str = "school_ref_id") -> None:
        for row in records.filter(object_name=object_name).values(field).annotate(n=Count("id")):
            school = schools.setdefault(
                row[field] or "",
                {
                    "ref_id": row[field],
                    "name": "(unknown school)",
                    "local_id": "",
                    "dcid": "",
                    "students": 0,
                    "sections": 0,
                    "staff": 0,
                },
            )
            school[key] += row["n"]

    add("StudentSchoolEnrollment", "students")
    add("StaffAssignment", "staff")
    # SectionInfo names its course, and the course names its school.
    course_school = {
        ref: school
        for ref, school in records.filter(object_name="SchoolCourseInfo").values_list("ref_id", "school_ref_id")
    }
    for xml in records.filter(object_name="SectionInfo").values_list("xml", flat=True).iterator(chunk_size=5000):
        school = schools.get(course_school.get(data_of(xml, ("course_ref_id",)).get("course_ref_id") or "", ""))
        if school:
            school["sections"] += 1
    return sorted(schools.values(), key=lambda s: (s["local_id"] or "~", s["name"]))


def prune_snapshots(conversion: Conversion) -> None:
    """Keep the newest complete snapshots and any a district approval or mapping diff still points at."""
    from conversion.models import Approval, MappingDiff

    keep = set(
        Snapshot.objects.filter(conversion=conversion, state=SnapshotState.COMPLETE)
        .order_by("-completed_at")
        .values_list("pk", flat=True)[:KEEP_SNAPSHOTS]
    )
    keep |= {
        int(s.split(":")[1])
        for s in Approval.objects.filter(conversion=conversion, subject__startswith="snapshot:").values_list(
            "subject", flat=True
        )
    }
    keep |= set(MappingDiff.objects.filter(conversion=conversion).values_list("snapshot_id", flat=True))
    old = Snapshot.objects.filter(conversion=conversion).exclude(pk__in=keep).exclude(state=SnapshotState.RECEIVING)
    SifRecord.objects.filter(snapshot__in=old).delete()
    old.delete()


@refreshes_diagnostics  # diagnostics follow every pull and connection test, failed or not
def run_pull(job: Job, progress: Progress) -> None:
    snapshot = pull(job.conversion, job=job, progress=progress)
    total = sum(snapshot.counts.values())
    notes = (progress.job.detail or {}).get("agent_notes") or []
    progress.update(
        current=total,
        total=total,
        message=f"{total:,} records from {len(snapshot.counts)} object types"
        + (f" ({' '.join(notes)})" if notes else ""),
        detail={"snapshot": snapshot.pk},
        force=True,
    )
