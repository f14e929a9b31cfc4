"""Template filters that ask the workflow module (one place for its rules) about what a page shows."""

from __future__ import annotations

from django import template

from conversion import workflow

register = template.Library()


@register.filter
def connection_verdict(job) -> dict:
    """{"verdict": "failed" | "warned" | "passed", "findings": [...]} for a connection test job."""
    verdict, findings = workflow.connection_findings(job.detail, job.state == "failed")
    return {"verdict": verdict, "findings": findings}
