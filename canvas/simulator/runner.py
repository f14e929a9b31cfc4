"""Running SIS imports asynchronously, one at a time, as Canvas's job queue does.

Pipeline of one import: read the upload → (diffing) replace each file by its changes since the
last successful import with the same data set identifier → apply files in Canvas's processing
order, in chunks so progress moves and readers are not blocked → (batch mode) delete what the
term held that this import did not mention → final workflow_state.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass

from canvas.csv_formats import PROCESSING_ORDER
from canvas.simulator.apply_rows import RowApplier, RowProblem, Skipped
from canvas.simulator.sis_import import KIND_COUNT, SisImportRecord, StateChange
from canvas.simulator.state import CanvasState, now_iso
from canvas.simulator.upload import CsvRow, Message, ParsedFile, read_upload

CHUNK_ROWS = 2000

# The columns that identify a row, for telling "changed" from "removed" when diffing.
DIFF_KEYS = {
    "accounts": ("account_id",), "terms": ("term_id",), "courses": ("course_id",),
    "sections": ("section_id",), "users": ("user_id",),
    "enrollments": ("course_id", "section_id", "user_id", "user_integration_id", "role", "role_id",
                    "associated_user_id"),
}


@dataclass
class DiffBase:
    import_id: int
    files: dict[str, ParsedFile]


def _canonical(row: CsvRow) -> tuple:
    return tuple(sorted((k, v) for k, v in row.values.items() if v))


class ImportRunner:
    def __init__(self, state: CanvasState):
        self.state = state
        self.imports: dict[int, SisImportRecord] = {}
        self.diff_bases: dict[str, DiffBase] = {}
        self._queue: queue.Queue[SisImportRecord | None] = queue.Queue()
        self.gate = threading.Event()  # cleared = imports wait in "created" (pause_imports)
        self.gate.set()
        self.idle = threading.Event()
        self.idle.set()
        self._thread = threading.Thread(target=self._work, name="canvas-sim-sis-import", daemon=True)
        self._thread.start()

    def submit(self, record: SisImportRecord) -> None:
        with self.state.lock:
            self.imports[record.id] = record
        self.idle.clear()
        self._queue.put(record)

    def stop(self) -> None:
        self.gate.set()
        self._queue.put(None)
        self._thread.join(timeout=10)

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self.idle.wait(timeout)

    def _work(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            self.gate.wait()
            try:
                if not record.abort_requested.is_set():
                    self.run(record)
            except Exception as exc:  # noqa: BLE001 - a crash must fail the import, as Canvas does
                with self.state.lock:
                    record.messages.append(
                        Message(None, f"Error while importing CSV. Please contact support. ({exc})", failure=True)
                    )
                    record.set_state("failed_with_messages")
                    record.ended_at = now_iso()
            finally:
                if self._queue.empty():
                    self.idle.set()

    # --- one import --------------------------------------------------------------------------

    def run(self, record: SisImportRecord) -> None:
        with self.state.lock:
            record.set_state("importing")
        upload = read_upload(record.content, record.extension, record.file_name)
        files = upload.files
        with self.state.lock:
            record.messages.extend(upload.messages)
            record.supplied_batches = [k for k in PROCESSING_ORDER if any(f.kind == k for f in files)]
            for kind in record.supplied_batches:
                record.counts[KIND_COUNT[kind]] = 0
        full_files = files
        if record.options.diffing_data_set_identifier:
            files = self._diff(record, files)
        ordered = sorted(files, key=lambda f: PROCESSING_ORDER.index(f.kind))
        total = max(1, sum(len(f.rows) for f in ordered))
        done = 0
        applier = RowApplier(self.state, record)
        for parsed in ordered:
            handler = applier.handlers[parsed.kind]
            for start in range(0, len(parsed.rows), CHUNK_ROWS):
                if record.abort_requested.is_set():
                    with self.state.lock:
                        record.set_state("aborted")
                        record.ended_at = now_iso()
                    return
                with self.state.lock:
                    for row in parsed.rows[start:start + CHUNK_ROWS]:
                        try:
                            handler(row.values)
                        except Skipped:
                            continue
                        except RowProblem as problem:
                            record.messages.append(Message(parsed.name, str(problem), row=row.line, row_info=row.raw))
                            continue
                        record.counts[KIND_COUNT[parsed.kind]] += 1
                    done += len(parsed.rows[start:start + CHUNK_ROWS])
                    record.progress = min(99, int(done * 100 / total))
                    record.updated_at = now_iso()
        with self.state.lock:
            if record.options.batch_mode:
                self._batch_cleanup(record)
            failed = any(m.failure for m in record.messages)
            if failed:
                record.set_state("failed_with_messages")
            else:
                record.set_state("imported_with_messages" if record.messages else "imported")
                self._remember_base(record, full_files)
            record.progress = 100
            record.ended_at = now_iso()

    # --- diffing -----------------------------------------------------------------------------

    def _remember_base(self, record: SisImportRecord, files: list[ParsedFile]) -> None:
        identifier = record.options.diffing_data_set_identifier
        if not identifier:
            return
        by_kind: dict[str, ParsedFile] = {}
        for kind in {f.kind for f in files}:
            same = [f for f in files if f.kind == kind]
            if len(same) == 1:
                by_kind[kind] = same[0]
        self.diff_bases[identifier] = DiffBase(record.id, by_kind)

    def _diff(self, record: SisImportRecord, files: list[ParsedFile]) -> list[ParsedFile]:
        """Each file reduced to the rows that changed since the base, plus removal rows."""
        options = record.options
        base = self.diff_bases.get(options.diffing_data_set_identifier or "")
        if base is None or options.diffing_remaster_data_set:
            return files
        result: list[ParsedFile] = []
        diffed_any = False
        for parsed in files:
            previous = base.files.get(parsed.kind)
            same_kind = [f for f in files if f.kind == parsed.kind]
            if previous is None or len(same_kind) != 1 or parsed.kind not in DIFF_KEYS:
                result.append(parsed)
                continue
            threshold = options.change_threshold
            if threshold and previous.size and abs(1 - parsed.size / previous.size) * 100 > threshold:
                record.diffing_threshold_exceeded = True
                result.append(parsed)
                continue
            diffed_any = True
            seen = {_canonical(r) for r in previous.rows}
            changed = [r for r in parsed.rows if _canonical(r) not in seen]
            key_columns = DIFF_KEYS[parsed.kind]
            current_keys = {tuple(r.values.get(c, "") for c in key_columns) for r in parsed.rows}
            drop_status = "deleted"
            if parsed.kind == "enrollments" and options.diffing_drop_status:
                drop_status = options.diffing_drop_status
            if parsed.kind == "users" and options.diffing_user_remove_status:
                drop_status = options.diffing_user_remove_status
            for old in previous.rows:
                if tuple(old.values.get(c, "") for c in key_columns) not in current_keys:
                    values = dict(old.values, status=drop_status)
                    changed.append(CsvRow(old.line, values, old.raw))
            result.append(ParsedFile(parsed.name, parsed.kind, parsed.header, changed, parsed.size))
        if diffed_any:
            record.diffed_against_import_id = base.import_id
        return result

    # --- batch mode --------------------------------------------------------------------------

    def _batch_cleanup(self, record: SisImportRecord) -> None:
        """Delete SIS-created courses, sections and enrollments of the term this import left out."""
        options = record.options
        ref = options.batch_mode_term_id or ""
        term = self.state.resolve("term", ref) if ref.startswith("sis_term_id:") or ref.isdigit() else self.state.by_sis("term", ref)
        if term is None:
            record.messages.append(Message(None, "Batch mode specified, but the given batch_mode_term_id cannot be found.", failure=True))
            return
        state = self.state
        term_courses = [c for c in state.courses.values() if c.term_id == term.id]
        plans = []
        if "courses" in record.supplied_batches:
            scope = [c for c in term_courses if c.workflow_state != "deleted" and c.sis_batch_id is not None]
            plans.append(("Course", "courses", "batch_courses_deleted", scope, "deleted"))
        if "sections" in record.supplied_batches:
            scope = [
                state.sections[s] for c in term_courses for s in state.sections_by_course.get(c.id, [])
                if state.sections[s].workflow_state != "deleted" and state.sections[s].sis_batch_id is not None
            ]
            plans.append(("CourseSection", "sections", "batch_sections_deleted", scope, "deleted"))
        if "enrollments" in record.supplied_batches:
            scope = [
                e for c in term_courses for e in state.course_enrollments(c.id)
                if e.workflow_state != "deleted" and e.sis_batch_id is not None
            ]
            drop = options.batch_mode_enrollment_drop_status or "deleted"
            plans.append(("Enrollment", "enrollments", "batch_enrollments_deleted", scope, drop))
        for kind, label, count_key, scope, new_state in plans:
            stale = [o for o in scope if o.sis_batch_id != record.id]
            threshold = options.change_threshold
            if threshold and scope and len(stale) * 100 / len(scope) > threshold:
                record.messages.append(Message(
                    None,
                    f"{len(stale)} {label} would be deleted and exceeds the set threshold of {threshold}%",
                    failure=True,
                ))
                continue
            for obj in stale:
                record.changes.append(StateChange(kind, obj, obj.workflow_state, new_state, batch_cleanup=True))
                obj.workflow_state = new_state
            record.counts[count_key] = len(stale)

    # --- restore_states ----------------------------------------------------------------------

    def restore(self, record: SisImportRecord, *, batch_mode: bool, undelete_only: bool, unconclude_only: bool) -> int:
        """Put back the workflow states an import changed; returns how many were restored."""
        restored = 0
        with self.state.lock:
            for change in reversed(record.changes):
                if batch_mode and not change.batch_cleanup:
                    continue
                if undelete_only and change.updated != "deleted":
                    continue
                if unconclude_only and change.updated != "completed":
                    continue
                if change.obj.workflow_state != change.updated:
                    continue  # changed again since; Canvas leaves such rows alone too
                change.obj.workflow_state = "deleted" if change.previous == "non-existent" else change.previous
                restored += 1
            partial = any(
                c.obj.workflow_state == c.updated for c in record.changes
                if not (batch_mode and not c.batch_cleanup)
            )
            record.set_state("partially_restored" if partial and (undelete_only or unconclude_only or batch_mode) else "restored")
        return restored
