"""The sync's CSVs send only what the product knows, and the district's sign-in provider on every login.

canvas-lms reads an empty cell and a missing column alike (lib/sis/csv/csv_base_importer.rb, PARSE_ARGS), except
where an importer asks whether the column is there (course, section and term dates); and for a few columns an
empty value erases what Canvas holds: lib/sis/user_importer.rb Work#process_batch unbinds a login from its
provider when authentication_provider_id is empty. See canvas.csv_formats.BLANK_CELLS.
"""

from __future__ import annotations

import csv
import io
import zipfile

from conversion.services.legacy import GeneratorSource
from conversion.services.roster import DCID, Roster
from conversion.services.sis_csv import build_package
from sifclient.powerschool import DistrictSpec

SPEC = DistrictSpec(students=20, schools=1, school_year=2027, seed=5)


def tables(path) -> dict[str, list[list[str]]]:
    with zipfile.ZipFile(path) as archive:
        return {
            name: list(csv.reader(io.StringIO(archive.read(name).decode(), newline=""))) for name in archive.namelist()
        }


def test_the_package_leaves_out_every_column_the_product_never_fills(tmp_path):
    package = build_package(Roster(GeneratorSource(SPEC), school_year=2027), tmp_path / "p.zip", scheme=DCID)
    files = tables(package.path)
    headers = {name: rows[0] for name, rows in files.items()}
    assert headers["users.csv"] == [
        "user_id",
        "login_id",
        "first_name",
        "last_name",
        "email",
        "declared_user_type",
        "status",
    ]
    assert headers["courses.csv"] == ["course_id", "short_name", "long_name", "account_id", "term_id", "status"]
    assert headers["sections.csv"] == ["section_id", "course_id", "name", "status"]
    assert headers["enrollments.csv"] == ["section_id", "user_id", "role", "status"]
    for name, header in headers.items():
        for column in (
            "authentication_provider_id",
            "password",
            "course_format",
            "integration_id",
            "blueprint_course_id",
            "grade_passback_setting",
            "homeroom_course",
        ):
            assert column not in header, (name, column)


def test_the_district_s_sign_in_provider_goes_on_every_user_row(tmp_path):
    package = build_package(
        Roster(GeneratorSource(SPEC), school_year=2027),
        tmp_path / "p.zip",
        scheme=DCID,
        authentication_provider_id="12",
    )
    header, *rows = tables(package.path)["users.csv"]
    at = header.index("authentication_provider_id")
    assert rows and {row[at] for row in rows} == {"12"}


def test_the_schools_stay_under_the_district_s_parent_account(tmp_path):
    # lib/sis/account_importer.rb Work#add_account: an empty parent_account_id re-parents under the root account.
    package = build_package(
        Roster(GeneratorSource(SPEC), school_year=2027), tmp_path / "p.zip", scheme=DCID, parent_account_id="schools"
    )
    header, *rows = tables(package.path)["accounts.csv"]
    assert rows and {row[header.index("parent_account_id")] for row in rows} == {"schools"}
