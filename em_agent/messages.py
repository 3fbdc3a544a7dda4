"""Messages kept untranslated and rendered in each reader's language."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import translation
from django.utils.translation import gettext


@dataclass(frozen=True)
class Reason:
    """A decision's reason, kept as its untranslated message and parameters so that each reader
    gets it in their own language (the agent in the app, a supervisor in the admin). A parameter
    may itself be a list of reasons, joined with "; "."""

    msgid: str
    params: dict = field(default_factory=dict)

    def render(self, language: str | None = None) -> str:
        if language is not None:
            with translation.override(language):
                return self.render()
        values = {
            name: "; ".join(part.render() for part in value) if isinstance(value, list) else value
            for name, value in self.params.items()
        }
        return gettext(self.msgid) % values if values else gettext(self.msgid)

    def as_json(self) -> dict:
        return {
            "msgid": self.msgid,
            "params": {
                name: [part.as_json() for part in value] if isinstance(value, list) else value
                for name, value in self.params.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict) -> Reason:
        return cls(
            data["msgid"],
            {
                name: [cls.from_json(part) for part in value] if isinstance(value, list) else value
                for name, value in data.get("params", {}).items()
            },
        )
