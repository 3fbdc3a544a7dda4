import datetime as dt
import re

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
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


# [0-9], not \d: JSON Schema's \d is ASCII, Python's (which a fuzzer may use) is not.
_HH_MM = r"([01][0-9]|2[0-3]):[0-5][0-9]"


@extend_schema_field({"type": "string", "pattern": f"^{_HH_MM}$", "example": "09:30"})
class LocalTimeField(serializers.Field):
    """A wall-clock time `HH:MM` (00:00 to 23:59) in the agent's zone, as the contract writes times."""

    default_error_messages = {"invalid": _("Use the format HH:MM, from 00:00 to 23:59.")}

    def to_internal_value(self, data) -> dt.time:
        if not isinstance(data, str) or not re.fullmatch(_HH_MM, data, re.ASCII):
            self.fail("invalid")
        return dt.time(int(data[:2]), int(data[3:]))

    def to_representation(self, value: dt.time) -> str:
        return value.strftime("%H:%M")
