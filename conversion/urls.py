from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import path, register_converter
from django.views.generic import RedirectView

from conversion.views import (
    alerts,
    data,
    district,
    gpb,
    invitations,
    legacy,
    notifications,
    onboarding,
    portfolio,
    setup,
)
from conversion.views import roster as roster_views


class IdConverter:
    """A database id: at most 18 digits, so that it always fits a 64-bit integer (Django's `int` takes any
    number of digits, and a 20-digit one then failed in the database with a 500). Anything else is a 404."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


register_converter(IdConverter, "id")


class SectionConverter:
    """One of the district page's sections that has its own URL (the overview is the page itself)."""

    regex = "connection|pull|mapping|remap|syncs|grade-passback|diagnostics|audit"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value) -> str:
        return str(value)


register_converter(SectionConverter, "section")

urlpatterns = [
    path("", portfolio.portfolio, name="portfolio"),
    path("districts.csv", portfolio.portfolio_csv, name="portfolio_csv"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("districts/new/", onboarding.new_district, name="district_new"),
    path("districts/<slug:slug>/settings/", onboarding.district_settings, name="district_settings"),
    path("districts/<slug:slug>/settings/district/", onboarding.save_district, name="district_settings_save"),
    path("districts/<slug:slug>/settings/canvas/", onboarding.save_canvas, name="district_canvas_save"),
    path("districts/<slug:slug>/settings/canvas/check/", onboarding.check_canvas, name="district_canvas_check"),
    path("districts/<slug:slug>/admins/", invitations.admins_page, name="district_admins"),
    path("districts/<slug:slug>/admins/invite/", invitations.invite, name="district_admins_invite"),
    path("districts/<slug:slug>/admins/<id:user_id>/remove/", invitations.remove, name="district_admins_remove"),
    path("invitations/<uidb64>/<token>/", invitations.accept_invitation, name="accept_invitation"),
    path("districts/<slug:slug>/", district.district_page, name="district"),
    path("districts/<slug:slug>/<id:year>/", district.district_page, name="district_year"),
    path("districts/<slug:slug>/<id:year>/actions/<str:name>/", district.perform_action, name="perform_action"),
    path("districts/<slug:slug>/<id:year>/edit/<str:part>/", district.edit_part, name="edit_part"),
    path("districts/<slug:slug>/<id:year>/roster-policy/", roster_views.save_roster_policy, name="roster_policy"),
    path("districts/<slug:slug>/<id:year>/rollover/", roster_views.roll_over, name="rollover"),
    path("districts/<slug:slug>/<id:year>/hold-sync/", district.hold_sync, name="hold_sync"),
    path("districts/<slug:slug>/<id:year>/jobs/start/<str:kind>/", district.start_job, name="start_job"),
    path("districts/<slug:slug>/<id:year>/jobs/<id:job_id>/", district.job_partial, name="job"),
    path("districts/<slug:slug>/<id:year>/jobs/<id:job_id>/cancel/", district.cancel_job, name="cancel_job"),
    path("districts/<slug:slug>/<id:year>/mapping/rows/", data.mapping_rows, name="mapping_rows"),
    path("districts/<slug:slug>/<id:year>/mapping.csv", data.mapping_csv, name="mapping_csv"),
    path("districts/<slug:slug>/<id:year>/remap/preview.csv", data.remap_preview_csv, name="remap_preview_csv"),
    path("districts/<slug:slug>/<id:year>/files/<id:artifact_id>/", data.artifact, name="artifact"),
    path("districts/<slug:slug>/<id:year>/syncs/<id:run_id>/release/", data.release_sync, name="release_sync"),
    path("districts/<slug:slug>/<id:year>/legacy-imports/", legacy.legacy_imports, name="legacy_imports"),
    path("districts/<slug:slug>/<id:year>/legacy-imports/check/", legacy.check_now, name="legacy_imports_check"),
    path("districts/<slug:slug>/<id:year>/syncs/remaster/", data.remaster_sync, name="remaster_sync"),
    path("districts/<slug:slug>/<id:year>/syncs/<id:run_id>/undo/", data.undo_sync, name="undo_sync"),
    path("districts/<slug:slug>/<id:year>/syncs/thresholds/", data.sync_thresholds, name="sync_thresholds"),
    path("notifications/", notifications.notifications_page, name="notifications"),
    path("notifications/read/", notifications.mark_read, name="notifications_read"),
    path("notifications/settings/", alerts.alert_settings, name="alert_settings"),
    path("districts/<slug:slug>/<id:year>/setup/", setup.setup_page, name="setup_aids"),
    path("districts/<slug:slug>/<id:year>/setup/agent-cfg-mappings.xml", setup.agent_mappings, name="setup_mappings"),
    path("districts/<slug:slug>/<id:year>/setup/support-ticket.txt", setup.support_ticket, name="setup_ticket"),
    path("districts/<slug:slug>/<id:year>/setup/schools/", setup.choose_schools, name="setup_schools"),
    path("districts/<slug:slug>/<id:year>/grade-passback/courses/<id:course_id>/", gpb.gpb_course, name="gpb_course"),
    path(
        "districts/<slug:slug>/<id:year>/grade-passback/courses/<id:course_id>/report/",
        gpb.gpb_course_report,
        name="gpb_course_report",
    ),
    path(
        "districts/<slug:slug>/<id:year>/grade-passback/courses/<id:course_id>/report.csv",
        gpb.gpb_course_csv,
        name="gpb_course_csv",
    ),
    path(
        "districts/<slug:slug>/<id:year>/grade-passback/courses/<id:course_id>/categories/",
        gpb.gpb_category_override,
        name="gpb_category_override",
    ),
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True))),
    # One URL per section of the district page (issue 17); the year goes through the same <id:...> converter.
    path("districts/<slug:slug>/<id:year>/<section:section>/", district.district_page, name="district_section"),
    path("admin/", admin.site.urls),
]
