"""Turning sifclient's typed records into SifRecord rows (and back into plain dicts for the services)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Any

from sifclient.records import SifRecord as SifObject
from sifclient.records import UnknownRecord

from conversion.models import SifRecord, Snapshot


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record_data(record: SifObject | UnknownRecord) -> dict[str, Any]:
    if isinstance(record, UnknownRecord):
        return {"xml": record.xml.decode("utf-8", "replace")}
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)
            if getattr(record, f.name) not in (None, [], {}) or f.name == "extended_elements"}


def row_for(snapshot: Snapshot, record: SifObject | UnknownRecord, fallback_key: str) -> SifRecord:
    """The row for one record; objects without a RefId are keyed by where they arrived (`fallback_key`)."""
    object_name = object_name_of(record)
    data = record_data(record)
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    ref_id = getattr(record, "ref_id", None) or fallback_key
    extended = data.get("extended_elements") or {}
    return SifRecord(
        snapshot=snapshot,
        object_name=object_name,
        ref_id=ref_id,
        local_id=str(data.get("local_id") or "")[:64],
        dcid=str(extended.get("DCID") or "")[:32],
        school_ref_id=str(data.get("school_ref_id") or "")[:64],
        school_year=data.get("school_year") if isinstance(data.get("school_year"), int) else None,
        data=data,
        digest=hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest(),
    )


def object_name_of(record: SifObject | UnknownRecord) -> str:
    return record.object_name if isinstance(record, UnknownRecord) else record.OBJECT_NAME
