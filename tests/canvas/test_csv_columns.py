"""The writers leave out a column no row fills: to canvas-lms an empty cell is not "no opinion" for every column.

canvas.csv_formats.BLANK_CELLS documents, per column the writers can send, what an empty cell does in canvas-lms's
importers (lib/sis/*_importer.rb) and cites the method; these tests hold the writer to it.
"""

from __future__ import annotations

import csv
import io

from canvas.csv_formats import BLANK_CELLS, CLEARS, CLEARS_EVEN_IF_OMITTED, FORMATS, KEEPS
from canvas.csvfiles import CourseRow, EnrollmentRow, UserRow, build_zip, csv_bytes, write_csv


def table(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def test_users_without_a_provider_are_written_without_the_provider_column():
    # lib/sis/user_importer.rb Work#process_batch: an empty authentication_provider_id unbinds the login.
    rows = [
        UserRow(user_id="u1", login_id="a@x.org", first_name="A", last_name="B", email="a@x.org"),
        UserRow(user_id="u2", login_id="c@x.org", first_name="C", last_name="D"),
    ]
    header, *body = table(csv_bytes("users", rows))
    assert header == ["user_id", "login_id", "first_name", "last_name", "email", "status"]
    assert body == [["u1", "a@x.org", "A", "B", "a@x.org", "active"], ["u2", "c@x.org", "C", "D", "", "active"]]


def test_a_column_one_row_fills_is_sent_and_the_others_leave_it_empty():
    rows = [UserRow(user_id="u1", login_id="l1", authentication_provider_id="7"), UserRow(user_id="u2", login_id="l2")]
    header, first, second = table(csv_bytes("users", rows))
    assert "authentication_provider_id" in header
    at = header.index("authentication_provider_id")
    assert (first[at], second[at]) == ("7", "")


def test_courses_leave_out_format_dates_and_blueprint_when_the_product_has_none():
    # lib/sis/course_importer.rb Work#add_course: an absent date column is 'not_present' and keeps the dates;
    # a present empty one clears them and restrict_enrollments_to_course_dates.
    data = csv_bytes(
        "courses", [CourseRow(course_id="c1", short_name="C", long_name="Course", account_id="s1", term_id="t1")]
    )
    header = table(data)[0]
    assert header == ["course_id", "short_name", "long_name", "account_id", "term_id", "status"]
    for column in (
        "course_format",
        "start_date",
        "end_date",
        "blueprint_course_id",
        "grade_passback_setting",
        "homeroom_course",
        "abstract_course_id",
        "integration_id",
    ):
        assert column not in header


def test_values_with_quotes_and_newlines_survive_the_spool():
    name = 'O\'Brien, "Pat"\r\nsecond line'
    data = csv_bytes("users", [UserRow(user_id="u1", login_id="l1", full_name=name)])
    assert table(data)[1] == ["u1", "l1", name, "active"]


def test_zipped_rows_are_written_with_the_same_rule():
    import zipfile

    content = build_zip({"enrollments.csv": [EnrollmentRow(section_id="s1", user_id="u1", role="student")]})
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        header = table(archive.read("enrollments.csv"))[0]
    assert header == ["section_id", "user_id", "role", "status"]


def test_an_empty_file_keeps_its_whole_header_so_canvas_can_tell_its_kind():
    out = io.StringIO(newline="")
    assert write_csv("enrollments", [], out) == 0
    assert out.getvalue().splitlines()[0].split(",") == list(FORMATS["enrollments"].columns)


def test_every_optional_column_of_the_product_s_files_is_documented_against_canvas():
    for kind in ("users", "accounts", "terms", "courses", "sections", "enrollments"):
        fmt = FORMATS[kind]
        optional = (
            {c for c in fmt.columns if c not in fmt.required} - set().union(*fmt.one_of)
            if fmt.one_of
            else {c for c in fmt.columns if c not in fmt.required}
        )
        documented = set(BLANK_CELLS[kind])
        # one-of columns (course_id/section_id, user_id/…, role/role_id) are filled by every valid row
        assert optional - documented == set(), kind
        assert {effect for effect, _ in BLANK_CELLS[kind].values()} <= {KEEPS, CLEARS, CLEARS_EVEN_IF_OMITTED}
