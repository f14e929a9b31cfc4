from django.apps import AppConfig


class ConversionConfig(AppConfig):
    name = "conversion"
    verbose_name = "PowerSchool to SIF conversions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The alert receivers (post_save of jobs, syncs, diagnostics, audit events) and the alert tasks; the
        # job tasks, which conversion.jobs sends by name through Celery's registry (a web process would not
        # have them registered otherwise: only workers autodiscover tasks modules).
        from conversion import alert_tasks, tasks  # noqa: F401
        from conversion.services import notifications  # noqa: F401
