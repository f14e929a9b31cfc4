"""Applying one SIS CSV row to the simulator's state, with Canvas's own messages for bad rows.

The messages are those of canvas-lms lib/sis/*_importer.rb (ImportError texts), so an operator
reading the simulator's warnings learns the wording the real Canvas will use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from canvas.simulator.sis_import import SisImportRecord, StateChange
from canvas.simulator.state import (
    Account,
    CanvasState,
    Course,
    Enrollment,
    Section,
    Term,
    User,
)

ROLE_TYPES = {
    "teacher": "TeacherEnrollment",
    "student": "StudentEnrollment",
    "ta": "TaEnrollment",
    "observer": "ObserverEnrollment",
    "designer": "DesignerEnrollment",
}
BUILTIN_ROLE_IDS = {
    "StudentEnrollment": 3,
    "TeacherEnrollment": 4,
    "TaEnrollment": 5,
    "DesignerEnrollment": 6,
    "ObserverEnrollment": 7,
}
COURSE_STATES = {"published": "available", "completed": "completed", "deleted": "deleted", "unpublished": "claimed"}


class LoginState:
    """A user's SIS login (its Pseudonym) as roll-back data sees it: its workflow_state is the login's
    (active, suspended, deleted); a deleted login leaves the simulator's user deleted too."""

    def __init__(self, user: User):
        self.user = user

    @property
    def workflow_state(self) -> str:
        return self.user.login_state

    @workflow_state.setter
    def workflow_state(self, value: str) -> None:
        self.user.login_state = value
        self.user.workflow_state = "deleted" if value == "deleted" else "registered"


class RowProblem(Exception):
    """A row Canvas would skip; the text is Canvas's warning."""


class Skipped(Exception):
    """A row ignored on purpose (skip_deletes); neither counted nor warned about."""


def _role_type(role: str) -> str | None:
    if role in BUILTIN_ROLE_IDS:
        return role
    lowered = role.lower()
    if lowered.startswith("student"):
        return "StudentEnrollment"
    return ROLE_TYPES.get(lowered)


class RowApplier:
    def __init__(self, state: CanvasState, record: SisImportRecord):
        self.state = state
        self.record = record
        self.batch_id = record.id
        self.deferred_deletes: set[int] = set()
        self.handlers: dict[str, Callable[[dict[str, str]], None]] = {
            "change_sis_id": self.change_sis_id,
            "accounts": self.account,
            "terms": self.term,
            "courses": self.course,
            "sections": self.section,
            "users": self.user,
            "enrollments": self.enrollment,
        }

    def set_state(self, kind: str, obj: Any, new: str, *, created: bool = False, batch_cleanup: bool = False) -> None:
        """Change a workflow_state and keep a roll-back row for it (SisBatchRollBackData.build_data)."""
        previous = "non-existent" if created else obj.workflow_state
        if previous != new:
            self.record.changes.append(StateChange(kind, obj, previous, new, batch_cleanup=batch_cleanup))
        obj.workflow_state = new

    _set_state = set_state

    # --- cascades ------------------------------------------------------------------------------

    def cascade_section_deleted(self, section: Section, *, batch_cleanup: bool = False) -> None:
        """lib/sis/section_importer.rb#process: the active enrollments of every section the import deleted
        are destroyed (Enrollment::BatchStateUpdater.destroy_batch), with roll-back data."""
        for enrollment in self.state.section_enrollments(section.id):
            if enrollment.workflow_state != "deleted":
                self.set_state("Enrollment", enrollment, "deleted", batch_cleanup=batch_cleanup)

    def cascade_course_state(self, course: Course, *, batch_cleanup: bool = False) -> None:
        """app/models/course.rb#update_enrolled_users, run when a course's workflow_state changes: a completed
        course concludes its active and invited enrollments, a deleted one deletes every enrollment."""
        for enrollment in self.state.course_enrollments(course.id):
            if course.workflow_state == "completed" and enrollment.workflow_state in ("active", "invited"):
                self.set_state("Enrollment", enrollment, "completed", batch_cleanup=batch_cleanup)
            elif course.workflow_state == "deleted" and enrollment.workflow_state != "deleted":
                self.set_state("Enrollment", enrollment, "deleted", batch_cleanup=batch_cleanup)

    def _skip_delete(self, status: str) -> None:
        if self.record.options.skip_deletes and status == "deleted":
            raise Skipped()

    # --- change_sis_id ---------------------------------------------------------------------

    def change_sis_id(self, v: dict[str, str]) -> None:
        kind = v.get("type", "").lower()
        old_id, new_id = v.get("old_id", ""), v.get("new_id", "")
        old_iid, new_iid = v.get("old_integration_id", ""), v.get("new_integration_id", "")
        if not kind:
            raise RowProblem("No type given for change_sis_id")
        if not old_id and not old_iid:
            raise RowProblem("No old_id or old_integration_id given for change_sis_id")
        if not new_id and not new_iid:
            raise RowProblem("No new_id or new_integration_id given for change_sis_id")
        if kind not in ("user", "course", "section", "term", "account", "group", "group_category"):
            raise RowProblem(f"Invalid type '{kind}' for change_sis_id")
        if kind == "group_category" and (old_iid or new_iid):
            raise RowProblem("Group categories should not have integration IDs.")
        column = "sis_user_id" if kind == "user" else "sis_source_id"
        known = kind in self.state.index  # the simulator keeps no groups
        if new_id and known and self.state.by_sis(kind, new_id) is not None:
            raise RowProblem(
                f"A new_id, '{new_id}', referenced an existing {kind} and the {kind} with {column} "
                f"'{old_id}' was not updated"
            )
        if new_iid and new_iid != "<delete>" and known and self.state.by_integration(kind, new_iid) is not None:
            raise RowProblem(
                f"A new_integration_id, '{new_iid}', referenced an existing {kind} and the {kind} with "
                f"integration_id '{old_iid}' was not updated"
            )
        old_item = self.state.by_sis(kind, old_id) if old_id and known else None
        old_int_item = self.state.by_integration(kind, old_iid) if old_iid and known else None
        if old_id and old_iid:
            if old_item is not old_int_item:
                raise RowProblem(
                    f"An old_id, '{old_id}', referenced a different {kind} than the old_integration_id, '{old_iid}'"
                )
            item = old_item
        elif old_id:
            item = old_item
        else:
            item = old_int_item
        if item is None:
            which, value = ("old_id", old_id) if old_id else ("old_integration_id", old_iid)
            raise RowProblem(f"An {which}, '{value}', referenced a non-existent {kind} and was not changed.")
        index = self.state.index[kind]
        if new_id:
            index.set_sis(item, new_id)
        if new_iid:
            index.set_integration(item, None if new_iid == "<delete>" else new_iid)
        item.sis_batch_id = self.batch_id

    # --- accounts and terms ----------------------------------------------------------------

    def account(self, v: dict[str, str]) -> None:
        account_id, parent_id = v.get("account_id", ""), v.get("parent_account_id", "")
        name, status = v.get("name", ""), v.get("status", "").lower()
        if not account_id:
            raise RowProblem("No account_id given for an account")
        if not name:
            raise RowProblem(f"No name given for account {account_id}, skipping")
        if status not in ("active", "deleted"):
            raise RowProblem(f'Improper status "{v.get("status", "")}" for account {account_id}, skipping')
        self._skip_delete(status)
        parent = self.state.root_account
        if parent_id:
            named = self.state.by_sis("account", parent_id)
            if named is None:
                raise RowProblem(f"Parent account didn't exist for {account_id}")
            parent = named
        account = self.state.by_sis("account", account_id)
        created = account is None
        if account is None:
            account = Account(self.state.next_id(), name, parent.id)
            self.state.accounts[account.id] = account
            self.state.index["account"].set_sis(account, account_id)
        account.name, account.parent_account_id = name, parent.id
        self._integration("account", account, v)
        self._set_state("Account", account, status, created=created)
        account.sis_batch_id = self.batch_id

    def term(self, v: dict[str, str]) -> None:
        term_id, name, status = v.get("term_id", ""), v.get("name", ""), v.get("status", "").lower()
        if not term_id:
            raise RowProblem("No term_id given for a term")
        if not name:
            raise RowProblem(f"No name given for term {term_id}")
        if status not in ("active", "deleted"):
            raise RowProblem(f'Improper status "{v.get("status", "")}" for term {term_id}, skipping')
        self._skip_delete(status)
        term = self.state.by_sis("term", term_id)
        created = term is None
        if term is None:
            term = Term(self.state.next_id(), name)
            self.state.terms[term.id] = term
            self.state.index["term"].set_sis(term, term_id)
        term.name = name
        term.start_at, term.end_at = v.get("start_date") or None, v.get("end_date") or None
        self._integration("term", term, v)
        self._set_state("EnrollmentTerm", term, status, created=created)
        term.sis_batch_id = self.batch_id

    def _integration(self, kind: str, obj: Any, v: dict[str, str]) -> None:
        # The account, term, course and section importers assign the row's integration_id unconditionally, so a
        # blank cell or an omitted column erases the one Canvas held (lib/sis/account_importer.rb#add_account,
        # term_importer.rb#add_term, course_importer.rb#add_course, section_importer.rb#add_section:
        # `<object>.integration_id = integration_id`). Users differ: user_importer.rb sets it only when present.
        new = v.get("integration_id", "")
        if not new:
            if obj.integration_id is not None:
                self.state.index[kind].set_integration(obj, None)
            return
        if new != obj.integration_id:
            holder = self.state.by_integration(kind, new)
            if holder is not None and holder is not obj:
                raise RowProblem(f"An existing {kind} has already claimed the integration_id {new}")
            self.state.index[kind].set_integration(obj, new)

    # --- courses and sections --------------------------------------------------------------

    def course(self, v: dict[str, str]) -> None:
        course_id, status = v.get("course_id", ""), v.get("status", "").lower()
        short_name, long_name = v.get("short_name", ""), v.get("long_name", "")
        if not course_id:
            raise RowProblem("No course_id given for a course")
        if not short_name:
            raise RowProblem(f"No short_name given for course {course_id}")
        if not long_name:
            raise RowProblem(f"No long_name given for course {course_id}")
        if status not in ("active", "deleted", "completed", "published", "unpublished"):
            raise RowProblem(f'Improper status "{v.get("status", "")}" for course {course_id}, skipping')
        self._skip_delete(status)
        account = self.state.root_account
        if v.get("account_id"):
            found = self.state.by_sis("account", v["account_id"])
            if found is None:
                raise RowProblem(f'Account not found "{v["account_id"]}" for course {course_id}')
            account = found
        term = self.state.default_term
        if v.get("term_id"):
            found_term = self.state.by_sis("term", v["term_id"])
            if found_term is None:
                raise RowProblem(f'Term not found "{v["term_id"]}" for course {course_id}')
            term = found_term
        course = self.state.by_sis("course", course_id)
        created = course is None
        if course is None:
            course = Course(self.state.next_id(), long_name, short_name, account.id, term.id)
            self.state.courses[course.id] = course
            self.state.index["course"].set_sis(course, course_id)
        course.name, course.course_code = long_name, short_name
        course.account_id, course.term_id = account.id, term.id
        for column, attr in (("start_date", "start_at"), ("end_date", "end_at")):
            value = v.get(column, "")
            if value == "<delete>":
                setattr(course, attr, None)
            elif value:
                setattr(course, attr, value)
        self._integration("course", course, v)
        # lib/sis/course_importer.rb#add_course: "active" reopens a concluded course as available and leaves a
        # published one alone; anything else (new, deleted, unpublished) becomes claimed.
        if status == "active":
            if course.workflow_state == "completed":
                new_state = "available"
            elif not created and course.workflow_state == "available":
                new_state = "available"
            else:
                new_state = "claimed"
        else:
            new_state = COURSE_STATES[status]
        was = None if created else course.workflow_state
        self._set_state("Course", course, new_state, created=created)
        if was is not None and was != new_state:
            self.cascade_course_state(course)
        course.sis_batch_id = self.batch_id

    def section(self, v: dict[str, str]) -> None:
        section_id, course_id = v.get("section_id", ""), v.get("course_id", "")
        name, status = v.get("name", ""), v.get("status", "").lower()
        if not section_id:
            raise RowProblem(f"No section_id given for a section in course {course_id}")
        if not course_id:
            raise RowProblem(f"No course_id given for a section {section_id}")
        # section_importer.rb#add_section: a name is required to make a section active, and for a new one.
        if not name and status == "active":
            raise RowProblem(f"No name given for section {section_id} in course {course_id}")
        if status not in ("active", "deleted"):
            raise RowProblem(f'Improper status "{v.get("status", "")}" for section {section_id} in course {course_id}')
        self._skip_delete(status)
        course = self.state.by_sis("course", course_id)
        if course is None:
            raise RowProblem(f"Section {section_id} references course {course_id} which doesn't exist")
        section = self.state.by_sis("section", section_id)
        created = section is None
        if section is None:
            if not name:
                raise RowProblem(f"No name given for section {section_id} in course {course_id}")
            section = Section(self.state.next_id(), course.id, name)
            self.state.add_section(section)
            self.state.index["section"].set_sis(section, section_id)
        elif section.course_id != course.id:
            # section_importer.rb#add_section → CourseSection#move_to_course: the section and its
            # enrollments move to the course the row names.
            self.state.sections_by_course[section.course_id].remove(section.id)
            self.state.sections_by_course.setdefault(course.id, []).append(section.id)
            section.course_id = course.id
            for enrollment in self.state.section_enrollments(section.id):
                enrollment.course_id = course.id
        if name:
            section.name = name
        section.start_at, section.end_at = v.get("start_date") or None, v.get("end_date") or None
        self._integration("section", section, v)
        self._set_state("CourseSection", section, status, created=created)
        if status == "deleted":
            self.cascade_section_deleted(section)
        section.sis_batch_id = self.batch_id

    # --- users -----------------------------------------------------------------------------

    def user(self, v: dict[str, str]) -> None:
        """lib/sis/user_importer.rb#process_batch: the row's login (Pseudonym) is found by SIS id, else by its
        active login; its workflow_state is the row's status, and deleting the last login deletes the user's
        enrollments (#remove_enrollments_if_last_login)."""
        user_id, login_id, status = v.get("user_id", ""), v.get("login_id", ""), v.get("status", "").lower()
        if not user_id:
            raise RowProblem("No user_id given for a user")
        if not login_id:
            raise RowProblem(f"No login_id given for user {user_id}")
        if status not in ("active", "deleted", "suspended"):
            raise RowProblem(f'Improper status "{v.get("status", "")}" for user {user_id}, skipping')
        self._skip_delete(status)
        state = self.state
        user = state.by_sis("user", user_id)
        login_key = login_id.lower()  # Canvas logins are unique case-insensitively
        holder_id = state.users_by_login.get(login_key)
        holder = state.users[holder_id] if holder_id is not None else None
        if holder is not None and holder.login_state == "deleted":
            holder = None  # pseudonyms.active.by_unique_id: a deleted login claims nothing

        def who(other: User) -> str:
            return f"SIS ID {other.sis_id}" if other.sis_id else f"Canvas ID {other.id}"

        integration_id = v.get("integration_id", "")
        if integration_id and status != "deleted":
            other = state.by_integration("user", integration_id)
            if other is not None and other is not (user or holder):
                raise RowProblem(
                    f"An existing Canvas user with the {who(other)} has already claimed {user_id}'s requested "
                    "integration_id, skipping"
                )
        if user is None and holder is not None:
            if holder.sis_id and holder.sis_id != user_id:
                if not self.record.options.update_sis_id_if_login_claimed:
                    raise RowProblem(
                        f"An existing Canvas user with the SIS ID {holder.sis_id} has already claimed "
                        f"{user_id}'s user_id requested login information, skipping"
                    )
            user = holder  # the login is this row's (re-keyed to its SIS id below)
        elif user is not None and holder is not None and holder is not user and status != "deleted":
            raise RowProblem(
                f"An existing Canvas user with the {who(holder)} has already claimed {user_id}'s user_id "
                "requested login information, skipping"
            )
        provider_ref = v.get("authentication_provider_id", "")
        provider = None
        if provider_ref:
            provider = state.auth_providers.get(provider_ref)
            if provider is None:
                raise RowProblem(f"unrecognized authentication provider {provider_ref} for {user_id}, skipping")
        if user is not None and user.login_state == "deleted" and status == "deleted":
            user.sis_batch_id = self.batch_id
            return  # "if the pseudonym is already deleted, we're done"
        first, last = v.get("first_name", ""), v.get("last_name", "")
        name = v.get("full_name") or f"{first} {last}".strip() or login_id
        sortable = v.get("sortable_name") or (f"{last}, {first}" if first and last else name)
        short = v.get("short_name") or name
        created = user is None
        if user is None:
            user = User(state.next_id(), name, sortable, short, None, login_id)
            state.users[user.id] = user
            state.index["user"].set_sis(user, user_id)
        elif user.sis_id != user_id:
            state.index["user"].set_sis(user, user_id)
        if user.login_id.lower() != login_key:
            state.users_by_login.pop(user.login_id.lower(), None)
        state.users_by_login[login_key] = user.id
        user.login_id = login_id
        user.name, user.sortable_name, user.short_name = name, sortable, short
        if v.get("email"):
            user.email = v["email"]
        if integration_id:
            state.index["user"].set_integration(user, integration_id)
        # A blank authentication_provider_id unbinds the login from its provider (pseudo.authentication_provider = nil).
        user.authentication_provider_id = provider
        self._set_state("Pseudonym", LoginState(user), status, created=created)
        if status == "deleted":
            for enrollment in state.user_enrollments(user.id):
                if enrollment.workflow_state != "deleted":
                    self._set_state("Enrollment", enrollment, "deleted")
        user.sis_batch_id = self.batch_id

    # --- enrollments -----------------------------------------------------------------------

    def enrollment(self, v: dict[str, str]) -> None:
        course_id, section_id = v.get("course_id", ""), v.get("section_id", "")
        user_id, user_iid = v.get("user_id", ""), v.get("user_integration_id", "")
        status = v.get("status", "").lower()
        if not course_id and not section_id:
            raise RowProblem("No course_id or section_id given for an enrollment")
        if not user_id and not user_iid:
            raise RowProblem("No user_id given for an enrollment")
        if status not in ("active", "deleted", "completed", "inactive", "deleted_last_completed"):
            raise RowProblem(f'Improper status "{v.get("status", "")}" for an enrollment')
        self._skip_delete(status)
        state = self.state
        user = state.by_integration("user", user_iid) if user_iid else state.by_sis("user", user_id)
        if user is None:
            raise RowProblem(
                f"User not found for enrollment (User ID: {user_id}, Course ID: {course_id}, Section ID: {section_id})"
            )
        course = state.by_sis("course", course_id) if course_id else None
        section = state.by_sis("section", section_id) if section_id else None
        if course is None and section is None:
            raise RowProblem(
                "Neither course nor section existed for user enrollment "
                f"(Course ID: {course_id}, Section ID: {section_id}, User ID: {user_id})"
            )
        if section_id and section is None:
            raise RowProblem(f"An enrollment referenced a non-existent section {section_id}")
        if course_id and course is None:
            raise RowProblem(f"An enrollment referenced a non-existent course {course_id}")
        if section is None:
            assert course is not None  # "Neither course nor section existed" was raised above
            section = state.default_section_of(course)
        if course is None:
            course = state.courses[section.course_id]
        if course.id != section.course_id:
            raise RowProblem(
                f"An enrollment listed a section ({section_id}) and a course ({course_id}) that are "
                f"unrelated for user ({user_id})"
            )
        role = v.get("role", "")
        role_type = None
        if v.get("role_id"):
            role_type = next((t for t, i in BUILTIN_ROLE_IDS.items() if str(i) == v["role_id"]), None)
        role_type = role_type or _role_type(role)
        if role_type is None:
            raise RowProblem(f'Improper role "{role}" for an enrollment')
        associated_id = None
        if v.get("associated_user_id") and role_type == "ObserverEnrollment":
            associated = state.by_sis("user", v["associated_user_id"])
            if associated is None:
                raise RowProblem(f"An enrollment referenced a non-existent associated user {v['associated_user_id']}")
            associated_id = associated.id
        key = (user.id, role_type, associated_id)
        existing_id = state.enrollments_by_section.get(section.id, {}).get(key)
        enrollment = state.enrollments.get(existing_id) if existing_id is not None else None
        created = enrollment is None
        if enrollment is None:
            enrollment = Enrollment(state.next_id(), user.id, course.id, section.id, role_type, "active", associated_id)
            state.add_enrollment(enrollment, key)
        # lib/sis/enrollment_importer.rb#enrollment_status
        if not created and enrollment.workflow_state == "deleted" and user.login_state == "deleted":
            raise RowProblem(f"Attempted enrolling with deleted sis login {user.login_id} in course {course_id}")
        new_state = status
        if status == "deleted_last_completed":
            # deleted while another active enrollment of the user in the course (same role and associated
            # user) remains; concluded when it is the last one
            # user) remains; concluded when it is the last one. Deletions of existing enrollments are applied
            # at the end of the importer's batch (#deleted_status → @enrollments_to_delete), so one deleted
            # earlier in this import still counts as active here.
            others = [
                e
                for e in state.course_enrollments(course.id)
                if e is not enrollment
                and e.user_id == user.id
                and e.type == role_type
                and e.associated_user_id == associated_id
                and (e.workflow_state in ("active", "invited") or e.id in self.deferred_deletes)
            ]
            new_state = "deleted" if others else "completed"
        if new_state == "deleted" and not created:
            self.deferred_deletes.add(enrollment.id)
        if new_state == "active" and user.workflow_state == "deleted":
            self._set_state("Enrollment", enrollment, "deleted", created=created)
            enrollment.sis_batch_id = self.batch_id
            raise RowProblem(f"Attempted enrolling of deleted user {user_id} in course {course_id}")
        enrollment.start_at = v.get("start_date") or None
        enrollment.end_at = v.get("end_date") or None
        self._set_state("Enrollment", enrollment, new_state, created=created)
        enrollment.sis_batch_id = self.batch_id
