"""A snapshot's counts, school years and fingerprint, kept up to date while its rows are stored.

Completing a pull once walked every stored row in (object, RefId) order to count them and hash them: about
10 s for a district of 200,000 students, mostly PostgreSQL sorting 1.2M rows. The same figures are now
added up packet by packet, in the transaction that stores the packet, so completing a snapshot reads a
few small dicts. The fingerprint is therefore order-free: the sum, modulo 2**128, of the rows' digests
(the 128-bit hash of each object's XML, which holds its object name and RefId), then hashed with the row
count. Adding a packet's rows is the same whether the packets come in order, out of order, or after a
killed worker's retry. (The composite key of an object without a RefId names the message it came in, so
unlike the key, the fingerprint of two pulls of the same data is the same.)

A snapshot whose rows were not all tallied (one resumed from a pull begun before the tally existed, or
stored where the database cannot say which rows a conflicting packet added) is counted from its rows, by
the same definition (`tally_of_rows`).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_MODULUS = 1 << 128


def row_mark(digest: str) -> int:
    """One row's part of the fingerprint: its digest, a 128-bit hash of its XML, as a number."""
    return int(digest, 16)


@dataclass
class Tally:
    """Rows per object name, rows per object name and school year, and the sum of the rows' marks."""

    objects: Counter[str] = field(default_factory=Counter)
    years: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    total: int = 0
    complete: bool = True  # False: some rows were stored without being tallied

    def add(self, object_name: str, digest: str, school_year: int | None) -> None:
        self.objects[object_name] += 1
        if school_year:
            self.years[object_name][school_year] += 1
        self.total = (self.total + row_mark(digest)) % _MODULUS

    def add_many(self, keys: list[tuple[str, int | None]], digests: list[str]) -> None:
        """Rows given as their (object name, school year) and their digests: a packet's, counted in bulk."""
        for (object_name, school_year), n in Counter(keys).items():
            self.objects[object_name] += n
            if school_year:
                self.years[object_name][school_year] += n
        self.total = (self.total + sum(int(digest, 16) for digest in digests)) % _MODULUS

    def merge(self, other: Tally) -> None:
        self.objects.update(other.objects)
        for name, years in other.years.items():
            self.years[name].update(years)
        self.total = (self.total + other.total) % _MODULUS
        self.complete = self.complete and other.complete

    @property
    def fingerprint(self) -> str:
        """sha256 of the row count and the marks' sum: the same rows give it in any order."""
        return hashlib.sha256(f"{sum(self.objects.values())}|{self.total:032x}".encode()).hexdigest()

    @property
    def school_years(self) -> dict[str, dict[str, int]]:
        """Rows per object name and school year, keyed as JSON keeps them (the year as text)."""
        return {name: {str(year): n for year, n in years.items()} for name, years in self.years.items() if years}

    def to_json(self) -> dict[str, Any]:
        return {"objects": dict(self.objects), "years": self.school_years, "sum": f"{self.total:032x}"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tally:
        tally = cls(Counter(data.get("objects") or {}), defaultdict(Counter), int(data.get("sum") or "0", 16))
        for name, years in (data.get("years") or {}).items():
            tally.years[name] = Counter({int(year): n for year, n in years.items()})
        return tally


def tally_of_rows(rows: Iterable[tuple[str, str, int | None]]) -> Tally:
    """The tally of (object name, digest, school year) rows, in any order."""
    tally = Tally()
    for object_name, digest, school_year in rows:
        tally.add(object_name, digest, school_year)
    return tally
