from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class AwareDateTimeField(serializers.DateTimeField):
    """RFC 3339 with an offset, as the contract says: a datetime without one is refused (400), never
    guessed in some zone. Answers in the active zone (the agent's)."""

    default_error_messages = {
        "naive": _("Give the time with its UTC offset, e.g. 2026-12-01T09:00:00+01:00.")
    }

    def enforce_timezone(self, value):
        # DRF would read a naive time in the active zone; every parsed input passes through here.
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)
