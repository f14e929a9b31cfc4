"""The official SIF 2.x SIF_Message schemas, compiled offline once per process, by SIF version.

The schema files are the SIF Implementation Specification (US) schemas that OpenZIS ships
(``OpenZIS/ZIT_APPLICATION/sif_schema/``), kept in ``<repo>/../shared/sif/xsd``; ``SIF_SCHEMA_DIR``
points elsewhere. Versions 2.2 and 2.3 have no schema there: ``schema_for`` returns None for them and
callers say so rather than pretend to have validated.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

from lxml import etree

# SIF version -> folder of its SIF_Message.xsd.xml. 2.5's is the infrastructure only (payload xs:any lax).
SCHEMA_FOLDERS: dict[str, str] = {
    "2.0r1": "openzis_us_2_0_r1",
    "2.1": "openzis_us_2_1",
    "2.4": "openzis_us_2_4",
    "2.5": "openzis_us_2_5",
}

_lock = threading.Lock()


def schema_dir() -> Path:
    override = os.environ.get("SIF_SCHEMA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "sif" / "xsd"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)


@functools.cache
def _compiled(version: str) -> etree.XMLSchema:
    document = etree.parse(str(schema_dir() / SCHEMA_FOLDERS[version] / "SIF_Message.xsd.xml"), _parser())
    return etree.XMLSchema(document)


def schema_for(version: str) -> etree.XMLSchema | None:
    """The compiled SIF_Message schema of ``version``; None when that version has no schema file here."""
    if version not in SCHEMA_FOLDERS:
        return None
    if not (schema_dir() / SCHEMA_FOLDERS[version] / "SIF_Message.xsd.xml").exists():
        return None
    with _lock:  # lxml schemas are not safe to compile from two threads at once
        return _compiled(version)


def validation_errors(document: etree._Element | bytes, version: str, *, limit: int = 5) -> list[str] | None:
    """Schema errors of one SIF_Message (at most ``limit``); [] when valid, None when there is no schema."""
    compiled = schema_for(version)
    if compiled is None:
        return None
    root = etree.fromstring(document, _parser()) if isinstance(document, bytes) else document
    with _lock:  # one XMLSchema object keeps one error log
        if compiled.validate(root):
            return []
        return [f"line {e.line}: {e.message}" for e in list(compiled.error_log)[:limit]]
