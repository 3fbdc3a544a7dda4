"""The closed list of notification kinds: what each says (en/nl via gettext), its parameters, the ids
the app gets in `data`, and the actions it offers.

Texts are rendered when read, in the reader's language and time zone, so a change of language shows
at once. Add a kind here (and its Dutch text) before anything may notify with it.
"""

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Literal

from django.utils import formats, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from em_agent.messages import Reason, day_text

# "reason": an em_agent.messages.Reason, kept untranslated and rendered in the reader's language
# (or plain text: a supervisor's own words).
ParamFormat = Literal["text", "date", "datetime", "id", "reason"]


@dataclass(frozen=True)
class Kind:
    name: str
    title: Promise
    body: Promise
    params: dict[str, ParamFormat]
    # Parameters passed to the app in `data` (ids and dates it needs to open the right screen).
    data: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    # Optional parameters; `reason` is appended to the body when given.
    optional: dict[str, ParamFormat] = field(default_factory=dict)
    audience: Literal["agent", "supervisor"] = "agent"
    # Other words (title, body) chosen by the optional `variant` parameter, for a case the kind's
    # own would misname (a give-away is no swap); the same parameters and actions.
    variants: dict[str, tuple[Promise, Promise]] = field(default_factory=dict)

    @property
    def actionable(self) -> bool:
        return bool(self.actions)


_DATE: ParamFormat = "date"
_ID: ParamFormat = "id"
_TEXT: ParamFormat = "text"
_REASON: ParamFormat = "reason"

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "schedule_adjusted",
            _("Schedule changed"),
            _("Your schedule for %(date)s has changed."),
            {"date": _DATE},
            data=("date",),
        ),
        Kind(
            "swap_offer",
            _("Shift swap offer"),
            _("%(from_name)s offers to swap shifts with you on %(date)s."),
            {"swap_id": _ID, "from_name": _TEXT, "date": _DATE},
            data=("swap_id", "date"),
            actions=("accept_swap", "decline_swap"),
            optional={"variant": _TEXT},
            variants={
                "give_away": (
                    _("Shift offered to you"),
                    _("%(from_name)s offers you their shift on %(date)s, without taking one of yours."),
                )
            },
        ),
        Kind(
            "swap_accepted",
            _("Swap accepted"),
            _("%(by_name)s accepted your shift swap for %(date)s."),
            {"swap_id": _ID, "by_name": _TEXT, "date": _DATE},
            data=("swap_id", "date"),
        ),
        Kind(
            "swap_declined",
            _("Swap declined"),
            _("Your shift swap offer for %(date)s was declined."),
            {"swap_id": _ID, "date": _DATE},
            data=("swap_id", "date"),
        ),
        Kind(
            "swap_expired",
            _("Swap expired"),
            _("The shift swap offer for %(date)s expired."),
            {"swap_id": _ID, "date": _DATE},
            data=("swap_id", "date"),
        ),
        Kind(
            "swap_cancelled",
            _("Swap withdrawn"),
            _("%(from_name)s withdrew the shift swap offer for %(date)s."),
            {"swap_id": _ID, "from_name": _TEXT, "date": _DATE},
            data=("swap_id", "date"),
        ),
        Kind(
            "swap_approved",
            _("Swap approved"),
            _("Your shift swap for %(date)s was approved."),
            {"swap_id": _ID, "date": _DATE},
            data=("swap_id", "date"),
        ),
        Kind(
            "swap_denied",
            _("Swap denied"),
            _("Your shift swap for %(date)s was denied."),
            {"swap_id": _ID, "date": _DATE},
            data=("swap_id", "date"),
            optional={"reason": _REASON},
        ),
        Kind(
            "schedule_request_approved",
            _("Schedule request approved"),
            _("Your schedule change request for %(date)s was approved."),
            {"request_id": _ID, "date": _DATE},
            data=("request_id", "date"),
        ),
        Kind(
            "schedule_request_denied",
            _("Schedule request denied"),
            _("Your schedule change request for %(date)s was denied."),
            {"request_id": _ID, "date": _DATE},
            data=("request_id", "date"),
            optional={"reason": _REASON},
        ),
        Kind(
            "time_off_approved",
            _("Time off approved"),
            _("Your time off from %(start_date)s to %(end_date)s was approved."),
            {"request_id": _ID, "start_date": _DATE, "end_date": _DATE},
            data=("request_id", "start_date", "end_date"),
        ),
        Kind(
            "time_off_denied",
            _("Time off denied"),
            _("Your time off from %(start_date)s to %(end_date)s was denied."),
            {"request_id": _ID, "start_date": _DATE, "end_date": _DATE},
            data=("request_id", "start_date", "end_date"),
            optional={"reason": _REASON},
        ),
        Kind(
            "time_off_cancelled",
            _("Time off cancelled"),
            _("%(agent_name)s cancelled approved time off from %(start_date)s to %(end_date)s."),
            {"request_id": _ID, "agent_name": _TEXT, "start_date": _DATE, "end_date": _DATE},
            data=("request_id", "start_date", "end_date"),
            audience="supervisor",
        ),
        # IEX WFM Integrated: an absence needs no approval; the supervisor is told at once (by email:
        # a supervisor has no app) and records it in the WFM. Times are the agent's wall clock.
        Kind(
            "absence_requested",
            _("Absence request from %(agent_name)s"),
            _(
                "%(agent_name)s requests an absence on %(date)s from %(start_time)s to %(end_time)s "
                "(%(timezone)s): %(exception)s."
            ),
            {
                "absence_id": _ID,
                "agent_name": _TEXT,
                "date": _DATE,
                "start_time": _TEXT,
                "end_time": _TEXT,
                "timezone": _TEXT,
                "exception": _TEXT,
            },
            data=("absence_id", "date"),
            optional={"comment": _TEXT},
            audience="supervisor",
        ),
        Kind(
            "absence_requested_full_day",
            _("Absence request from %(agent_name)s"),
            _("%(agent_name)s requests an absence for the whole of %(date)s: %(exception)s."),
            {"absence_id": _ID, "agent_name": _TEXT, "date": _DATE, "exception": _TEXT},
            data=("absence_id", "date"),
            optional={"comment": _TEXT},
            audience="supervisor",
        ),
        # To the other colleagues a swap offer went to, once one of them took it.
        Kind(
            "swap_taken",
            _("Swap taken"),
            _("%(from_name)s's shift swap offer for %(date)s was taken by a colleague."),
            {"swap_id": _ID, "from_name": _TEXT, "date": _DATE},
            data=("swap_id", "date"),
        ),
        # An open offer cancelled because a schedule changed under it (a sync, time off, a request).
        Kind(
            "swap_invalidated",
            _("Swap cancelled"),
            _("The shift swap offer for %(date)s was cancelled because a schedule changed."),
            {"swap_id": _ID, "date": _DATE},
            data=("swap_id", "date"),
            optional={"reason": _REASON},
        ),
    )
}

KIND_CHOICES = [(name, name) for name in KINDS]


class UnknownKind(ValueError):
    pass


def kind_get(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(f"unknown notification kind {name!r}") from None


def params_validate(kind: Kind, params: dict) -> dict:
    """The parameters as stored (JSON): every required one present, nothing unknown, right shapes."""
    expected = {**kind.params, **kind.optional}
    missing = set(kind.params) - set(params)
    unknown = set(params) - set(expected)
    if missing or unknown:
        raise ValueError(f"{kind.name}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    if "variant" in params and params["variant"] not in kind.variants:
        raise ValueError(f"{kind.name}: no variant {params['variant']!r}")
    stored: dict[str, str | int | dict] = {}
    for name, value in params.items():
        fmt = expected[name]
        if fmt == "date":
            if isinstance(value, dt.datetime):
                raise ValueError(f"{kind.name}: {name} is a calendar date, not a datetime")
            stored[name] = (value if isinstance(value, dt.date) else dt.date.fromisoformat(value)).isoformat()
        elif fmt == "datetime":
            if not isinstance(value, dt.datetime) or value.tzinfo is None:
                raise ValueError(f"{kind.name}: {name} must be an aware datetime")
            stored[name] = value.astimezone(dt.UTC).isoformat()
        elif fmt == "id":
            stored[name] = int(value)
        elif fmt == "reason" and isinstance(value, Reason):
            stored[name] = value.as_json()
        else:
            stored[name] = str(value)[:200]
    return stored


def _display(value, fmt: ParamFormat, zone: zoneinfo.ZoneInfo):
    if fmt == "date":
        return day_text(dt.date.fromisoformat(value))
    if fmt == "datetime":
        return formats.date_format(dt.datetime.fromisoformat(value).astimezone(zone), "l j F H:i")
    if fmt == "reason" and isinstance(value, dict):
        return Reason.from_json(value).render()
    return value


def render(kind: Kind, params: dict, *, language: str, zone: zoneinfo.ZoneInfo) -> tuple[str, str]:
    """Title and body in the reader's language, dates in its zone."""
    expected = {**kind.params, **kind.optional}
    with translation.override(language):
        shown = {name: _display(value, expected[name], zone) for name, value in params.items()}
        title_text, body_text = kind.variants.get(params.get("variant", ""), (kind.title, kind.body))
        title = str(title_text) % shown
        body = str(body_text) % shown
        if shown.get("reason"):
            body = f"{body} " + str(_("Reason: %(reason)s")) % {"reason": shown["reason"]}
        if shown.get("comment"):
            body = f"{body} " + str(_("Comment: %(comment)s")) % {"comment": shown["comment"]}
    return title, body


def data_for(kind: Kind, params: dict) -> dict[str, str | int]:
    return {name: params[name] for name in kind.data if name in params}
