"""A problem the data shows (the seeds' troubleshooting Q&A), kept while later pulls still show it."""

from __future__ import annotations

from django.db import models


class Severity(models.TextChoices):
    ERROR = "error", "Blocks the conversion"
    WARNING = "warning", "Needs a look"


class DiagnosticQuerySet(models.QuerySet):
    def current(self) -> DiagnosticQuerySet:
        """The diagnostics still shown by the latest evidence, errors first (no arguments: usable in templates)."""
        return self.filter(cleared_at__isnull=True).order_by("severity", "first_seen", "code")

    def cleared(self) -> DiagnosticQuerySet:
        return self.filter(cleared_at__isnull=False).order_by("-cleared_at")


class Diagnostic(models.Model):
    conversion = models.ForeignKey("conversion.Conversion", on_delete=models.CASCADE, related_name="diagnostics")
    code = models.CharField(max_length=40, help_text="Which finding: one row per code and conversion.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    title = models.CharField(max_length=200)
    advice = models.TextField()
    evidence = models.JSONField(default=dict, blank=True, help_text="Counts and examples behind the finding.")
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    cleared_at = models.DateTimeField(null=True, blank=True, help_text="When the latest evidence stopped showing it.")

    objects = DiagnosticQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["conversion", "code"], name="one_diagnostic_per_code")]

    def __str__(self) -> str:
        return f"{self.code} ({'cleared' if self.cleared_at else 'current'})"

    @property
    def is_error(self) -> bool:
        return self.severity == Severity.ERROR
