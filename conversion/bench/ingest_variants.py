"""The three ways of ingesting one pull that the benchmark compares, each run in its own child process.

(a) ``product``: conversion.services.pull.Ingest, the code path a real pull takes (seen() then handle()
    per delivered packet, records stored as SifRecord rows in PostgreSQL), then finish_snapshot.
(b) ``bare``: lxml iterparse of the same bytes, counting objects, storing nothing: the ceiling the issue
    names. ``bare_whole`` is the same count with each packet parsed whole (etree.fromstring), the way the
    product parses a packet: the ceiling of the product's own parse.
(c) ``naive``: each packet parsed whole, every object typed and saved with one ORM save; run on a sample
    and extrapolated (the full run would take hours at 200k students).
"""

from __future__ import annotations

import io
import time
from typing import Any

from lxml import etree

from conversion.bench.datafiles import PullFiles, iter_frames, iter_pull, request_msg_id

_SAFE: dict[str, Any] = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
_OBJECT_DATA = "{http://www.sifinfo.org/infrastructure/2.x}SIF_ObjectData"


def _scratch_conversion(label: str):
    from conversion.models import Conversion, District, Job, JobKind

    district = District.objects.create(name=f"Bench {label}", slug=f"bench-{label}-{time.time_ns()}")
    conversion = Conversion.objects.create(district=district, school_year=2027)
    job = Job.objects.create(conversion=conversion, kind=JobKind.PULL)
    return conversion, job


def product(files: PullFiles) -> dict:
    from conversion.models import SifRecord, Snapshot
    from conversion.services import pull
    from conversion.services.zis import PULL_OBJECTS
    from sifclient.streaming import scan_message

    conversion, job = _scratch_conversion(f"{files.students}")
    snapshot = Snapshot.objects.create(
        conversion=conversion,
        job=job,
        requests={name: pull.new_request(request_msg_id(name)) for name in PULL_OBJECTS},
    )
    ingest = pull.Ingest(conversion, snapshot, progress=None)
    started, cpu_started = time.perf_counter(), time.process_time()
    for _, data in iter_pull(files):
        delivered = scan_message(data).delivered  # what Agent.drain hands to the handler
        if delivered is None:
            raise RuntimeError("a bench packet delivers no message")
        if not ingest.seen(delivered.msg_id):
            ingest.handle(delivered)
    ingest_seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    stored = SifRecord.objects.filter(snapshot=snapshot).count()
    if not ingest.complete() or stored != files.total_objects:
        raise RuntimeError(f"ingest stored {stored} of {files.total_objects} objects")
    started = time.perf_counter()
    pull.finish_snapshot(snapshot)
    finish_seconds = time.perf_counter() - started
    return {
        "objects": stored,
        "seconds": ingest_seconds,
        "cpu_seconds": cpu_seconds,
        "finish_seconds": finish_seconds,
        "snapshot": snapshot.pk,
        "conversion": conversion.pk,
    }


def bare(files: PullFiles) -> dict:
    objects = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    for _, data in iter_pull(files):
        container = None
        for event, element in etree.iterparse(io.BytesIO(data), events=("start", "end"), **_SAFE):
            if event == "start":
                if element.tag == _OBJECT_DATA:
                    container = element
                continue
            if container is not None and element.getparent() is container:
                objects += 1
                element.clear()
                while element.getprevious() is not None:
                    del container[0]
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    if objects != files.total_objects:
        raise RuntimeError(f"iterparse counted {objects} of {files.total_objects} objects")
    return {"objects": objects, "seconds": seconds, "cpu_seconds": cpu_seconds}


def bare_whole(files: PullFiles) -> dict:
    parser = etree.XMLParser(**_SAFE)
    objects = 0
    started = time.perf_counter()
    for _, data in iter_pull(files):
        root = etree.fromstring(data, parser)
        for container in root.iter(_OBJECT_DATA):
            objects += len(container)
    seconds = time.perf_counter() - started
    if objects != files.total_objects:
        raise RuntimeError(f"fromstring counted {objects} of {files.total_objects} objects")
    return {"objects": objects, "seconds": seconds}


def naive(files: PullFiles, sample: int) -> dict:
    """Whole-document parse and one ORM save per object, on about `sample` objects spread over the kinds."""
    from conversion.models import Snapshot
    from conversion.services.sifdata import row_for
    from sifclient.records import record_from_xml
    from sifclient.safexml import new_parser

    conversion, job = _scratch_conversion(f"naive-{files.students}")
    snapshot = Snapshot.objects.create(conversion=conversion, job=job)
    done = 0
    seconds = 0.0
    for name in files.objects:
        quota = min(files.objects[name], max(20, sample * files.objects[name] // files.total_objects))
        taken = 0
        for number, data in enumerate(iter_frames(files.path(name))):
            if taken >= quota:
                break
            started = time.perf_counter()
            root = etree.fromstring(data, new_parser())
            container = next(root.iter(_OBJECT_DATA))
            parse_seconds = time.perf_counter() - started
            started = time.perf_counter()
            used = 0
            for ordinal, element in enumerate(container):
                if taken >= quota:
                    break
                record = record_from_xml(element)
                row_for(snapshot, record, str(number), ordinal).save()
                taken += 1
                used += 1
            # The whole-document parse is charged for the share of the packet the sample used.
            seconds += time.perf_counter() - started + parse_seconds * used / max(1, len(container))
        done += taken
    return {
        "objects": done,
        "seconds": seconds,
        "sampled": True,
        "extrapolated_seconds": seconds * files.total_objects / done,
    }
