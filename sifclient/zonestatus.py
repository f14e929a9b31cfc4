"""SIF_ZoneStatus: who is in the zone, in which mode, and who provides what."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from .safexml import q

# SIF 2.x has no "zone ready" element; ZIS products report it in the zone's extended elements.
ZONE_READY_ELEMENT = "ZoneReady"


@dataclass(frozen=True)
class ZoneNode:
    source_id: str
    name: str | None
    node_type: str  # "Agent" | "ZIS"
    mode: str | None  # "Pull" | "Push"
    versions: tuple[str, ...] = ()
    max_buffer_size: int | None = None
    sleeping: bool = False


@dataclass(frozen=True)
class ZoneStatus:
    zone_id: str
    name: str | None
    ready: bool | None  # None when the ZIS does not say
    nodes: tuple[ZoneNode, ...] = ()
    providers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # source id -> objects
    subscribers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    supported_versions: tuple[str, ...] = ()
    extended_elements: dict[str, str] = field(default_factory=dict)
    url: str | None = None  # the zone URL the ZIS advertises (SIF_SupportedProtocols)

    def node(self, source_id: str) -> ZoneNode | None:
        return next((n for n in self.nodes if n.source_id == source_id), None)

    def provider_of(self, object_name: str) -> str | None:
        return next((s for s, objs in self.providers.items() if object_name in objs), None)

    def to_xml(self) -> etree._Element:
        """The SIF_ZoneStatus a ZIS puts in SIF_Ack/SIF_Data (the strict infrastructure form)."""
        root = etree.Element(q("SIF_ZoneStatus"), ZoneId=self.zone_id)
        etree.SubElement(root, q("SIF_Name")).text = self.name or self.zone_id

        def contexts(parent: etree._Element) -> None:
            holder = etree.SubElement(parent, q("SIF_Contexts"))
            etree.SubElement(holder, q("SIF_Context")).text = "SIF_Default"

        for holder_tag, item_tag, table, query_support in (
            ("SIF_Providers", "SIF_Provider", self.providers, True),
            ("SIF_Subscribers", "SIF_Subscriber", self.subscribers, False),
        ):
            rows = {source: objects for source, objects in table.items() if objects}
            if not rows:
                continue
            holder = etree.SubElement(root, q(holder_tag))
            for source_id, objects in rows.items():
                item = etree.SubElement(holder, q(item_tag), SourceId=source_id)
                object_list = etree.SubElement(item, q("SIF_ObjectList"))
                for name in objects:
                    entry = etree.SubElement(object_list, q("SIF_Object"), ObjectName=name)
                    if query_support:
                        etree.SubElement(entry, q("SIF_ExtendedQuerySupport")).text = "false"
                    contexts(entry)
        if self.nodes:
            nodes = etree.SubElement(root, q("SIF_SIFNodes"))
            for node in self.nodes:
                item = etree.SubElement(nodes, q("SIF_SIFNode"), Type=node.node_type)
                etree.SubElement(item, q("SIF_Name")).text = node.name or node.source_id
                etree.SubElement(item, q("SIF_SourceId")).text = node.source_id
                etree.SubElement(item, q("SIF_Mode")).text = node.mode or "Pull"
                version_list = etree.SubElement(item, q("SIF_VersionList"))
                for version in node.versions or ("2.*",):
                    etree.SubElement(version_list, q("SIF_Version")).text = version
                etree.SubElement(item, q("SIF_MaxBufferSize")).text = str(node.max_buffer_size or 0)
                etree.SubElement(item, q("SIF_Sleeping")).text = "Yes" if node.sleeping else "No"
        protocols = etree.SubElement(root, q("SIF_SupportedProtocols"))
        secure = (self.url or "").startswith("https:")
        protocol = etree.SubElement(
            protocols, q("SIF_Protocol"), Type="HTTPS" if secure else "HTTP", Secure="Yes" if secure else "No"
        )
        etree.SubElement(protocol, q("SIF_URL")).text = self.url or "http://localhost/"
        versions = etree.SubElement(root, q("SIF_SupportedVersions"))
        for version in self.supported_versions or ("2.4",):
            etree.SubElement(versions, q("SIF_Version")).text = version
        contexts(root)
        extended = dict(self.extended_elements)
        if self.ready is not None:
            extended[ZONE_READY_ELEMENT] = "Yes" if self.ready else "No"
        if extended:
            holder = etree.SubElement(root, q("SIF_ExtendedElements"))
            for name, value in extended.items():
                etree.SubElement(holder, q("SIF_ExtendedElement"), Name=name).text = value
        return root

    @classmethod
    def from_xml(cls, root: etree._Element) -> ZoneStatus:
        def table(holder_tag: str, item_tag: str) -> dict[str, tuple[str, ...]]:
            result: dict[str, tuple[str, ...]] = {}
            holder = root.find(q(holder_tag))
            for item in holder.findall(q(item_tag)) if holder is not None else []:
                result[item.get("SourceId", "")] = tuple(
                    o.get("ObjectName", "") for o in item.iterfind(f"{q('SIF_ObjectList')}/{q('SIF_Object')}")
                )
            return result

        nodes = []
        for item in root.iterfind(f"{q('SIF_SIFNodes')}/{q('SIF_SIFNode')}"):
            buffer = item.findtext(q("SIF_MaxBufferSize"))
            nodes.append(
                ZoneNode(
                    source_id=(item.findtext(q("SIF_SourceId")) or "").strip(),
                    name=item.findtext(q("SIF_Name")),
                    node_type=item.get("Type", "Agent"),
                    mode=item.findtext(q("SIF_Mode")),
                    versions=tuple(v.text or "" for v in item.iterfind(f"{q('SIF_VersionList')}/{q('SIF_Version')}")),
                    max_buffer_size=int(buffer) if buffer else None,
                    sleeping=(item.findtext(q("SIF_Sleeping")) or "No").strip() == "Yes",
                )
            )
        extended = {
            e.get("Name", ""): "".join(e.itertext()).strip()
            for e in root.iterfind(f"{q('SIF_ExtendedElements')}/{q('SIF_ExtendedElement')}")
        }
        ready_text = extended.pop(ZONE_READY_ELEMENT, None)
        return cls(
            zone_id=root.get("ZoneId", ""),
            name=root.findtext(q("SIF_Name")),
            ready=None if ready_text is None else ready_text == "Yes",
            nodes=tuple(nodes),
            providers=table("SIF_Providers", "SIF_Provider"),
            subscribers=table("SIF_Subscribers", "SIF_Subscriber"),
            supported_versions=tuple(
                v.text or "" for v in root.iterfind(f"{q('SIF_SupportedVersions')}/{q('SIF_Version')}")
            ),
            extended_elements=extended,
            url=root.findtext(f"{q('SIF_SupportedProtocols')}/{q('SIF_Protocol')}/{q('SIF_URL')}"),
        )
