import re

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

# RFC 3339 as JSON Schema's `date` and `date-time` formats read it. Python's fromisoformat, under
# DRF's fields, also takes "20261203", "2026-W49-4" and "2026-12-03T09+01": the app's generated
# client would never send them, and a server that takes more than its schema hides the bugs of
# clients that do. ASCII digits only (Python's \d also matches other scripts' digits).
_RFC3339_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_RFC3339_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})?", re.ASCII
)


class DateField(serializers.DateField):
    """`YYYY-MM-DD` and nothing else."""

    def to_internal_value(self, value):
        if isinstance(value, str) and not _RFC3339_DATE.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DD")
        return super().to_internal_value(value)


class AwareDateTimeField(serializers.DateTimeField):
    """RFC 3339 with an offset, as the contract says: a datetime without one is refused (400), never
    guessed in some zone. Answers in the active zone (the agent's)."""

    default_error_messages = {
        "naive": _("Give the time with its UTC offset, e.g. 2026-12-01T09:00:00+01:00.")
    }

    def to_internal_value(self, value):
        if isinstance(value, str) and not _RFC3339_DATETIME.fullmatch(value):
            self.fail("invalid", format="YYYY-MM-DDThh:mm:ss+hh:mm")
        return super().to_internal_value(value)

    def enforce_timezone(self, value):
        # DRF would read a naive time in the active zone; every parsed input passes through here.
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)
