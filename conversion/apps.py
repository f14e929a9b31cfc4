from django.apps import AppConfig


class ConversionConfig(AppConfig):
    name = "conversion"
    verbose_name = "PowerSchool to SIF conversions"
    default_auto_field = "django.db.models.BigAutoField"
