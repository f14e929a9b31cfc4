"""The simulator's Canvas data, in memory, with the indexes Canvas keeps (SIS id, login, integration id).

Dicts keyed by id and by SIS id keep every lookup O(1), which is what lets 200k users import in a
few seconds. All access goes through `CanvasState.lock`.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NotRequired, TypeAlias, TypedDict


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Account:
    id: int
    name: str
    parent_account_id: int | None
    sis_id: str | None = None
    integration_id: str | None = None
    workflow_state: str = "active"
    sis_batch_id: int | None = None


@dataclass
class Term:
    id: int
    name: str
    sis_id: str | None = None
    integration_id: str | None = None
    workflow_state: str = "active"
    start_at: str | None = None
    end_at: str | None = None
    sis_batch_id: int | None = None


@dataclass
class User:
    """A user and its one SIS login (Canvas's pseudonym) rolled together."""

    id: int
    name: str
    sortable_name: str
    short_name: str
    sis_id: str | None
    login_id: str
    integration_id: str | None = None
    email: str | None = None
    workflow_state: str = "registered"  # registered | deleted
    login_state: str = "active"  # active | suspended | deleted
    authentication_provider_id: int | None = None
    created_at: str = field(default_factory=now_iso)
    sis_batch_id: int | None = None


@dataclass
class Course:
    id: int
    name: str
    course_code: str
    account_id: int
    term_id: int
    sis_id: str | None = None
    integration_id: str | None = None
    workflow_state: str = "claimed"  # claimed (unpublished) | available | completed | deleted
    start_at: str | None = None
    end_at: str | None = None
    sis_batch_id: int | None = None


@dataclass
class Section:
    id: int
    course_id: int
    name: str
    sis_id: str | None = None
    integration_id: str | None = None
    workflow_state: str = "active"
    start_at: str | None = None
    end_at: str | None = None
    default_section: bool = False
    sis_batch_id: int | None = None


# An enrollment is one per (user, role type, observed user) in a section (lib/sis/enrollment_importer.rb finds it
# by those before creating one).
EnrollmentKey: TypeAlias = tuple[int, str, int | None]


class AssignmentOverride(TypedDict):
    """An "assign to" row (AssignmentOverride, app/models/assignment_override.rb): named students or one section."""

    id: int
    title: str
    student_ids: NotRequired[list[int]]
    course_section_id: NotRequired[int]


@dataclass
class Enrollment:
    id: int
    user_id: int
    course_id: int
    section_id: int
    type: str
    workflow_state: str
    associated_user_id: int | None = None
    start_at: str | None = None
    end_at: str | None = None
    created_at: str = field(default_factory=now_iso)
    sis_batch_id: int | None = None


@dataclass
class Assignment:
    id: int
    course_id: int
    name: str
    points_possible: float | None
    post_to_sis: bool
    due_at: str | None = None
    integration_id: str | None = None
    # Assignment#workflow_state (app/models/assignment.rb): "published", "unpublished" or "deleted"; a deleted
    # assignment is soft-deleted (destroy sets workflow_state) and leaves the API's list.
    workflow_state: str = "published"
    assignment_group_id: int | None = None
    # Assignment#only_visible_to_overrides: "assign to" named students or sections only (differentiated).
    only_visible_to_overrides: bool = False
    overrides: list[AssignmentOverride] = field(default_factory=list)


@dataclass
class AssignmentGroup:
    id: int
    course_id: int
    name: str
    position: int = 1
    workflow_state: str = "available"  # AssignmentGroup#workflow_state: available | deleted


@dataclass
class Submission:
    id: int
    assignment_id: int
    user_id: int
    score: float | None
    grade: str | None
    graded_at: str | None
    workflow_state: str = "graded"
    excused: bool = False
    late: bool = False
    missing: bool = False


class SisIndex:
    """SIS id and integration id lookups for one object type; change_sis_id re-keys through it."""

    def __init__(self) -> None:
        self.by_sis: dict[str, int] = {}
        self.by_integration: dict[str, int] = {}

    def set_sis(self, obj: Any, new: str | None) -> None:
        if obj.sis_id is not None and self.by_sis.get(obj.sis_id) == obj.id:
            del self.by_sis[obj.sis_id]
        obj.sis_id = new
        if new is not None:
            self.by_sis[new] = obj.id

    def set_integration(self, obj: Any, new: str | None) -> None:
        if obj.integration_id is not None and self.by_integration.get(obj.integration_id) == obj.id:
            del self.by_integration[obj.integration_id]
        obj.integration_id = new
        if new is not None:
            self.by_integration[new] = obj.id


class CanvasState:
    def __init__(self, root_account_name: str = "Simulated District") -> None:
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.accounts: dict[int, Account] = {}
        self.terms: dict[int, Term] = {}
        self.users: dict[int, User] = {}
        self.courses: dict[int, Course] = {}
        self.sections: dict[int, Section] = {}
        self.enrollments: dict[int, Enrollment] = {}
        self.assignments: dict[int, Assignment] = {}
        self.submissions: dict[tuple[int, int], Submission] = {}
        self.index = {k: SisIndex() for k in ("account", "term", "user", "course", "section")}
        self.users_by_login: dict[str, int] = {}
        self.sections_by_course: dict[int, list[int]] = {}
        self.enrollments_by_section: dict[int, dict[EnrollmentKey, int]] = {}
        self.assignments_by_course: dict[int, list[int]] = {}
        self.assignment_groups: dict[int, AssignmentGroup] = {}
        self.groups_by_course: dict[int, list[int]] = {}
        self.enrollments_by_user: dict[int, list[int]] = {}
        # Authentication providers by the id a users.csv row may name (their id, as a string).
        self.auth_providers: dict[str, int] = {}
        self.root_account = Account(self.next_id(), root_account_name, None)
        self.accounts[self.root_account.id] = self.root_account
        self.default_term = Term(self.next_id(), "Default Term")
        self.terms[self.default_term.id] = self.default_term

    def next_id(self) -> int:
        return next(self._ids)

    def table(self, kind: str) -> dict[int, Any]:
        tables: dict[str, dict[int, Any]] = {
            "account": self.accounts,
            "term": self.terms,
            "user": self.users,
            "course": self.courses,
            "section": self.sections,
        }
        return tables[kind]

    def by_sis(self, kind: str, sis_id: str) -> Any | None:
        obj_id = self.index[kind].by_sis.get(sis_id)
        return None if obj_id is None else self.table(kind)[obj_id]

    def by_integration(self, kind: str, integration_id: str) -> Any | None:
        obj_id = self.index[kind].by_integration.get(integration_id)
        return None if obj_id is None else self.table(kind)[obj_id]

    def resolve(self, kind: str, ref: str) -> Any | None:
        """A path reference: a numeric id, `sis_<kind>_id:X`, or `self` for the root account."""
        if kind == "account" and ref == "self":
            return self.root_account
        prefix = f"sis_{kind}_id:"
        if ref.startswith(prefix):
            return self.by_sis(kind, ref[len(prefix) :])
        if ref.isdigit():
            return self.table(kind).get(int(ref))
        return None

    def add_section(self, section: Section) -> None:
        self.sections[section.id] = section
        self.sections_by_course.setdefault(section.course_id, []).append(section.id)

    def default_section_of(self, course: Course) -> Section:
        for section_id in self.sections_by_course.get(course.id, []):
            section = self.sections[section_id]
            if section.default_section:
                return section
        section = Section(self.next_id(), course.id, course.name, default_section=True)
        self.add_section(section)
        return section

    def section_enrollments(self, section_id: int) -> list[Enrollment]:
        return [self.enrollments[i] for i in self.enrollments_by_section.get(section_id, {}).values()]

    def course_enrollments(self, course_id: int) -> list[Enrollment]:
        found: list[Enrollment] = []
        for section_id in self.sections_by_course.get(course_id, []):
            found.extend(self.section_enrollments(section_id))
        return found

    def add_enrollment(self, enrollment: Enrollment, key: EnrollmentKey) -> None:
        self.enrollments[enrollment.id] = enrollment
        self.enrollments_by_section.setdefault(enrollment.section_id, {})[key] = enrollment.id
        self.enrollments_by_user.setdefault(enrollment.user_id, []).append(enrollment.id)

    def user_enrollments(self, user_id: int) -> list[Enrollment]:
        return [self.enrollments[i] for i in self.enrollments_by_user.get(user_id, [])]

    def account_and_descendants(self, account_id: int) -> set[int]:
        ids = {account_id}
        changed = True
        while changed:
            changed = False
            for account in self.accounts.values():
                if account.parent_account_id in ids and account.id not in ids:
                    ids.add(account.id)
                    changed = True
        return ids
