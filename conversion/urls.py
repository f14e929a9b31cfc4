from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.views.generic import RedirectView
from django.urls import path, re_path

from conversion.views import data, district, gpb, notifications, portfolio, setup

urlpatterns = [
    path("", portfolio.portfolio, name="portfolio"),
    path("districts.csv", portfolio.portfolio_csv, name="portfolio_csv"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("districts/<slug:slug>/", district.district_page, name="district"),
    path("districts/<slug:slug>/<int:year>/", district.district_page, name="district_year"),
    path("districts/<slug:slug>/<int:year>/actions/<str:name>/", district.perform_action, name="perform_action"),
    path("districts/<slug:slug>/<int:year>/edit/<str:part>/", district.edit_part, name="edit_part"),
    path("districts/<slug:slug>/<int:year>/hold-sync/", district.hold_sync, name="hold_sync"),
    path("districts/<slug:slug>/<int:year>/jobs/start/<str:kind>/", district.start_job, name="start_job"),
    path("districts/<slug:slug>/<int:year>/jobs/<int:job_id>/", district.job_partial, name="job"),
    path("districts/<slug:slug>/<int:year>/mapping/rows/", data.mapping_rows, name="mapping_rows"),
    path("districts/<slug:slug>/<int:year>/mapping.csv", data.mapping_csv, name="mapping_csv"),
    path("districts/<slug:slug>/<int:year>/remap/preview.csv", data.remap_preview_csv, name="remap_preview_csv"),
    path("districts/<slug:slug>/<int:year>/files/<int:artifact_id>/", data.artifact, name="artifact"),
    path("districts/<slug:slug>/<int:year>/syncs/<int:run_id>/release/", data.release_sync, name="release_sync"),
    path("notifications/", notifications.notifications_page, name="notifications"),
    path("notifications/read/", notifications.mark_read, name="notifications_read"),
    path("districts/<slug:slug>/<int:year>/setup/", setup.setup_page, name="setup_aids"),
    path("districts/<slug:slug>/<int:year>/setup/agent-cfg-mappings.xml", setup.agent_mappings, name="setup_mappings"),
    path("districts/<slug:slug>/<int:year>/setup/support-ticket.txt", setup.support_ticket, name="setup_ticket"),
    path("districts/<slug:slug>/<int:year>/setup/schools/", setup.choose_schools, name="setup_schools"),
    path("districts/<slug:slug>/<int:year>/grade-passback/courses/<int:course_id>/", gpb.gpb_course, name="gpb_course"),
    path("favicon.ico", login_not_required(RedirectView.as_view(url=static("favicon.svg"), permanent=True))),
    re_path(r"^districts/(?P<slug>[-a-zA-Z0-9_]+)/(?P<year>[0-9]+)/(?P<section>connection|pull|mapping|remap|syncs|"
            r"grade-passback|diagnostics|audit)/$", district.district_page, name="district_section"),
    path("admin/", admin.site.urls),
]
