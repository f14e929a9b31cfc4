"""Schema helper for the sifclient tests: compiles the official SIF 2.x US schemas once per session.

The schemas live in the shared folder next to the repository (``<repo>/../shared/sif/xsd``);
set SIF_SCHEMA_DIR to point elsewhere. They are parsed with a parser that never touches the
network (the 2.x schemas import xml.xsd from a local copy).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from lxml import etree


def schema_dir() -> Path:
    override = os.environ.get("SIF_SCHEMA_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "sif" / "xsd"


@functools.cache
def schema(version: str) -> etree.XMLSchema:
    # 2.5's SIF_Message schema checks the envelope only (its payload is xs:any lax).
    folder = {"2.4": "openzis_us_2_4", "2.0r1": "openzis_us_2_0_r1", "2.1": "openzis_us_2_1", "2.5": "openzis_us_2_5"}[
        version
    ]
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    document = etree.parse(str(schema_dir() / folder / "SIF_Message.xsd.xml"), parser)
    return etree.XMLSchema(document)


def assert_valid(data: bytes, version: str = "2.4") -> None:
    """Fail with the schema's own error log if ``data`` is not a valid SIF_Message."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    document = etree.fromstring(data, parser)
    compiled = schema(version)
    if not compiled.validate(document):
        errors = "\n".join(str(e) for e in list(compiled.error_log)[:5])
        raise AssertionError(f"not valid against SIF {version}:\n{errors}\n{data[:600]!r}")


def is_valid(data: bytes, version: str = "2.4") -> bool:
    try:
        assert_valid(data, version)
    except AssertionError:
        return False
    return True


@functools.cache
def object_schema() -> etree.XMLSchema:
    """The SIF 2.5 data model (openzis_soap25): single data objects with their real cardinality."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    document = etree.parse(str(schema_dir() / "openzis_soap25" / "v2.5DataObjects-NoInclude.xsd"), parser)
    return etree.XMLSchema(document)


def object_errors(element: etree._Element) -> list[str]:
    """The 2.5 data model's complaints about one object element ([] when it is valid)."""
    compiled = object_schema()
    if compiled.validate(etree.fromstring(etree.tostring(element))):
        return []
    return [str(e) for e in compiled.error_log]
