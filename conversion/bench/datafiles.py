"""The pull's bytes, generated once per district size into files, so every ingest variant reads the same.

A file holds the SIF_Response packets of one object, each as an 8-byte big-endian length and the
packet's bytes. Files are kept under ``var/bench/`` and reused while their manifest matches the spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sifclient.powerschool import DistrictSpec
from sifclient.zis import iter_response_packets

_LENGTH = struct.Struct(">Q")
FORMAT = 1


def spec_for(students: int) -> DistrictSpec:
    """A district of `students` with one school per 1,000 students (about 60 students per section)."""
    return DistrictSpec(seed=7, students=students, schools=max(4, students // 1000), school_year=2027)


def request_msg_id(object_name: str) -> str:
    """The SIF_MsgId of the request each object's packets answer (what Ingest matches them to)."""
    return hashlib.blake2b(object_name.encode(), digest_size=16).hexdigest().upper()


@dataclass
class PullFiles:
    """Where one size's packets are, and how many objects and bytes each object name holds."""

    directory: Path
    students: int
    objects: dict[str, int]
    packets: dict[str, int]
    bytes: dict[str, int]

    @property
    def total_objects(self) -> int:
        return sum(self.objects.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def path(self, object_name: str) -> Path:
        return self.directory / f"{object_name}.frames"

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "directory": str(self.directory)}

    @classmethod
    def from_json(cls, data: dict) -> PullFiles:
        return cls(**{**data, "directory": Path(data["directory"])})


def iter_frames(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while header := handle.read(_LENGTH.size):
            (length,) = _LENGTH.unpack(header)
            yield handle.read(length)


def iter_pull(files: PullFiles) -> Iterator[tuple[str, bytes]]:
    """(object name, packet bytes) in the order the product requests the objects."""
    for name in files.objects:  # kept in the order the product requests them
        for data in iter_frames(files.path(name)):
            yield name, data


def _write_object(spec: DistrictSpec, object_name: str, path: Path, max_buffer_size: int) -> tuple[str, int, int, int]:
    objects = packets = size = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as handle:
        for packet in iter_response_packets(
            spec, object_name, max_buffer_size, request_msg_id=request_msg_id(object_name)
        ):
            handle.write(_LENGTH.pack(len(packet.data)))
            handle.write(packet.data)
            objects += packet.record_count
            packets += 1
            size += len(packet.data)
    tmp.replace(path)
    return object_name, objects, packets, size


def ensure_pull_files(root: Path, students: int, *, workers: int = 2, say=print) -> PullFiles:
    """The files for a district of `students`, generated (in `workers` processes) unless already there."""
    from conversion.services.zis import MAX_BUFFER_SIZE, PULL_OBJECTS

    spec = spec_for(students)
    directory = root / f"students-{students}"
    manifest = directory / "manifest.json"
    wanted = {"format": FORMAT, "spec": dataclasses.asdict(spec), "max_buffer_size": MAX_BUFFER_SIZE}
    if manifest.exists():
        stored = json.loads(manifest.read_text())
        if stored.get("key") == wanted:
            return PullFiles.from_json(stored["files"])
    directory.mkdir(parents=True, exist_ok=True)
    say(f"generating the pull of {students:,} students into {directory} (once; reused afterwards)")
    # The big objects first so the two workers finish together.
    names = sorted(
        PULL_OBJECTS,
        key=lambda n: -{"StudentSectionEnrollment": 4, "StudentPersonal": 2, "StudentSchoolEnrollment": 1}.get(n, 0),
    )
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(
            pool.map(
                _write_object,
                [spec] * len(names),
                names,
                [directory / f"{n}.frames" for n in names],
                [MAX_BUFFER_SIZE] * len(names),
            )
        )
    by_name = {n: (o, p, s) for n, o, p, s in results}
    files = PullFiles(
        directory,
        students,
        {n: by_name[n][0] for n in PULL_OBJECTS},
        {n: by_name[n][1] for n in PULL_OBJECTS},
        {n: by_name[n][2] for n in PULL_OBJECTS},
    )
    manifest.write_text(json.dumps({"key": wanted, "files": files.to_json()}, indent=1))
    return files
