"""Django admin for raw data, for implementation consultants (staff users; no one needs to be a superuser).

- What happened is never written here: audit events and approvals are read-only for everyone, and jobs,
  snapshots and mapping checks are made and removed by the workers only (they can be looked at).
- What can be edited here (a district, a conversion's settings) is audited like an edit on the dashboard, and a
  changed peer address (Canvas URL, ZIS URL) drops the credential that was given for the old one.
- Credentials are never shown, not even in part: only whether they are set.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from conversion import audit, crypto, peers
from conversion.forms import StepDateRange
from conversion.models import Approval, AuditEvent, Conversion, District, Job, MappingDiff, Snapshot
from conversion.rules import is_consultant
from conversion.services.step_data import SECRET_FIELDS


class ConsultantAdmin(admin.ModelAdmin):
    """Visible to consultants (staff), whatever their model permissions; what they may do is said per class."""

    can_add = can_change = can_delete = False

    def has_module_permission(self, request) -> bool:
        return is_consultant(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_consultant(request.user)

    def has_add_permission(self, request) -> bool:
        return self.can_add and is_consultant(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return self.can_change and is_consultant(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.can_delete and is_consultant(request.user)


class AuditedAdmin(ConsultantAdmin):
    """Every saved change is an audit event (the dashboard's own edits are audited in services/step_data)."""

    can_change = True
    # An address typed without a scheme is read as https, as on the dashboard's forms (and Django 6's default).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # peer URL field -> the credential given for it, dropped when the URL's scheme, host or port changes.
    peer_credentials: dict[str, str] = {}

    def save_model(self, request, obj, form, change):
        before = type(obj).objects.get(pk=obj.pk) if change else None
        dropped = []
        for url_field, secret_field in self.peer_credentials.items():
            old_url = getattr(before, url_field) if before else ""
            if (
                old_url
                and peers.origin(getattr(obj, url_field)) != peers.origin(old_url)
                and getattr(obj, secret_field)
            ):
                setattr(obj, secret_field, "")
                dropped.append(secret_field)
        super().save_model(request, obj, form, change)
        changed = list(form.changed_data) + dropped
        if not changed:
            return
        detail: dict[str, dict[str, str | bool]] = {}
        for name in changed:
            if name in SECRET_FIELDS or name not in {f.name for f in obj._meta.concrete_fields}:
                detail[name] = {"changed": True}
            else:
                detail[name] = {
                    "from": "" if before is None else str(getattr(before, name)),
                    "to": str(getattr(obj, name)),
                }
        district, conversion = self.audit_targets(obj)
        verb = "Changed" if change else "Added"
        audit.record(
            district=district,
            conversion=conversion,
            user=request.user,
            action="admin:edit",
            summary=f"{verb} {obj._meta.verbose_name} in Django admin: {', '.join(changed)}"
            + (f" (the {', '.join(dropped)} given for the old address was dropped)" if dropped else ""),
            detail=detail,
        )

    def audit_targets(self, obj):
        raise NotImplementedError


@admin.register(District)
class DistrictAdmin(AuditedAdmin):
    can_add = True
    list_display = ["name", "slug", "powerschool_url", "canvas_url", "time_zone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["admins"]
    # The sync thresholds are changed from the sync history (services/sync.py set_thresholds, audited there).
    exclude = ["canvas_token", "sync_deletion_threshold", "sync_school_thresholds"]
    readonly_fields = ["canvas_token_status"]
    peer_credentials = {"canvas_url": "canvas_token"}

    @admin.display(description="Canvas API token")
    def canvas_token_status(self, obj: District) -> str:
        return crypto.masked(obj.canvas_token)

    def audit_targets(self, obj):
        return obj, None


class ConversionAdminForm(StepDateRange):
    """The dates' range check (StepDateRange). No Meta of its own: ModelAdmin.get_form builds it from the
    ConversionAdmin's fields, `exclude` (the ZIS password) and read-only fields, one list to keep, not two."""


@admin.register(Conversion)
class ConversionAdmin(AuditedAdmin):
    form = ConversionAdminForm
    list_display = ["district", "school_year", "state", "gpb_state", "pause_date", "go_live_date"]
    list_filter = ["state", "gpb_state", "school_year"]
    search_fields = ["district__name", "zone_id"]
    exclude = ["zis_password"]
    # State moves go through the workflow (guards and audit), never through a raw edit.
    readonly_fields = [
        "district",
        "school_year",
        "state",
        "gpb_state",
        "state_changed_at",
        "legacy_sync_paused_at",
        "live_since",
        "zis_password_status",
    ]
    peer_credentials = {"zis_url": "zis_password"}

    @admin.display(description="ZIS password")
    def zis_password_status(self, obj: Conversion) -> str:
        return crypto.masked(obj.zis_password)

    def audit_targets(self, obj):
        return obj.district, obj


@admin.register(Job)
class JobAdmin(ConsultantAdmin):
    """Jobs are started from the district page and run by the workers: looked at here, never made or edited."""

    list_display = ["id", "conversion", "kind", "state", "current", "total", "created_at", "finished_at"]
    list_filter = ["kind", "state"]


@admin.register(Snapshot)
class SnapshotAdmin(ConsultantAdmin):
    list_display = ["id", "conversion", "state", "created_at"]
    list_filter = ["state"]


@admin.register(MappingDiff)
class MappingDiffAdmin(ConsultantAdmin):
    list_display = ["id", "conversion", "blocking_count", "created_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(ConsultantAdmin):
    """The audit trail is append-only: written by the product, never by hand."""

    list_display = ["created_at", "district", "actor_label", "action", "summary"]
    list_filter = ["action"]
    search_fields = ["summary", "actor_label", "district__name"]


@admin.register(Approval)
class ApprovalAdmin(ConsultantAdmin):
    """Approvals are given by district admins on the district page, never added here."""

    list_display = ["approved_at", "conversion", "kind", "approved_by", "subject"]
    list_filter = ["kind"]
