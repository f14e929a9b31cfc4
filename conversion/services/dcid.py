"""The DCID requirement: which SIF objects must carry PowerSchool's DCID, and where PowerSchool keeps it.

The DCID is PowerSchool's internal id, which stays the same when a student changes school (the remap moves
Canvas sis_user_id onto it). The agent.cfg mappings document (setup_aids) asks for it and the diagnostics
check that it came over; both read this module, and neither needs the other for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from conversion.services.zis import PULL_OBJECTS

# The SIF_ExtendedElement that carries it.
DCID_ELEMENT: Final = "DCID"
# object name -> the PowerSchool table column the agent.cfg mapping reads the DCID from.
DCID_SOURCES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "StudentPersonal": "Students.DCID",
        "StaffPersonal": "Teachers.DCID",
        "SchoolInfo": "Schools.DCID",
        "SectionInfo": "Sections.DCID",
        "TermInfo": "Terms.DCID",
        "SchoolCourseInfo": "Courses.DCID",
        "StaffAssignment": "SchoolStaff.DCID",
        "StudentSchoolEnrollment": "ReEnrollments.DCID",
        "StudentSectionEnrollment": "CC.DCID",
        "GradingCategory": "TeacherCategory.DCID",
    }
)
# Every object we pull except LEAInfo (one row, keyed by its RefId) needs the DCID.
DCID_OBJECTS: Final[tuple[str, ...]] = tuple(name for name in PULL_OBJECTS if name in DCID_SOURCES)
