"""Django admin for raw data. Credentials are never shown back: only whether they are set."""
from django.contrib import admin

from conversion import crypto
from conversion.models import Approval, AuditEvent, Conversion, District, Job, MappingDiff, Snapshot


@admin.register(District)
class DistrictAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "powerschool_url", "canvas_url", "time_zone"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["admins"]
    exclude = ["canvas_token"]
    readonly_fields = ["canvas_token_status"]

    @admin.display(description="Canvas API token")
    def canvas_token_status(self, obj: District) -> str:
        return crypto.masked(obj.canvas_token)


@admin.register(Conversion)
class ConversionAdmin(admin.ModelAdmin):
    list_display = ["district", "school_year", "state", "gpb_state", "pause_date", "go_live_date"]
    list_filter = ["state", "gpb_state", "school_year"]
    search_fields = ["district__name", "zone_id"]
    exclude = ["zis_password"]
    # State moves go through the workflow (guards and audit), never through a raw edit.
    readonly_fields = ["state", "gpb_state", "state_changed_at", "legacy_sync_paused_at", "live_since", "zis_password_status"]

    @admin.display(description="ZIS password")
    def zis_password_status(self, obj: Conversion) -> str:
        return crypto.masked(obj.zis_password)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ["id", "conversion", "kind", "state", "current", "total", "created_at", "finished_at"]
    list_filter = ["kind", "state"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "district", "actor_label", "action", "summary"]
    list_filter = ["action"]
    search_fields = ["summary", "actor_label", "district__name"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # The audit trail is append-only.

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


admin.site.register(Approval)
admin.site.register(Snapshot)
admin.site.register(MappingDiff)
