"""Running SIS imports asynchronously, one at a time per account, as Canvas's job strand does.

One import, as canvas-lms app/models/sis_batch.rb and lib/sis/csv/import_refactored.rb run it:
process_without_send_later (created → importing; an aborted batch is only marked done) → generate_diff
(with a diffing_data_set_identifier) → ImportRefactored#prepare and #process (one attachment per CSV,
supplied_batches, a count for every importer, the rows in IMPORTERS order) → finish / do_batch_end_work
(batch mode's cleanup in `cleanup_batch`, the final workflow_state, the capped messages, the errors
attachment, data.statistics).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from canvas.simulator.apply_rows import RowApplier, RowProblem, Skipped
from canvas.simulator.sis_import import (
    COUNT_KEYS,
    IMPORTERS,
    KIND_COUNT,
    KIND_IMPORTER,
    SUCCEEDED,
    VALID_ENROLLMENT_DROP_STATUS,
    Attachment,
    SisImportRecord,
)
from canvas.simulator.state import CanvasState, now_iso
from canvas.simulator.upload import CsvRow, Message, ParsedFile, read_upload

CHUNK_ROWS = 2000

# The identifying columns of each importer (SIS::CSV::*Importer.identifying_fields, used by CsvDiff to tell a
# changed row from a removed one in lib/sis/csv/diff_generator.rb#generate_diff).
DIFF_KEYS = {
    "accounts": ("account_id",),
    "terms": ("term_id",),
    "courses": ("course_id",),
    "sections": ("section_id",),
    "users": ("user_id",),
    "enrollments": (
        "course_id",
        "section_id",
        "user_id",
        "user_integration_id",
        "role",
        "role_id",
        "associated_user_id",
    ),
}
# ImportRefactored::HEADERS_TO_EXCLUDE_FOR_DOWNLOAD: a users file with these columns is offered for download
# as "<name>_filtered.csv" without them (import_refactored.rb#process_file, #create_filtered_csv).
HEADERS_TO_EXCLUDE_FOR_DOWNLOAD = ("password", "ssha_password")


def _canonical(row: CsvRow) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in row.values.items() if v))


def _order(kind: str) -> int:
    return IMPORTERS.index(KIND_IMPORTER[kind])


class ImportRunner:
    def __init__(self, state: CanvasState, *, base_url: Callable[[], str] = lambda: ""):
        self.state = state
        self.base_url = base_url
        self.imports: dict[int, SisImportRecord] = {}
        self._queue: queue.Queue[SisImportRecord | None] = queue.Queue()
        self.gate = threading.Event()  # cleared = imports wait in "created" (pause_imports)
        self.gate.set()
        self.idle = threading.Event()
        self.idle.set()
        self._restores: list[threading.Thread] = []
        # A test hook: hold the running import at a stage ("importing" or "cleanup_batch") so those states can
        # be seen from outside; `held` is set while it waits, `release` lets it go on.
        self.hold_at: str | None = None
        self.held = threading.Event()
        self.release = threading.Event()
        # Fault switch (fail_next_import): the next imports break outside the CSV importer, as an exception that
        # SisBatch#process itself catches (a lost upload, a database error); see run().
        self.fail_next: list[str] = []
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
        if not self.idle.wait(timeout):
            return False
        for thread in list(self._restores):
            thread.join(timeout)
        return True

    def _work(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            self.gate.wait()
            try:
                self.run(record)
            except Exception:  # noqa: BLE001 - ImportRefactored#fail_with_error!
                with self.state.lock:
                    if record.workflow_state != "aborted":
                        record.messages.append(
                            Message(
                                None,
                                f"Error while importing CSV. Please contact support. (Error report {record.id})",
                                failure=True,
                            )
                        )
                        record.set_state("failed_with_messages")
                        self._end(record, import_finished=False)
            finally:
                if self._queue.empty():
                    self.idle.set()

    # --- one import --------------------------------------------------------------------------

    def _hold(self, stage: str) -> None:
        if self.hold_at == stage:
            self.held.set()
            self.release.wait()
            self.release.clear()
            self.held.clear()

    def _attach(
        self,
        record: SisImportRecord,
        name: str,
        content: bytes,
        *,
        display_name: str | None = None,
        content_type: str = "text/csv",
    ) -> Attachment:
        attachment = Attachment(self.state.next_id(), display_name or name, name, content, content_type)
        record.attachments.append(attachment)
        return attachment

    def _attach_files(self, record: SisImportRecord, files: list[ParsedFile], *, diffed: bool = False) -> None:
        """ImportRefactored#prepare / #process_file: one attachment per recognised CSV, named after the file
        (File.basename); a single uploaded CSV is the batch's own attachment, whose display name Canvas set to
        "sis_upload_<id>.zip" (SisBatch.create_with_attachment); users files carrying passwords are offered
        filtered."""
        ids = record.data.setdefault("downloadable_attachment_ids", [])
        for parsed in files:
            base = parsed.name.rsplit("/", 1)[-1]
            excluded = [h for h in parsed.header if h in HEADERS_TO_EXCLUDE_FOR_DOWNLOAD]
            if parsed.kind == "users" and excluded:
                keep = [h for h in parsed.header if h not in excluded]
                lines = [",".join(keep)] + [",".join(r.values.get(h, "") for h in keep) for r in parsed.rows]
                name = base[:-4] + "_filtered.csv" if base.lower().endswith(".csv") else base + "_filtered.csv"
                attachment = self._attach(record, name, ("\n".join(lines) + "\n").encode())
            elif record.extension == "csv" and not diffed:
                attachment = self._attach(
                    record, record.file_name, parsed.content, display_name=f"sis_upload_{record.id}.zip"
                )
            else:
                attachment = self._attach(record, base, parsed.content)
            ids.append(attachment.id)
            if diffed:
                record.diffed_attachment_ids.append(attachment.id)
                record.data.setdefault("diffed_attachment_ids", []).append(attachment.id)

    def _aborted(self, record: SisImportRecord) -> bool:
        # SisBatch#fast_update_progress raises SisBatch::Aborted once the row says "aborted".
        return record.workflow_state == "aborted" or record.abort_requested.is_set()

    def run(self, record: SisImportRecord) -> None:
        with self.state.lock:
            # sis_batch.rb#process_without_send_later
            if record.workflow_state == "aborted":
                record.progress = 100
                record.updated_at = now_iso()
                return
            if record.workflow_state != "created":
                return
            record.set_state("importing")
            record.progress = 0
            record.started_at = now_iso()
            if self.fail_next:
                # app/models/sis_batch.rb#process: an exception that escapes the import type's callback (the
                # CSV importer catches its own and ends `failed_with_messages`) is rescued at the batch level:
                # the exception's text goes to data["error_message"] (and a stack trace, not shown here), the
                # state becomes plain `failed`, progress stays where it was, and no processing error, error
                # attachment or ended_at is written. The controller refuses an unknown import_type before a batch
                # exists, so through the API only an internal error reaches this state: a fault switch.
                record.data["error_message"] = self.fail_next.pop(0)
                record.set_state("failed")
                record.updated_at = now_iso()
                return
        self._hold("importing")
        upload = read_upload(record.content, record.extension, record.file_name)
        with self.state.lock:
            record.messages.extend(upload.messages)
            record.upload_size = upload.uncompressed_size
            if record.options.diffing_data_set_identifier:
                record.full_files = upload.files
        files = upload.files
        diffed = None
        if record.options.diffing_data_set_identifier:
            diffed = self._diff(record, upload.files, upload.uncompressed_size)
        with self.state.lock:
            self._attach_files(record, upload.files)
            if diffed is not None:
                files = diffed
                self._attach_files(record, files, diffed=True)
            # ImportRefactored#process: supplied_batches (singular importer names) and a zero count for every
            # importer before any row runs.
            present = {KIND_IMPORTER[f.kind] for f in files}
            record.supplied_batches = [i for i in IMPORTERS if i in present]
            record.data["supplied_batches"] = list(record.supplied_batches)
            for key in COUNT_KEYS:
                record.counts[key] = 0
            record.data["completed_importers"] = []
        ordered = sorted(files, key=lambda f: _order(f.kind))
        total = max(1, sum(len(f.rows) for f in ordered))
        done = 0
        applier = RowApplier(self.state, record)
        for parsed in ordered:
            handler = applier.handlers[parsed.kind]
            for start in range(0, len(parsed.rows), CHUNK_ROWS):
                with self.state.lock:
                    if self._aborted(record):
                        record.set_state("aborted")
                        return
                    for row in parsed.rows[start : start + CHUNK_ROWS]:
                        try:
                            handler(row.values)
                        except Skipped:
                            continue
                        except RowProblem as problem:
                            record.messages.append(Message(parsed.name, str(problem), row=row.line, row_info=row.raw))
                            continue
                        record.counts[KIND_COUNT[parsed.kind]] += 1
                    done += len(parsed.rows[start : start + CHUNK_ROWS])
                    record.progress = min(99, int(done * 100 / total))
                    record.updated_at = now_iso()
            with self.state.lock:
                importer = KIND_IMPORTER[parsed.kind]
                if importer not in record.data["completed_importers"]:
                    record.data["completed_importers"].append(importer)
        with self.state.lock:
            if self._aborted(record):
                record.set_state("aborted")
                return
            # SisBatch#finish → #do_batch_end_work → #remove_previous_imports, which marks the batch
            # `cleanup_batch` when it has a term and a courses, sections or enrollments file.
            cleanup = (
                record.options.batch_mode
                and record.batch_mode_term is not None
                and any(i in ("course", "section", "enrollment") for i in record.supplied_batches)
            )
            if cleanup:
                record.set_state("cleanup_batch")
        if cleanup:
            self._hold("cleanup_batch")
        with self.state.lock:
            if cleanup and not self._aborted(record):
                self._remove_previous_imports(record)
            failed = any(m.failure for m in record.messages)
            self._end(record, import_finished=not failed)

    def _end(self, record: SisImportRecord, *, import_finished: bool) -> None:
        """do_batch_end_work: final state (an aborted batch stays aborted), messages, statistics, progress."""
        if record.workflow_state != "aborted":
            if import_finished:
                record.set_state("imported_with_messages" if record.messages else "imported")
            else:
                record.set_state("failed_with_messages" if record.messages else "failed")
        record.finalize_messages()
        if record.errors_attachment is not None and record.errors_attachment.id == 0:
            record.errors_attachment.id = self.state.next_id()
        record.data["statistics"] = record.statistics()
        if import_finished:
            record.progress = 100
        record.ended_at = now_iso()
        record.updated_at = record.ended_at

    # --- diffing: sis_batch.rb#generate_diff and lib/sis/csv/diff_generator.rb ----------------

    def _previous_batch(self, identifier: str, before: int) -> SisImportRecord | None:
        same = [
            r
            for r in self.imports.values()
            if r.id < before and r.workflow_state in SUCCEEDED and r.options.diffing_data_set_identifier == identifier
        ]
        same.sort(key=lambda r: r.id)
        # The latest that generated a diff or was a remaster; an import that went over a threshold generated
        # none, so it never becomes the baseline. Failing that, the first of the data set.
        chained = [r for r in same if r.generated_diff or r.options.diffing_remaster_data_set]
        if chained:
            return chained[-1]
        return same[0] if same else None

    def _warn(self, record: SisImportRecord, file: str | None, message: str) -> None:
        with self.state.lock:
            record.messages.append(Message(file, message))

    def _diff(self, record: SisImportRecord, files: list[ParsedFile], size: int) -> list[ParsedFile] | None:
        """The files to import instead of the upload's, or None when diffing is not performed."""
        options = record.options
        if options.diffing_remaster_data_set:
            return None  # joined the chain, but not diffed
        with self.state.lock:
            previous = self._previous_batch(options.diffing_data_set_identifier or "", record.id)
        if previous is None:
            return None
        threshold = options.change_threshold
        if threshold and previous.upload_size and abs(1 - size / previous.upload_size) * 100 > threshold:
            record.diffing_threshold_exceeded = True
            self._warn(record, None, "Diffing not performed because file size difference exceeded threshold")
            return None
        result: list[ParsedFile] = []
        row_count = 0
        kinds = sorted({f.kind for f in files}, key=_order)
        for kind in kinds:
            current = [f for f in files if f.kind == kind]
            before = [f for f in previous.full_files if f.kind == kind]
            if not before:
                result.extend(current)
                continue
            if len(current) > 1 or len(before) > 1:
                self._warn(record, current[0].name, "Can't perform diffing against more than one file of the same type")
                result.extend(current)
                continue
            parsed, old = current[0], before[0]
            if parsed.header != old.header:
                self._warn(record, parsed.name, "Couldn't generate diff: CSV headers do not match, cannot diff")
                result.extend(current)
                continue
            seen = {_canonical(r) for r in old.rows}
            changed = [r for r in parsed.rows if _canonical(r) not in seen]
            key_columns = DIFF_KEYS[kind]
            current_keys = {tuple(r.values.get(c, "") for c in key_columns) for r in parsed.rows}
            drop_status = "deleted"
            if kind == "enrollments" and options.diffing_drop_status in VALID_ENROLLMENT_DROP_STATUS:
                drop_status = options.diffing_drop_status
            if kind == "users" and options.diffing_user_remove_status:
                drop_status = options.diffing_user_remove_status
            for gone in old.rows:
                if tuple(gone.values.get(c, "") for c in key_columns) not in current_keys:
                    changed.append(CsvRow(gone.line, dict(gone.values, status=drop_status), gone.raw))
            row_count += len(changed)
            lines = [",".join(parsed.header)] + [r.raw for r in changed]
            result.append(
                ParsedFile(parsed.name, kind, parsed.header, changed, parsed.size, ("\n".join(lines) + "\n").encode())
            )
        limit = options.diff_row_count_threshold
        if limit and row_count > limit:
            record.diffing_threshold_exceeded = True
            self._warn(record, None, "Diffing not performed because difference row count exceeded threshold")
            return None
        record.diffing_threshold_exceeded = False
        record.generated_diff = True
        record.data["diffed_against_sis_batch_id"] = previous.id
        return result

    # --- batch mode: sis_batch.rb#remove_previous_imports ------------------------------------

    def _remove_previous_imports(self, record: SisImportRecord) -> None:
        options = record.options
        term = record.batch_mode_term
        if term is None:
            return
        supplied = [i for i in record.supplied_batches if i in ("course", "section", "enrollment")]
        if not supplied:
            return
        state = self.state
        term_courses = [c for c in state.courses.values() if c.term_id == term.id]
        in_term = {c.id for c in term_courses}
        course_scope = section_scope = enrollment_scope = None
        if "course" in supplied:  # term_course_scope: active, SIS-created courses of the term
            course_scope = [
                c
                for c in term_courses
                if c.workflow_state != "deleted" and c.sis_batch_id is not None and c.sis_id is not None
            ]
        if "section" in supplied:  # term_sections_scope
            section_scope = [
                s
                for s in state.sections.values()
                if s.course_id in in_term
                and s.workflow_state == "active"
                and s.sis_batch_id is not None
                and s.sis_id is not None
            ]
        drop = options.batch_mode_enrollment_drop_status or "deleted"
        if "enrollment" in supplied:  # term_enrollments_scope
            enrollment_scope = [
                e
                for e in state.enrollments.values()
                if e.course_id in in_term
                and e.workflow_state != "deleted"
                and e.sis_batch_id is not None
                and not (options.batch_mode_enrollment_drop_status and e.workflow_state == drop)
            ]
        plans = [("courses", course_scope), ("sections", section_scope), ("enrollments", enrollment_scope)]
        stale: dict[str, list[Any]] = {}
        # detect_changes / detect_change_item: every kind is checked before anything is removed; one over
        # change_threshold aborts the batch (abort_batch → "aborted") with a warning, and nothing is deleted.
        for label, scope in plans:
            if scope is None:
                continue
            stale[label] = [o for o in scope if o.sis_batch_id != record.id]
            threshold = options.change_threshold
            if threshold and scope and len(stale[label]) * 100 / len(scope) > threshold:
                record.set_state("aborted")
                record.messages.append(
                    Message(
                        None,
                        f"{len(stale[label])} {label} would be deleted and exceeds the set threshold of {threshold}%",
                    )
                )
                return
        applier = RowApplier(state, record)
        if "enrollments" in stale:  # remove_non_batch_enrollments (Enrollment::BatchStateUpdater)
            for enrollment in stale["enrollments"]:
                applier.set_state("Enrollment", enrollment, drop, batch_cleanup=True)
            record.counts["batch_enrollments_deleted"] = len(stale["enrollments"])
        if "sections" in stale:  # remove_non_batch_sections (CourseSection.destroy_batch)
            for section in stale["sections"]:
                applier.set_state("CourseSection", section, "deleted", batch_cleanup=True)
                applier.cascade_section_deleted(section, batch_cleanup=True)
            record.counts["batch_sections_deleted"] = len(stale["sections"])
        if "courses" in stale:  # remove_non_batch_courses (Course.destroy_batch)
            for course in stale["courses"]:
                applier.set_state("Course", course, "deleted", batch_cleanup=True)
                applier.cascade_course_state(course, batch_cleanup=True)
            record.counts["batch_courses_deleted"] = len(stale["courses"])

    # --- restore_states: sis_batch.rb#restore_states_later / #restore_states_for_batch ---------

    def restore_later(
        self,
        record: SisImportRecord,
        progress: dict[str, Any],
        *,
        batch_mode: bool,
        undelete_only: bool,
        unconclude_only: bool,
    ) -> None:
        thread = threading.Thread(
            target=self._restore,
            args=(record, progress),
            kwargs={"batch_mode": batch_mode, "undelete_only": undelete_only, "unconclude_only": unconclude_only},
            name=f"canvas-sim-restore-{record.id}",
            daemon=True,
        )
        self._restores.append(thread)
        thread.start()

    def _restore(
        self,
        record: SisImportRecord,
        progress: dict[str, Any],
        *,
        batch_mode: bool,
        undelete_only: bool,
        unconclude_only: bool,
    ) -> None:
        self.gate.wait()  # a paused simulator leaves the Progress queued too
        with self.state.lock:
            progress.update(workflow_state="running", updated_at=now_iso())
            record.set_state("restoring")
            rows = [c for c in record.changes if not c.restored]
            if undelete_only:
                rows = [c for c in rows if c.updated in ("retired", "deleted")]
            if unconclude_only:
                rows = [c for c in rows if c.updated == "completed"]
            if batch_mode:
                rows = [c for c in rows if c.batch_cleanup]
            # restore_sql sets each item back to its previous state (an item the import created goes back to
            # "deleted", SisBatchRollBackData#to_restore_array), whatever it holds now.
            for change in reversed(rows):
                change.obj.workflow_state = "deleted" if change.previous == "non-existent" else change.previous
                change.restored = True
            statistics = record.data.get("statistics") or record.statistics()
            for kind in {c.kind for c in record.changes} | {k for k in statistics if k != "total_state_changes"}:
                statistics.setdefault(kind, {})["restored"] = sum(
                    1 for c in record.changes if c.kind == kind and c.restored
                )
            record.data["statistics"] = statistics
            progress.update(workflow_state="completed", completion=100.0, updated_at=now_iso())
            record.set_state("partially_restored" if (undelete_only or unconclude_only or batch_mode) else "restored")
