"""Step 4: does the data arriving through SIF match what Canvas holds now?

Users are matched on the PowerSchool ID (SIF LocalId = Canvas sis_user_id before the remap), courses on
their SIS course id, enrollments on (course, user, role). Each row gets a status and a reason; the
conflicts that would make the remap fail or hit the wrong person block the district's approval.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from django.db import transaction

from conversion.jobs import JobFailed, Progress
from conversion.models import Job, MappingDiff, MappingRow, MatchStatus, Snapshot
from conversion.services import bulk
from conversion.services.approved_mapping import LEGACY_GROUP
from conversion.services.canvas_api import canvas_for
from conversion.services.roster import Person, Roster
from conversion.services.sis_csv import planned_logins
from sifclient.records import EMAIL_RULE

M = MatchStatus


class DiffRow(NamedTuple):
    """One MappingRow before it is saved: a tuple, because a diff of 200k users makes 200k of them."""

    kind: str
    status: str
    key: str
    name: str = ""
    sif_value: str = ""
    canvas_value: str = ""
    dcid: str = ""
    reason: str = ""
    blocking: bool = False


_ROW_COLUMNS = ("diff_id",) + DiffRow._fields


def save_rows(diff: MappingDiff, rows: Iterable[DiffRow]) -> int:
    """Store the rows of `diff` (COPY on PostgreSQL); returns how many."""
    key = (diff.pk,)
    return bulk.insert_rows(
        MappingRow, _ROW_COLUMNS, (key + (r.kind, str(r.status)) + r[2:] for r in rows)
    )  # str(): the choice's value


@dataclass(frozen=True)
class CanvasUser:
    sis_user_id: str
    name: str
    sortable_name: str = ""
    login_id: str = ""


@dataclass(frozen=True)
class CanvasCourse:
    sis_course_id: str
    name: str
    canvas_id: int
    sis_term_id: str = ""
    sis_section_ids: tuple[str, ...] = ()
    term_dates: tuple[str, str] = ("", "")  # the course's term's start_at and end_at in Canvas (dates only)


def diff_term_dates(
    roster: Roster, canvas_courses: Iterable[CanvasCourse], renamed: dict[str, str] | None = None
) -> list[DiffRow]:
    """Terms whose dates in Canvas differ from PowerSchool's TermInfo: edited by hand in Canvas, most likely.
    Canvas keeps dates edited in its interface over an SIS import's (term start/end dates are sticky:
    lib/sis/csv/term_importer.rb, the SIS CSV document's S mark), so the district is told, not overwritten
    silently: a row to read, not blocking."""
    renamed = renamed or {}
    terms = {t.term_id: t for t in roster.terms.values()}
    rows, seen = [], set()
    for course in canvas_courses:
        term = terms.get(renamed.get(course.sis_term_id, course.sis_term_id))
        if term is None or term.term_id in seen or not any(course.term_dates):
            continue
        seen.add(term.term_id)
        canvas_dates = tuple(d[:10] for d in course.term_dates)
        if canvas_dates != (term.start_date or "", term.end_date or ""):
            rows.append(
                DiffRow(
                    kind="term",
                    status=M.CONFLICT,
                    key=term.term_id,
                    name=term.name,
                    sif_value=f"{term.start_date} – {term.end_date}",
                    canvas_value=f"{canvas_dates[0] or '?'} – {canvas_dates[1] or '?'}",
                    reason="Canvas's term dates differ from PowerSchool's (edited by hand?): Canvas keeps "
                    "its own; correct one of them",
                )
            )
    return rows


LEGACY_KINDS = {"legacy_term": "term", "legacy_course": "course", "legacy_section": "section"}
# A section the legacy integration put in another section's course (several sections in one Canvas course, by
# sections.csv or cross-listed with xlists.csv): the sync keeps it there (Roster course_groups).


def learn_legacy_ids(roster: Roster, canvas_courses: Iterable[CanvasCourse]) -> list[DiffRow]:
    """How the legacy integration named terms, courses and sections, learned from Canvas: a Canvas section whose
    SIS id holds, as one run of digits, exactly one PowerSchool section LocalId (SectionInfo/LocalId) is that
    section; its course and its course's term are that section's course and term. Each old id that differs from
    the one the sync writes becomes a row the remap renames with change_sis_id (types term, course and section:
    lib/sis/csv/change_sis_id_importer.rb). A legacy course holding several sections (cross-listed) becomes the
    course of its first section, and each other section gets a `legacy_group` row: the sync keeps it in that course
    rather than making it one of its own (which would move it out: section_importer.rb#add_section moves a section
    to the course its row names, and uncrosslists a cross-listed one first). Ids already used in Canvas are never
    claimed twice."""
    import re

    by_local = {s.local_id: s for s in roster.sections.values()}
    courses = list(canvas_courses)
    taken = {
        "section": {i for c in courses for i in c.sis_section_ids},
        "course": {c.sis_course_id for c in courses},
        "term": {c.sis_term_id for c in courses},
    }
    renames: dict[str, dict[str, tuple[str, str]]] = {"term": {}, "course": {}, "section": {}}
    grouped: dict[str, tuple[str, str, str]] = {}  # section id -> (the course it stays in, legacy course id, name)

    def claim(kind: str, old: str | None, new: str, name: str) -> None:
        if not old or old == new or old in renames[kind] or new in taken[kind]:
            return
        if any(target == new for target, _ in renames[kind].values()):
            return
        renames[kind][old] = (new, name)

    for course in courses:
        matched = []
        for old in course.sis_section_ids:
            candidates = {by_local[t] for t in re.findall(r"\d+", old) if t in by_local}
            if len(candidates) == 1:
                section = candidates.pop()
                matched.append(section)
                claim("section", old, section.section_id, section.name)
        if matched:
            first = matched[0]
            claim("course", course.sis_course_id, first.course_id, first.name)
            if first.term:
                claim("term", course.sis_term_id, first.term.term_id, first.term.name)
            for other in matched[1:]:
                if other.course_id != first.course_id:
                    grouped[other.section_id] = (first.course_id, course.sis_course_id, other.name)
    rows = []
    for section_id, (course_id, old, name) in sorted(grouped.items()):
        rows.append(
            DiffRow(
                kind=LEGACY_GROUP,
                status=M.MATCHED,
                key=section_id,
                name=name,
                sif_value=course_id,
                canvas_value=old,
                reason=f"the legacy integration put section {section_id} in course {old}: the sync keeps it in "
                f"{course_id}",
            )
        )
    for kind, by_old in renames.items():
        for old, (new, name) in sorted(by_old.items()):
            rows.append(
                DiffRow(
                    kind=f"legacy_{kind}",
                    status=M.MATCHED,
                    key=new,
                    name=name,
                    sif_value=new,
                    canvas_value=old,
                    reason=f"legacy {kind} id {old}: the remap renames it to {new}",
                )
            )
    return rows


_CSV_ROLE = {
    "StudentEnrollment": "student",
    "TeacherEnrollment": "teacher",
    "TaEnrollment": "ta",
    "ObserverEnrollment": "observer",
    "DesignerEnrollment": "designer",
}


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def names_match(person: Person, user: CanvasUser) -> bool:
    wanted = _norm(person.name)
    sortable = _norm(f"{person.last_name}, {person.first_name}")
    return wanted == _norm(user.name) or bool(user.sortable_name and sortable == _norm(user.sortable_name))


def diff_users(
    people: Iterable[Person], canvas_users: Iterable[CanvasUser], logins: dict[str, str] | None = None
) -> list[DiffRow]:
    """The user half of the mapping: plain data in, rows to save out.

    `logins` (person RefId -> the login the sync would write, sis_csv.planned_logins): an existing Canvas user
    whose login would change is a blocking conflict. Canvas's SIS import rewrites a pseudonym's unique_id from
    users.csv login_id (lib/sis/user_importer.rb), and a changed login is a changed sign-in: an SSO district's
    users would be locked out the first night."""
    logins = logins or {}
    people = list(people)
    by_local: dict[str, list[Person]] = defaultdict(list)
    by_dcid: dict[str, list[Person]] = defaultdict(list)
    for p in people:
        by_local[p.local_id].append(p)
        if p.dcid:
            by_dcid[p.dcid].append(p)
    canvas = {u.sis_user_id: u for u in canvas_users if u.sis_user_id}
    rows: list[DiffRow] = []
    used_canvas: set[str] = set()

    def row(status: M, p: Person, reason: str, canvas_value: str = "", blocking: bool = False) -> None:
        if p.email_choice.several:  # the district sees which address (and login) Canvas gets, and what is left
            reason = f"{reason}; {p.email_choice.describe()}"
        rows.append(DiffRow("user", status, p.local_id, p.name, p.kind, canvas_value, p.dcid, reason[:300], blocking))

    for p in people:
        if len(by_local[p.local_id]) > 1:
            kinds = " and ".join(sorted({q.kind for q in by_local[p.local_id]}))
            row(M.CONFLICT, p, f"PowerSchool ID {p.local_id} is used by more than one person ({kinds})", blocking=True)
            used_canvas.add(p.local_id)
            continue
        current = canvas.get(p.local_id)
        remapped = canvas.get(p.dcid) if p.dcid else None
        if current is None and remapped is not None and remapped.sis_user_id not in by_local:
            used_canvas.add(p.dcid)
            wanted = logins.get(p.ref_id)
            if wanted and remapped.login_id and wanted.casefold() != remapped.login_id.casefold():
                row(
                    M.CONFLICT,
                    p,
                    f"login would change from {remapped.login_id} to {wanted}: set the district's "
                    "login rule to the one Canvas holds",
                    canvas_value=p.dcid,
                    blocking=True,
                )
            else:
                row(M.MATCHED, p, "already under its DCID", canvas_value=p.dcid)
            continue
        if current is None:
            row(M.ONLY_SIF, p, "not in Canvas yet: the first sync will create this user under the DCID")
            continue
        used_canvas.add(p.local_id)
        if not p.dcid:
            row(
                M.CONFLICT,
                p,
                "no DCID in the SIF data: the agent.cfg mapping is missing",
                current.sis_user_id,
                blocking=True,
            )
        elif len(by_dcid[p.dcid]) > 1:
            others = ", ".join(q.local_id for q in by_dcid[p.dcid] if q is not p)
            row(M.CONFLICT, p, f"DCID {p.dcid} is claimed twice (also by {others})", current.sis_user_id, blocking=True)
        elif p.dcid in canvas and p.dcid != p.local_id and p.dcid not in by_local:
            row(
                M.CONFLICT,
                p,
                f"DCID {p.dcid} is already the SIS ID of another Canvas user ({canvas[p.dcid].name})",
                current.sis_user_id,
                blocking=True,
            )
        elif logins.get(p.ref_id) and current.login_id and logins[p.ref_id].casefold() != current.login_id.casefold():
            row(
                M.CONFLICT,
                p,
                f"login would change from {current.login_id} to {logins[p.ref_id]}: set the "
                "district's login rule to the one the legacy integration used",
                current.sis_user_id,
                blocking=True,
            )
        elif not names_match(p, current):
            row(
                M.CONFLICT,
                p,
                f"name differs: Canvas has “{current.name}”; the sync will update it",
                current.sis_user_id,
            )
        else:
            row(M.MATCHED, p, "same PowerSchool ID and name", current.sis_user_id)
    for sis_id, user in canvas.items():
        if sis_id not in used_canvas:
            rows.append(
                DiffRow(
                    kind="user",
                    status=M.ONLY_CANVAS,
                    key=sis_id,
                    name=user.name,
                    canvas_value=sis_id,
                    reason="not in the SIF data: left the district or in a school not synced",
                )
            )
    return rows


def diff_courses(
    roster: Roster, canvas_courses: Iterable[CanvasCourse], renamed: dict[str, str] | None = None
) -> list[DiffRow]:
    """Courses by SIS id; `renamed` (legacy course id -> the sync's) counts a legacy course as the one it becomes."""
    renamed = renamed or {}
    canvas = {renamed.get(c.sis_course_id, c.sis_course_id): c for c in canvas_courses if c.sis_course_id}
    rows = []
    for section in roster.sections.values():
        course = canvas.pop(section.course_id, None)
        if course is None:
            rows.append(
                DiffRow(
                    kind="course",
                    status=M.ONLY_SIF,
                    key=section.course_id,
                    name=section.name,
                    sif_value=section.school.name,
                    reason="not in Canvas yet: the first sync creates it",
                )
            )
        elif _norm(course.name) != _norm(section.name):
            rows.append(
                DiffRow(
                    kind="course",
                    status=M.CONFLICT,
                    key=section.course_id,
                    name=section.name,
                    canvas_value=course.name,
                    reason="name differs; the sync will update it",
                )
            )
        else:
            rows.append(
                DiffRow(
                    kind="course",
                    status=M.MATCHED,
                    key=section.course_id,
                    name=section.name,
                    canvas_value=course.name,
                    reason="same SIS course id and name",
                )
            )
    for sis_id, course in canvas.items():
        rows.append(
            DiffRow(
                kind="course",
                status=M.ONLY_CANVAS,
                key=sis_id,
                name=course.name,
                reason="not in the SIF data for this school year and these schools",
            )
        )
    return rows


def diff_enrollments(roster: Roster, canvas_enrollments: set[tuple[str, str, str]]) -> tuple[list[DiffRow], int]:
    """Enrollments compared as (course id, PowerSchool ID, role) triples; only differences are listed."""
    sif = {(e.section.course_id, e.person.local_id, e.role) for e in roster.iter_enrollments()}
    rows = [
        DiffRow(kind="enrollment", status=M.ONLY_SIF, key=f"{c} {u} {r}", reason="will be added by the sync")
        for c, u, r in sorted(sif - canvas_enrollments)
    ] + [
        DiffRow(
            kind="enrollment",
            status=M.ONLY_CANVAS,
            key=f"{c} {u} {r}",
            reason="not in the SIF data: the sync will drop it",
        )
        for c, u, r in sorted(canvas_enrollments - sif)
    ]
    matched = len(sif & canvas_enrollments)
    return rows, matched


def fingerprint_rows(rows: Iterable[DiffRow]) -> str:
    digest = hashlib.sha256()
    for line in sorted(f"{r.kind}|{r.status}|{r.key}|{r.dcid}|{r.reason}" for r in rows):
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def run_mapping(job: Job, progress: Progress) -> None:
    conversion = job.conversion
    snapshot = Snapshot.objects.latest_complete(conversion)
    if snapshot is None:
        raise JobFailed("There is no complete pull to compare with Canvas: run a pull first.")
    roster = Roster.for_snapshot(snapshot)
    account = conversion.district.canvas_account_id or "1"
    progress.update(current=0, total=4, message="Reading Canvas users", force=True)
    with canvas_for(conversion.district) as canvas:
        users = []
        for n, u in enumerate(canvas.iter_users(account), 1):
            users.append(CanvasUser(u.sis_user_id or "", u.name or "", u.sortable_name or "", u.login_id or ""))
            if n % 500 == 0:
                progress.update(message=f"Reading Canvas users: {n:,}")
        progress.update(current=1, message=f"{len(users):,} Canvas users read; reading courses", force=True)
        in_scope = {s.course_id for s in roster.sections.values()}
        courses = []
        for c in canvas.iter_courses(account):
            # A course the sync does not name is read with its sections: it may be the legacy integration's.
            sections = (
                ()
                if (c.sis_course_id or "") in in_scope or not c.sis_course_id
                else tuple(s.sis_section_id for s in canvas.iter_sections(c.id) if s.sis_section_id)
            )
            term = c.raw.get("term") or {}
            courses.append(
                CanvasCourse(
                    c.sis_course_id or "",
                    c.name,
                    c.id,
                    c.sis_term_id or "",
                    sections,
                    (term.get("start_at") or "", term.get("end_at") or ""),
                )
            )
        read = [c for c in courses if c.sis_course_id in in_scope]
        progress.update(current=2, message=f"{len(courses):,} Canvas courses; reading enrollments", force=True)
        canvas_enrollments: set[tuple[str, str, str]] = set()
        for n, course in enumerate(read, 1):
            for e in canvas.iter_enrollments(course_id=course.canvas_id):
                # enrollments.csv role names by the API's enrollment type (Enrollment#type, canvas-lms
                # app/models/enrollment.rb: StudentEnrollment, TeacherEnrollment, TaEnrollment, …)
                role = _CSV_ROLE.get(e.type, e.role)
                if e.sis_user_id:
                    canvas_enrollments.add((course.sis_course_id, e.sis_user_id, role))
            if n % 20 == 0:
                progress.update(message=f"Enrollments of {n:,} of {len(read):,} courses read")
    progress.update(current=3, message="Comparing", force=True)
    people = list(roster.iter_people())
    several_emails = sum(1 for p in people if p.email_choice.several)
    legacy_rows = learn_legacy_ids(roster, courses)
    renamed_courses = {r.canvas_value: r.key for r in legacy_rows if r.kind == "legacy_course"}
    rows = diff_users(people, users, planned_logins(roster)) + diff_courses(roster, courses, renamed_courses)
    renamed_terms = {r.canvas_value: r.key for r in legacy_rows if r.kind == "legacy_term"}
    rows += legacy_rows + diff_term_dates(roster, courses, renamed_terms)
    enrollment_rows, matched_enrollments = diff_enrollments(roster, canvas_enrollments)
    rows += enrollment_rows
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        counts[r.kind][r.status] += 1
    counts["enrollment"][M.MATCHED] += matched_enrollments
    with transaction.atomic():
        diff = MappingDiff.objects.create(
            conversion=conversion,
            snapshot=snapshot,
            job=job,
            counts={k: dict(v) for k, v in counts.items()},
            blocking_count=sum(1 for r in rows if r.blocking),
            fingerprint=fingerprint_rows(rows),
        )
        save_rows(diff, rows)
    users_count = counts["user"]
    term_warnings = roster.term_date_warnings()
    progress.update(
        current=4,
        detail={"mapping_diff": diff.pk, "term_warnings": term_warnings},
        message=(
            f"Users: {users_count[M.MATCHED]:,} matched, {users_count[M.CONFLICT]:,} conflicting, "
            f"{users_count[M.ONLY_SIF]:,} only in SIF, {users_count[M.ONLY_CANVAS]:,} only in Canvas; "
            f"{diff.blocking_count:,} blocking"
            + (
                f"; {several_emails:,} with several e-mail addresses in PowerSchool (Canvas gets {EMAIL_RULE})"
                if several_emails
                else ""
            )
            + (f"; {len(term_warnings)} term(s) whose end date disagrees with exit dates" if term_warnings else "")
        ),
        force=True,
    )
