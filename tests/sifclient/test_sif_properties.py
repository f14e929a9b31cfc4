"""Property-based tests of the SIF parser (hypothesis): typed records with arbitrary values survive a trip
through a SIF_Response, and arbitrary or damaged bytes give a SifClientError, never anything else."""

from __future__ import annotations

import dataclasses
import datetime as dt

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sifclient.errors import SifClientError
from sifclient.messages import build_response
from sifclient.records import RECORD_TYPES, _parse_path
from sifclient.safexml import iterparse_message, parse_message_bytes
from sifclient.streaming import iter_payload_records, scan_message

# Text the way a record holds it after reading: no surrounding whitespace, nothing XML 1.0 cannot carry.
text = (
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=30)
    .map(str.strip)
    .filter(bool)
)
VALUES = {
    "str": text,
    "int": st.integers(0, 10**9),
    "date": st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)),
    "decimal": st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False),
}
REF_ID = st.text("0123456789ABCDEF", min_size=32, max_size=32)


def _strategy(name, kind):
    if isinstance(kind, type):  # a group of fields (ScheduleInfo): a list of its own arbitrary values
        return groups(kind)
    return REF_ID if name.endswith("ref_id") or name.endswith("ref_ids") else VALUES[kind]


@st.composite
def groups(draw, group_type):
    values = {}
    for name, path, kind in group_type.FIELDS:
        strategy = _strategy(name, kind)
        segments, _ = _parse_path(path)
        if any(s.repeats for s in segments):
            values[name] = draw(st.lists(strategy, max_size=3))
        elif draw(st.booleans()):
            values[name] = draw(strategy)
    return group_type(**values)


@st.composite
def records(draw):
    record_type = RECORD_TYPES[draw(st.sampled_from(sorted(RECORD_TYPES)))]
    values = {}
    for name, path, kind in record_type.FIELDS:
        strategy = _strategy(name, kind)
        segments, _ = _parse_path(path)
        if any(s.repeats for s in segments):
            values[name] = draw(st.lists(strategy, max_size=3))
        elif draw(st.booleans()):
            values[name] = draw(strategy)
    if "extended_elements" in {f.name for f in dataclasses.fields(record_type)}:
        values["extended_elements"] = draw(
            st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,11}", fullmatch=True), text, max_size=3)
        )
    return record_type(**values)


def response_bytes(*recs) -> bytes:
    return build_response("PS_AGENT", destination_id="CANVAS", request_msg_id="0" * 32, records=recs).data


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(records())
def test_a_record_with_arbitrary_values_comes_back_the_same_through_a_response(record):
    assert list(iter_payload_records(response_bytes(record))) == [record]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_a_sif_error_or_a_message(data):
    for read in (
        lambda: parse_message_bytes(data),
        lambda: list(iterparse_message(data)),
        lambda: scan_message(data),
        lambda: list(iter_payload_records(data)),
    ):
        try:
            read()
        except SifClientError:
            pass


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    records(),
    st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(["drop", "insert", "replace"]), st.binary(min_size=1, max_size=4)),
        min_size=1,
        max_size=4,
    ),
)
def test_a_damaged_response_gives_a_sif_error_or_records(record, edits):
    data = bytearray(response_bytes(record))
    for where, how, junk in edits:
        at = int(where * (len(data) - 1))
        if how == "drop":
            del data[at : at + len(junk)]
        elif how == "insert":
            data[at:at] = junk
        else:
            data[at : at + len(junk)] = junk
    assume(bytes(data) != response_bytes(record))
    for read in (lambda: scan_message(bytes(data)), lambda: list(iter_payload_records(bytes(data)))):
        try:
            read()
        except SifClientError:
            pass


def test_the_strategies_cover_every_kind_of_field():
    kinds = {kind for record_type in RECORD_TYPES.values() for _, _, kind in record_type.FIELDS}
    group_types = {kind for kind in kinds if isinstance(kind, type)}
    kinds = (kinds - group_types) | {kind for group in group_types for _, _, kind in group.FIELDS}
    assert kinds <= set(VALUES), kinds - set(VALUES)
    assert all(isinstance(VALUES[k], st.SearchStrategy) for k in kinds)
