from django.apps import AppConfig


class EmAgentConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "em_agent"
    verbose_name = "EM Agent"

    def ready(self) -> None:
        # Login bookkeeping (session stamps, MFA record) hangs off allauth's and Django's signals.
        from em_agent import receivers  # noqa: F401
