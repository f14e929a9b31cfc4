"""What Canvas held before the conversion, for the demo and the tests: the legacy roster, keyed by
PowerSchool IDs, built from the same simulated district the ZIS simulator serves.

It goes through the same Roster and CSV code as the real sync (only the user id scheme differs), plus a
little realistic drift: users who left the district but are still in Canvas, and a renamed student.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from canvas.csv_rows import UserRow
from sifclient.powerschool import District as SimulatedDistrict
from sifclient.powerschool import DistrictSpec

from conversion.services.roster import LEGACY, Roster, Row
from conversion.services.sifdata import record_data
from conversion.services.sis_csv import _Builder, write_package


class GeneratorSource:
    """Records straight from the simulated district generator (no ZIS, no database)."""

    def __init__(self, spec: DistrictSpec):
        self.district = SimulatedDistrict(spec)

    def rows(self, object_name: str, fields: tuple[str, ...] | None = None) -> Iterable[Row]:
        for _, record in self.district.iter_records(object_name):
            data = record_data(record)
            extended = data.get("extended_elements") or {}
            yield (record.ref_id, str(data.get("local_id") or ""), str(extended.get("DCID") or ""),
                   data.get("school_year"), data)


def departed_users(count: int) -> Iterator[UserRow]:
    for i in range(count):
        number = str(990000 + i)
        yield UserRow(user_id=number, login_id=f"former{number}@students.example.org", first_name="Former",
                      last_name=f"Student {i + 1}", status="active")


def write_legacy_zip(spec: DistrictSpec, dest: Path, *, departed: int = 3) -> dict[str, int]:
    """Write the legacy Canvas state (users under their PowerSchool IDs) as an SIS import zip."""
    roster = Roster(GeneratorSource(spec), school_year=spec.school_year)
    builder = _Builder(roster, LEGACY)
    write_package(dest, builder.files(extra_users=departed_users(departed)))
    counts = dict(builder.counts)
    counts["users"] = counts.get("users", 0) + departed
    return counts
