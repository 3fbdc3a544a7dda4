from django.apps import AppConfig


class SwapsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "swaps"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from schedules.services import schedule_days_changed
        from swaps import receivers
        from timeoff.models import TimeOffRequest

        schedule_days_changed.connect(receivers.on_schedule_days_changed, dispatch_uid="swaps-days-changed")
        post_save.connect(receivers.on_time_off_saved, sender=TimeOffRequest, dispatch_uid="swaps-time-off")
