"""Messages kept untranslated and rendered in each reader's language."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils import formats, translation
from django.utils.translation import gettext


@dataclass(frozen=True)
class Reason:
    """A decision's reason, kept as its untranslated message and parameters so that each reader
    gets it in their own language (the agent in the app, a supervisor in the admin). A parameter
    may itself be a list of reasons, joined with "; ", or a date, written as the reader's language
    writes one ("Friday 18 December", "vrijdag 18 december")."""

    msgid: str
    params: dict = field(default_factory=dict)

    def render(self, language: str | None = None) -> str:
        if language is not None:
            with translation.override(language):
                return self.render()
        values = {name: _display(value) for name, value in self.params.items()}
        return gettext(self.msgid) % values if values else gettext(self.msgid)

    def as_json(self) -> dict:
        return {"msgid": self.msgid, "params": {name: _encode(value) for name, value in self.params.items()}}

    @classmethod
    def from_json(cls, data: dict) -> Reason:
        return cls(data["msgid"], {name: _decode(value) for name, value in data.get("params", {}).items()})


def day_text(date: dt.date) -> str:
    """A day as a sentence names it in the active language: "Friday 18 December", "vrijdag 18
    december". No year, as the notifications have always written days: the texts are about days
    near the reader's today, and the same text reads the same whenever it is read."""
    return formats.date_format(date, "l j F")


def _display(value):
    if isinstance(value, list):
        return "; ".join(part.render() for part in value)
    if isinstance(value, dt.date):
        return day_text(value)
    return value


def _encode(value):
    if isinstance(value, list):
        return [part.as_json() for part in value]
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    return value


def _decode(value):
    if isinstance(value, list):
        return [Reason.from_json(part) for part in value]
    if isinstance(value, dict) and set(value) == {"$date"}:
        return dt.date.fromisoformat(value["$date"])
    return value
