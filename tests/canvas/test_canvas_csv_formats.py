"""The CSV writers against Canvas's documented formats (parsed from the shared reference table)."""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canvas.csv_formats import FORMATS, detect_kind
from canvas.csvfiles import (
    ROW_TYPES,
    ChangeSisIdRow,
    CourseRow,
    EnrollmentRow,
    TermRow,
    UserRow,
    build_zip,
    csv_bytes,
    fingerprint,
    write_csv,
)


def docs_dir() -> Path:
    """The directory of sis_csv_formats.md: CANVAS_DOCS_DIR (the shared dir or its canvas/ child),
    else the checkout's sibling `shared/canvas`."""
    shared = Path(os.environ.get("CANVAS_DOCS_DIR") or Path(__file__).resolve().parents[2].parent / "shared")
    return shared if (shared / "sis_csv_formats.md").exists() else shared / "canvas"


def documented_formats() -> dict[str, dict]:
    """{file name: {columns: [...], required: set, one_of: set, statuses: [...], values: {col: cell}}}."""
    text = (docs_dir() / "sis_csv_formats.md").read_text(encoding="utf-8")
    table: dict[str, dict] = {}
    current = None
    in_table = False
    for line in text.splitlines():
        if line.startswith("| file (conventional name)"):
            in_table = True
            continue
        if not in_table:
            continue
        if not line.startswith("|"):
            if table:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if set(cells[0]) <= {"-"} and cells[0]:
            continue
        file_cell, _detect, column_cell, req, _sticky, values = cells[:6]
        if file_cell:
            current = file_cell.strip("*").split(" ")[0]
            table[current] = {"columns": [], "required": set(), "one_of": set(), "statuses": None, "values": {}}
        names = [n.strip().strip("`") for n in re.split(r"[,/]", column_cell) if n.strip()]
        entry = table[current]
        for name in names:
            entry["columns"].append(name)
            entry["values"][name] = values
            if req.startswith("R*"):
                entry["one_of"].add(name)
            elif req.startswith("R"):
                entry["required"].add(name)
        if names == ["status"]:
            allowed = values.replace("*", "").split("(")[0]
            entry["statuses"] = {v.strip() for v in allowed.split(",") if v.strip()}
    return table


DOCUMENTED = documented_formats()


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_columns_required_and_statuses_match_the_documentation(kind):
    fmt = FORMATS[kind]
    doc = DOCUMENTED[fmt.file_name]
    assert list(fmt.columns) == doc["columns"]
    assert set(fmt.required) == doc["required"]
    one_of_columns = set().union(*fmt.one_of) if fmt.one_of else set()
    assert one_of_columns == doc["one_of"]
    if doc["statuses"] is not None:
        assert set(fmt.statuses) == doc["statuses"]
    else:
        assert not fmt.statuses


def test_change_sis_id_types_match_the_documentation():
    documented = {v.strip() for v in DOCUMENTED["change_sis_id.csv"]["values"]["type"].split(",")}
    assert FORMATS["change_sis_id"].choices["type"] == documented


def minimal_row(kind: str):
    return {
        "users": lambda: UserRow(user_id="u1", login_id="l1"),
        "accounts": lambda: ROW_TYPES["accounts"](account_id="a1", name="A"),
        "terms": lambda: TermRow(term_id="t1", name="T"),
        "courses": lambda: CourseRow(course_id="c1", short_name="C", long_name="Course"),
        "sections": lambda: ROW_TYPES["sections"](section_id="s1", course_id="c1", name="S"),
        "enrollments": lambda: EnrollmentRow(course_id="c1", user_id="u1", role="student"),
        "change_sis_id": lambda: ChangeSisIdRow(old_id="u1", new_id="u2", type="user"),
    }[kind]()


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_written_file_with_every_column_asked_for_has_them_all_and_is_detected_by_its_header(kind):
    data = csv_bytes(kind, [minimal_row(kind)], columns=FORMATS[kind].columns)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert rows[0] == DOCUMENTED[FORMATS[kind].file_name]["columns"]
    assert len(rows[1]) == len(rows[0])
    assert detect_kind(rows[0]) == kind


@pytest.mark.parametrize("kind", sorted(set(FORMATS) - {"change_sis_id"}))  # that one keeps every column
def test_by_default_a_file_has_its_required_and_filled_columns_only_and_is_still_detected(kind):
    fmt = FORMATS[kind]
    row = minimal_row(kind)
    data = csv_bytes(kind, [row])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    filled = {c for c in fmt.columns if getattr(row, c)}
    assert rows[0] == [c for c in fmt.columns if c in fmt.required or c in filled]
    assert detect_kind(rows[0]) == kind


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_each_required_column_left_blank_is_refused_naming_the_column(kind):
    fmt = FORMATS[kind]
    row = minimal_row(kind)
    base = {f.name: getattr(row, f.name) for f in fields(row)}
    for column in sorted(fmt.required - {"parent_account_id"}):
        with pytest.raises(ValueError, match=f"'{column}'"):
            ROW_TYPES[kind](**{**base, column: ""})


@pytest.mark.parametrize("kind", sorted(k for k, f in FORMATS.items() if f.statuses))
def test_status_outside_the_documented_values_is_refused(kind):
    row = minimal_row(kind)
    base = {f.name: getattr(row, f.name) for f in fields(row)}
    with pytest.raises(ValueError, match="'status'"):
        ROW_TYPES[kind](**{**base, "status": "archived"})
    for status in FORMATS[kind].statuses:
        assert ROW_TYPES[kind](**{**base, "status": status}).status == status


def test_one_of_groups_and_other_values_are_checked():
    with pytest.raises(ValueError, match="course_id or section_id"):
        EnrollmentRow(user_id="u1", role="student")
    with pytest.raises(ValueError, match="role or role_id"):
        EnrollmentRow(course_id="c1", user_id="u1")
    with pytest.raises(ValueError, match="'type'"):
        ChangeSisIdRow(old_id="a", new_id="b", type="student")
    with pytest.raises(ValueError, match="'start_date'"):
        TermRow(term_id="t", name="T", start_date="next tuesday")
    with pytest.raises(ValueError, match="'notify'"):
        EnrollmentRow(course_id="c1", user_id="u1", role="student", notify="perhaps")
    assert EnrollmentRow(course_id="c1", user_id="u1", role="student", notify=True).notify == "true"


def test_change_sis_id_writes_every_column_even_when_blank():
    data = csv_bytes(
        "change_sis_id", [ChangeSisIdRow(old_integration_id="i1", new_integration_id="<delete>", type="section")]
    )
    assert data.decode() == "old_id,new_id,old_integration_id,new_integration_id,type\r\n,,i1,<delete>,section\r\n"


def test_writer_streams_to_a_file_and_refuses_mixed_kinds(tmp_path):
    path = tmp_path / "users.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        count = write_csv("users", (UserRow(user_id=f"u{i}", login_id=f"l{i}") for i in range(1000)), handle)
    assert count == 1000
    assert len(path.read_text(encoding="utf-8").splitlines()) == 1001
    with pytest.raises(ValueError, match="expected UserRow"):
        write_csv("users", [TermRow(term_id="t", name="T")], io.StringIO())


def test_column_subset_must_keep_required_columns_and_hold_every_value():
    out = io.StringIO()
    write_csv("terms", [TermRow(term_id="t", name="T")], out, columns=["term_id", "name", "status"])
    assert out.getvalue() == "term_id,name,status\r\nt,T,active\r\n"
    with pytest.raises(ValueError, match="required"):
        write_csv("terms", [], io.StringIO(), columns=["term_id", "name"])
    with pytest.raises(ValueError, match="left-out"):
        write_csv(
            "terms",
            [TermRow(term_id="t", name="T", start_date="2025-08-01")],
            io.StringIO(),
            columns=["term_id", "name", "status"],
        )


text_values = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=40
).filter(lambda s: s.strip() == s and s.strip())


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(text_values, text_values, text_values, text_values), min_size=1, max_size=8))
def test_user_rows_round_trip_through_the_csv_module(people):
    rows = [
        UserRow(user_id=f"u{i}-{uid}", login_id=login, first_name=first, last_name=last)
        for i, (uid, login, first, last) in enumerate(people)
    ]
    archive = build_zip({"users.csv": rows})
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        text = zf.read("users.csv").decode("utf-8")
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [(r["user_id"], r["login_id"], r["first_name"], r["last_name"]) for r in parsed] == [
        (r.user_id, r.login_id, r.first_name, r.last_name) for r in rows
    ]


@settings(max_examples=60)
@given(st.lists(st.tuples(text_values, text_values), min_size=2, max_size=6, unique_by=lambda t: t[0]), st.randoms())
def test_fingerprint_ignores_order_but_not_content(pairs, rnd):
    rows = [TermRow(term_id=t, name=n) for t, n in pairs]
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    one = fingerprint({"terms.csv": csv_bytes("terms", rows)})
    reordered_columns = csv_bytes("terms", shuffled, columns=["name", "status", "term_id"])
    assert fingerprint({"renamed.csv": reordered_columns}) == one
    changed = rows[:-1] + [TermRow(term_id=rows[-1].term_id, name=rows[-1].name + "x")]
    assert fingerprint({"terms.csv": csv_bytes("terms", changed)}) != one


def test_fingerprint_of_a_zip_equals_that_of_its_files():
    files = {
        "terms.csv": csv_bytes("terms", [TermRow(term_id="t", name="T")]),
        "users.csv": csv_bytes("users", [UserRow(user_id="u", login_id="l")]),
    }
    assert fingerprint(build_zip(files)) == fingerprint(files)
    assert fingerprint(files) != fingerprint({"terms.csv": files["terms.csv"]})
