"""The CSV build's output pinned byte for byte on a seeded district: a faster build (issue 18) must write exactly
the package the roster work wrote. The digests are sis_csv.zip_fingerprint (sha256 of every CSV's bytes, in name
order) of the package main built before the build was reworked; a change of the package's content is a change of
PACKAGE_FORMAT too, and then these digests are updated on purpose."""

from __future__ import annotations

import datetime as dt

import pytest

from conversion.services.legacy import GeneratorSource
from conversion.services.roster import Policy, Roster
from conversion.services.sis_csv import build_package
from sifclient.powerschool import DistrictSpec

SPEC = DistrictSpec(students=300, schools=2, school_year=2027, seed=11, departed_students=3, co_teachers=True)
COMBINED = Policy(login_rule="pattern", login_pattern="{local_id}@students.example.org", course_grouping="combined")


@pytest.mark.parametrize(
    ("policy", "digest"),
    [
        (Policy(), "3539590372b612ef62591b973093159ca8b5d9ba6d24c2f71f03f4c7569708a3"),
        (COMBINED, "b37f7fb55b2b3412f6386c30621127cf882f7ab5ad5d2232225c7b8745ca3035"),
    ],
)
def test_the_package_of_a_seeded_district_is_byte_for_byte_what_it_was(tmp_path, policy, digest):
    roster = Roster(GeneratorSource(SPEC), school_year=2027, policy=policy, as_of=dt.date(2027, 4, 20))
    package = build_package(roster, tmp_path / "p.zip")
    assert package.counts == {
        "accounts": 2,
        "terms": 3,
        "courses": 32,
        "sections": 32,
        "users": 318,
        "enrollments": 1248,
    }
    assert package.fingerprint == digest
