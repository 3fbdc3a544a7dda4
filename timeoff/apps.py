from django.apps import AppConfig


class TimeoffConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "timeoff"
