from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers


class AwareDateTimeField(serializers.DateTimeField):
    """RFC 3339 with an offset, as the contract says: a datetime without one is refused (400), never
    guessed in some zone. Answers in the active zone (the agent's)."""

    default_error_messages = {
        "naive": _("Give the time with its UTC offset, e.g. 2026-12-01T09:00:00+01:00.")
    }

    def to_internal_value(self, value):
        if isinstance(value, str):
            parsed = parse_datetime(value.strip()) if len(value) <= 64 else None
            if parsed is not None and parsed.tzinfo is None:
                self.fail("naive")
        return super().to_internal_value(value)
