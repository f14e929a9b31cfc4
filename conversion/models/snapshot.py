"""What a pull brought from the zone: one Snapshot per pull, its records, and the messages already stored."""

from __future__ import annotations

from django.db import models


class SnapshotState(models.TextChoices):
    RECEIVING = "receiving", "Receiving"
    COMPLETE = "complete", "Complete"
    FAILED = "failed", "Failed"


class SnapshotQuerySet(models.QuerySet["Snapshot"]):
    def latest_complete(self, conversion) -> Snapshot | None:
        return self.filter(conversion=conversion, state=SnapshotState.COMPLETE).order_by("-completed_at", "-id").first()

    def abandoned(self, before) -> SnapshotQuerySet:
        """Snapshots left "receiving" since before `before` by a pull that ended (failed, cancelled) or whose
        job is gone: no run resumes them (a retried job resumes only its own, while it is active)."""
        from conversion.models.job import ACTIVE_STATES

        return self.filter(state=SnapshotState.RECEIVING, created_at__lt=before).exclude(job__state__in=ACTIVE_STATES)

    def prune_abandoned(self, before) -> int:
        """Delete abandoned snapshots with their records and stored messages; returns how many snapshots."""
        doomed = list(self.abandoned(before).values_list("pk", flat=True))
        if doomed:
            SifRecord.objects.filter(snapshot_id__in=doomed).delete()
            self.filter(pk__in=doomed).delete()
        return len(doomed)


class Snapshot(models.Model):
    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="snapshots")
    job = models.ForeignKey(
        "conversion.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="snapshots"
    )
    state = models.CharField(max_length=10, choices=SnapshotState.choices, default=SnapshotState.RECEIVING)
    # The SIF_MsgId of each request sent, per object name: responses are matched to them.
    requests = models.JSONField(default=dict, blank=True)
    counts = models.JSONField(default=dict, blank=True, help_text="Records per object name.")
    summary = models.JSONField(default=dict, blank=True, help_text="Per school and per school year figures.")
    fingerprint = models.CharField(max_length=64, blank=True, help_text="sha256 over the records, order-free.")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = SnapshotQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Snapshot #{self.pk} of {self.conversion} ({self.get_state_display()})"


CELL_KINDS = ["StudentPersonal", "StudentSchoolEnrollment", "StudentSectionEnrollment"]


class SifRecord(models.Model):
    """One SIF object as pulled, kept whole (its XML as delivered) plus the keys the conversion looks up by.

    Its fields as plain values are `services.sifdata.data_of(record.xml)`: the parsing lives with the ingest,
    and models never import services (import-linter holds that).
    """

    # Written in bulk by every pull (a million rows for a large district), so the database keeps as little
    # as it can up to date per row: no index of its own (the unique constraint below starts with snapshot)
    # and no foreign key check (a quarter of PostgreSQL's work in a pull, measured). Rows are only written
    # by sif_store.store_rows for a snapshot it holds locked, and deleted with their snapshot by the ORM.
    snapshot = models.ForeignKey(
        Snapshot, on_delete=models.CASCADE, related_name="records", db_index=False, db_constraint=False
    )
    object_name = models.CharField(max_length=40)
    ref_id = models.CharField(max_length=64, help_text="RefId, or a composite key for objects without one.")
    local_id = models.CharField(max_length=64, blank=True)
    dcid = models.CharField(max_length=32, blank=True)
    school_ref_id = models.CharField(max_length=64, blank=True)
    school_year = models.PositiveSmallIntegerField(null=True, blank=True)
    extended_names = models.TextField(blank=True, help_text="Names of its SIF_ExtendedElements, tab-separated.")
    xml = models.TextField(help_text="The object's element as the zone delivered it.")
    digest = models.CharField(max_length=32, help_text="Hash of `xml`, for change detection.")
    # The values the nightly CSV build reads, for the kinds a district has by the hundred thousand (students and
    # their enrollments): written at ingest by services.sif_cells, which documents the layout. Empty: read the XML.
    cells = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "object_name", "ref_id"], name="one_record_per_refid"),
        ]
        indexes = [
            # The rows the CSV build cannot read from their cells (services.roster_tables.SnapshotTables.open): only
            # rows without them are indexed (none in a pull made since cells exist), so the index costs the ingest
            # nothing and answers "may this snapshot be read through its cells?" without reading a million rows.
            # The kinds are services.sif_cells's large ones (a test holds them equal).
            models.Index(
                fields=["snapshot"],
                name="sifrecord_without_cells",
                condition=models.Q(object_name__in=CELL_KINDS, cells=""),
            ),
        ]
        # No other index: at 200,000 students a second one on (snapshot, object, LocalId) took a quarter of
        # PostgreSQL's work in a pull (measured: 30.7 s -> 22.7 s of its CPU, the pull 52.6 s -> 44.1 s).
        # Readers that want LocalId order have PostgreSQL sort the rows (see roster.SnapshotSource).

    def __str__(self) -> str:
        return f"{self.object_name} {self.ref_id}"


class ReceivedMessage(models.Model):
    """A SIF message whose content is stored: a redelivery of the same SIF_MsgId is acked and skipped."""

    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="+")
    msg_id = models.CharField(max_length=32)
    snapshot = models.ForeignKey(Snapshot, null=True, blank=True, on_delete=models.CASCADE, related_name="messages")
    kind = models.CharField(max_length=20)
    object_name = models.CharField(max_length=40, blank=True)
    record_count = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversion", "msg_id"], name="one_message_per_msgid")]

    def __str__(self) -> str:
        return f"{self.kind} {self.msg_id}"
