"""SIF_Query: the object asked for, optional element list, optional conditions."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from .errors import SifProtocolError
from .safexml import q

OPERATORS = ("EQ", "LT", "GT", "LE", "GE", "NE")


@dataclass(frozen=True)
class Condition:
    element: str  # SIF XPath-like: "@RefId", "LocalId", "Name/LastName", "@SchoolYear"
    operator: str
    value: str

    def __post_init__(self) -> None:
        if self.operator not in OPERATORS:
            raise ValueError(f"SIF_Operator must be one of {OPERATORS}, not {self.operator!r}")


@dataclass(frozen=True)
class Query:
    object_name: str
    conditions: tuple[Condition, ...] = ()
    conditions_type: str = "And"  # how the conditions combine: And | Or
    elements: tuple[str, ...] = ()  # SIF_Element list: ask for these elements only

    def to_xml(self) -> etree._Element:
        query = etree.Element(q("SIF_Query"))
        query_object = etree.SubElement(query, q("SIF_QueryObject"), ObjectName=self.object_name)
        for name in self.elements:
            etree.SubElement(query_object, q("SIF_Element")).text = name
        if self.conditions:
            group = etree.SubElement(query, q("SIF_ConditionGroup"), Type="None")
            block = etree.SubElement(
                group,
                q("SIF_Conditions"),
                Type=self.conditions_type if len(self.conditions) > 1 else "None",
            )
            for condition in self.conditions:
                item = etree.SubElement(block, q("SIF_Condition"))
                etree.SubElement(item, q("SIF_Element")).text = condition.element
                etree.SubElement(item, q("SIF_Operator")).text = condition.operator
                etree.SubElement(item, q("SIF_Value")).text = condition.value
        return query

    @classmethod
    def from_xml(cls, query: etree._Element) -> Query:
        query_object = query.find(q("SIF_QueryObject"))
        object_name = query_object.get("ObjectName") if query_object is not None else None
        if query_object is None or not object_name:
            # Both are required by the SIF_Query schema (SIF 2.x infrastructure, SIF_Query): without them there is
            # no object to ask for. An AttributeError escaped here before.
            raise SifProtocolError("SIF_Query has no SIF_QueryObject with an ObjectName")
        elements = tuple((e.text or "").strip() for e in query_object.findall(q("SIF_Element")))
        conditions: list[Condition] = []
        combine = "And"
        group = query.find(q("SIF_ConditionGroup"))
        if group is not None:
            for block in group.findall(q("SIF_Conditions")):
                if block.get("Type") == "Or":
                    combine = "Or"
                for item in block.findall(q("SIF_Condition")):
                    conditions.append(
                        Condition(
                            (item.findtext(q("SIF_Element")) or "").strip(),
                            (item.findtext(q("SIF_Operator")) or "").strip(),
                            item.findtext(q("SIF_Value")) or "",
                        )
                    )
        return cls(object_name, tuple(conditions), combine, elements)
