import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger(__name__)


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"

    def ready(self) -> None:
        if not settings.FCM_CREDENTIALS_FILE:
            # Said at start-up, plainly: the demo logs push notifications instead of sending them.
            logger.warning("push notifications are logged, not sent: FCM_CREDENTIALS_FILE is not set")
