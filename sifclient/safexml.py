"""Safe XML parsing for everything that arrives from the network.

The parser never resolves entities, never loads a DTD, never touches the network and refuses
documents over a size limit; any document carrying a DOCTYPE is refused outright, because a SIF
message never needs one and DTDs are how entity attacks arrive.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Literal, TypedDict

from lxml import etree

from .errors import SifXmlError

SIF_NS = "http://www.sifinfo.org/infrastructure/2.x"
NS = {"sif": SIF_NS}

# 4 MiB is far above any SIF_MaxBufferSize a PowerSchool agent uses (256 KiB by default).
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class _ParserOptions(TypedDict):
    """The options both lxml entry points (XMLParser, iterparse) take for a hostile document."""

    resolve_entities: bool
    no_network: bool
    load_dtd: bool
    huge_tree: bool
    dtd_validation: bool
    remove_blank_text: bool


_PARSER_OPTIONS = _ParserOptions(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    dtd_validation=False,
    remove_blank_text=False,
)


def q(local: str) -> str:
    """Clark name of a SIF element: ``{ns}local``."""
    return f"{{{SIF_NS}}}{local}"


def tag_text(element: etree._Element) -> str:
    """An element's tag as text for a message: its Clark name, or the repr of a comment's or PI's tag (a function)."""
    tag = element.tag
    return tag if isinstance(tag, str) else repr(tag)


def new_parser() -> etree.XMLParser:
    return etree.XMLParser(**_PARSER_OPTIONS)


def _check_size(data: bytes, max_bytes: int) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SifXmlError("SIF messages are parsed from bytes, not from decoded text")
    if len(data) > max_bytes:
        raise SifXmlError(f"message of {len(data)} bytes is over the limit of {max_bytes} bytes")


def _check_no_doctype(element: etree._Element) -> None:
    docinfo = element.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise SifXmlError("DOCTYPE/DTD is not allowed in a SIF message (entity expansion risk)")


def _check_root(root: etree._Element) -> None:
    if root.tag != q("SIF_Message"):
        raise SifXmlError(f"root element is {root.tag!r}; expected SIF_Message in namespace {SIF_NS}")


# A message delivered inside SIF_Ack/SIF_Status/SIF_Data is normally in the SIF namespace by inheritance: real
# PowerSchool zones send the inner SIF_Message without a namespace declaration of its own (only xmlns:xsi),
# which is the same namespace as long as the outer message declares it as the default. When the outer one
# binds it to a prefix instead (<sif:SIF_Message xmlns:sif=...>), the unprefixed inner message falls out
# of every namespace; it is read as the SIF message it is, rather than found empty and its packet lost.
_DATA = "{" + SIF_NS + "}SIF_Data"


def _adopt(element: etree._Element) -> None:
    """Move an element that has no namespace into the SIF namespace (its subtree is handled by the caller)."""
    tag = element.tag
    if isinstance(tag, str) and not tag.startswith("{"):
        element.tag = q(tag)


def _adopt_unqualified_payloads(root: etree._Element) -> None:
    for holder in root.iter(_DATA):
        for child in holder:
            if isinstance(child.tag, str) and not child.tag.startswith("{"):
                for node in child.iter():
                    _adopt(node)


def parse_message_bytes(data: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> etree._Element:
    """Parse a whole SIF_Message and return its root element (for small messages)."""
    _check_size(data, max_bytes)
    try:
        root = etree.fromstring(bytes(data), new_parser())
    except etree.XMLSyntaxError as exc:
        raise SifXmlError(f"malformed XML: {exc}") from exc
    except (ValueError, LookupError) as exc:  # unknown declared encoding and the like
        raise SifXmlError(f"unreadable XML: {exc}") from exc
    _check_no_doctype(root)
    _check_root(root)
    _check_no_entity_refs(root)
    _adopt_unqualified_payloads(root)
    return root


def _check_no_entity_refs(root: etree._Element) -> None:
    # With resolve_entities=False an undeclared/unresolved reference survives as an _Entity node;
    # it would silently drop data, so it is refused.
    for node in root.iter(etree.Entity):
        raise SifXmlError(f"entity reference {node!r} is not allowed")


def iterparse_message(
    data: bytes,
    *,
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    events: tuple[Literal["start", "end"], ...] = ("start", "end"),
) -> Iterator[tuple[str, etree._Element]]:
    """Stream (event, element) pairs of a SIF_Message, with every safety check applied.

    The caller clears elements it has consumed; this generator only guards the input.
    """
    _check_size(data, max_bytes)
    wanted = set(events)
    stream = etree.iterparse(io.BytesIO(bytes(data)), events=("start", "end"), **_PARSER_OPTIONS)
    first = True
    adopting = 0  # depth inside an unqualified message under SIF_Data (see _adopt_unqualified_payloads)
    try:
        for event, element in stream:
            if first:
                first = False
                _check_no_doctype(element)
                _check_root(element)
            if event == "start":
                if adopting:
                    adopting += 1
                    _adopt(element)
                elif isinstance(element.tag, str) and not element.tag.startswith("{"):
                    parent = element.getparent()
                    if parent is not None and parent.tag == _DATA:
                        adopting = 1
                        _adopt(element)
            elif adopting:
                adopting -= 1
            if event == "end":
                for child in element:
                    if isinstance(child, etree._Entity):
                        raise SifXmlError(f"entity reference {child!r} is not allowed")
            if event in wanted:
                yield event, element
    except etree.XMLSyntaxError as exc:
        raise SifXmlError(f"malformed XML: {exc}") from exc
    except (ValueError, LookupError) as exc:
        raise SifXmlError(f"unreadable XML: {exc}") from exc
    if first:
        raise SifXmlError("empty document")
