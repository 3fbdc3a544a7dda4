"""Swap offers and their lifecycle: offer, accept (one winner), decline, cancel, expire, approval
through the engine and the decision lifecycle, the exchange through the schedule service, and the
re-check when a schedule changes under a live swap.

Lock order, the same everywhere: the swap's row first (a conditional update or select_for_update),
then the schedule days in (agent, date) order (schedule_days_lock), as every schedule writer takes
them. A writer that holds days never waits for a swap row here (the re-check reads days unlocked)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from rest_framework import status

from em_agent.exceptions import ApplicationError
from em_agent.messages import Reason
from em_agent.models import Agent, User
from notifications.models import Notification
from notifications.services import notify_each
from schedules.approval import DateRange, RequestFacts, Verdict, approval_evaluate_strictest
from schedules.decisions import (
    Lifecycle,
    decision_approve,
    decision_deny,
    decision_follow_verdict,
    decision_set_reason,
    decisions_lapse,
)
from schedules.diff import ActivitySpec, DayPlan
from schedules.models import Activity, ActivitySource, RequestType, RuleAction, ScheduleDay
from schedules.services import activity_specs, schedule_days_apply, schedule_days_lock
from swaps.eligibility import (
    CODES,
    NotEligible,
    Shift,
    SwapCheck,
    Violation,
    candidate_pool,
    no_shift_offered,
    shift_of,
)
from swaps.models import (
    LIVE,
    Answer,
    Swap,
    SwapKind,
    SwapRecipient,
    SwapSettings,
    SwapStatus,
    UnequalPaidTime,
)
from swaps.selectors import swap_get_for_agent


def _conflict(code: str, detail: str) -> ApplicationError:
    return ApplicationError(code, detail, status_code=status.HTTP_409_CONFLICT)


def _not_found() -> ApplicationError:
    return ApplicationError("not_found", _("Not found."), status_code=status.HTTP_404_NOT_FOUND)


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError("validation_error", _("The input is not valid."), fields={field: [message]})


def _not_open(swap: Swap, now: dt.datetime) -> ApplicationError:
    if swap.status == SwapStatus.EXPIRED or (swap.status == SwapStatus.OPEN and swap.expires_at <= now):
        return _conflict("swap_expired", _("This swap offer has expired."))
    return _conflict(
        "swap_not_open",
        # The status as the reader's language names it ("cancelled", "geannuleerd").
        _("This swap offer is no longer open (%(status)s).")
        % {"status": str(swap.get_status_display()).lower()},
    )


def _params(swap: Swap) -> dict:
    return {"swap_id": swap.pk, "date": swap.date.isoformat()}


def _their_date(swap: Swap) -> dt.date:
    """The day a swap takes back (the model's constraint: every `swap` kind has one)."""
    if swap.their_date is None:
        raise ValueError(f"swap {swap.pk} of kind {swap.kind} has no their_date")
    return swap.their_date


def _taker(swap: Swap) -> Agent:
    if swap.taker is None:
        raise ValueError(f"swap {swap.pk} has no taker")
    return swap.taker


def _close_offer_notifications(swap: Swap, now: dt.datetime) -> list[int]:
    """The swap_offer notifications' actions end now; returns the users of the swap's recipients
    (those it was offered or announced to, and whoever answered it from the board)."""
    users = list(swap.recipients.values_list("agent__user_id", flat=True))
    # By user first: the inbox's index, not a scan of every notification's parameters.
    Notification.objects.filter(user_id__in=users, kind="swap_offer", params__swap_id=swap.pk).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    ).update(expires_at=now)
    return users


def _agents_of_users(user_ids: Sequence[int], *, exclude: Sequence[int]) -> list[Agent]:
    return list(Agent.objects.filter(user_id__in=user_ids).exclude(pk__in=exclude).order_by("pk"))


# --- offer ---------------------------------------------------------------------------------------


@transaction.atomic
def swap_offer_create(
    *,
    agent: Agent,
    date: dt.date,
    their_date: dt.date | None = None,
    kind: str = SwapKind.SWAP,
    open: bool = False,
    recipients: Sequence[int] = (),
    message: str = "",
    expires_at: dt.datetime | None = None,
) -> Swap:
    now = timezone.now()
    rules = SwapSettings.for_organization(agent.organization)
    if kind == SwapKind.SWAP and not rules.allow_swaps:
        raise _invalid("kind", _("Your organisation does not allow shift swaps."))
    if kind == SwapKind.GIVE_AWAY and not rules.allow_give_aways:
        raise _invalid("kind", _("Your organisation does not allow give-aways."))
    if kind == SwapKind.GIVE_AWAY:
        if their_date is not None:
            raise _invalid("their_date", _("A give-away takes no shift back."))
    elif their_date is None:
        their_date = date
    if open:
        if not rules.allow_board:
            raise _invalid("open", _("Your organisation has no swap board."))
        if recipients:
            raise _invalid("recipients", _("An offer on the board has no recipients."))
    elif not recipients:
        raise _invalid("recipients", _("Choose at least one colleague, or put the offer on the board."))
    if len(recipients) > rules.max_recipients:
        raise _invalid(
            "recipients", _("At most %(count)d colleagues per offer.") % {"count": rules.max_recipients}
        )
    # The requester's offers are counted under its row lock: two offers at once cannot both take
    # the last place. NO KEY: rows referring to the agent do not wait for it.
    Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk).first()
    check = SwapCheck(
        rules=rules,
        requester=agent,
        offered=shift_of(agent=agent, date=date),
        kind=kind,
        their_date=their_date,
        now=now,
        count_offers=True,
    )
    no_shift_offered(check)
    # Counted under the same lock: the organisation may let one shift be offered to several
    # colleagues or boards at once (the first exchange makes the others' shift a changed one).
    live_for_shift = Swap.objects.filter(requester=agent, date=date, status__in=LIVE).count()
    if live_for_shift >= rules.max_open_offers_per_shift:
        raise _conflict(
            "swap_pending",
            _("This shift is already offered in another open swap; cancel that one first.")
            if live_for_shift == 1
            else _(
                "This shift is already offered in %(count)d open swaps, the most allowed; cancel one first."
            )
            % {"count": live_for_shift},
        )
    if open:
        # Only those SQL cannot rule out are evaluated (SwapCheck.narrow never leaves out one who fits).
        pool = list(check.narrow(candidate_pool(requester=agent, rules=rules, include_other_teams=False)))
    else:
        chosen = list(dict.fromkeys(recipients))
        pool = list(
            candidate_pool(requester=agent, rules=rules, include_other_teams=True).filter(pk__in=chosen)
        )
        if len(pool) != len(chosen):
            raise _invalid("recipients", _("Only colleagues of your organisation can receive an offer."))
    own = check.requester_violations()
    if own:
        raise NotEligible(own)
    evaluated = check.evaluate(pool)
    if not open:
        refused = [v for candidate in evaluated for v in candidate.violations]
        if refused:
            raise NotEligible(refused)
    takers = [candidate for candidate in evaluated if candidate.eligible]
    offered = check.offered
    # Before the earlier shift: the recipients' are known; a board taker's own shift is held to the
    # lead time when it accepts.
    earliest = min(
        [offered.start]
        + [c.shift.start for c in takers if not open and c.shift is not None and c.shift.activities]
    )
    default_expiry = earliest - dt.timedelta(hours=rules.expiry_hours_before_shift)
    if expires_at is not None:
        if expires_at > default_expiry:
            raise _invalid(
                "expires_at",
                _("An offer expires at the latest %(hours)d hours before the earlier shift starts.")
                % {"hours": rules.expiry_hours_before_shift},
            )
        if expires_at <= now:
            raise _invalid("expires_at", _("The expiry must be in the future."))
    expiry = expires_at or default_expiry
    if expiry <= now:
        raise NotEligible([Violation("lead_time", _("The shift starts too soon to offer it."))])
    swap = Swap.objects.create(
        organization_id=agent.organization_id,
        requester=agent,
        kind=kind,
        date=date,
        their_date=their_date,
        open=open,
        message=message,
        expires_at=expiry,
        offered_shift=offered.snapshot(),
        offered_start=offered.start,
        offered_end=offered.end,
        created_at=now,
        checked_at=now,
    )
    # A board offer's recipients are the colleagues it was announced to (up to the organisation's
    # limit): they keep seeing it, and how it ended, once it is no longer on the board.
    notified = takers[: rules.max_recipients]
    SwapRecipient.objects.bulk_create(
        [
            SwapRecipient(swap=swap, agent=c.agent, shift=c.shift.snapshot() if c.shift else None)
            for c in notified
        ]
    )
    params = {**_params(swap), "from_name": agent.name}
    if kind == SwapKind.GIVE_AWAY:
        params["variant"] = "give_away"
    notify_each(kind="swap_offer", items=[(c.agent, params) for c in notified], expires_at=expiry)
    return swap


# --- the exchange and the lifecycle ---------------------------------------------------------------


def _moved(shift_snapshot: dict, to: Agent) -> list[ActivitySpec]:
    return [
        ActivitySpec(
            activity_code_id=a["activity_code_id"],
            start=dt.datetime.fromisoformat(a["start"]),
            end=dt.datetime.fromisoformat(a["end"]),
            note=a["note"],
            source=ActivitySource.SWAP,
        )
        for a in shift_snapshot["activities"]
    ]


def _keys(swap: Swap) -> list[tuple[int, dt.date]]:
    """Every (agent, local day) the exchange writes: both shifts' days and the days they land on."""
    if swap.taker is None:
        raise ValueError(f"swap {swap.pk} has no taker")
    requester, taker = swap.requester, swap.taker
    keys = {(requester.pk, swap.date), (taker.pk, swap.offered_start.astimezone(taker.zone).date())}
    if swap.taker_shift and swap.taker_shift["activities"]:
        first = dt.datetime.fromisoformat(swap.taker_shift["activities"][0]["start"])
        keys |= {(taker.pk, _their_date(swap)), (requester.pk, first.astimezone(requester.zone).date())}
    return sorted(keys)


def _ensure_unchanged(swap: Swap) -> tuple[Shift, Shift | None]:
    """Both shifts as they were when offered (read under the days' locks), or 409 schedule_changed."""
    if swap.taker is None:
        raise ValueError(f"swap {swap.pk} has no taker")
    offered = shift_of(agent=swap.requester, date=swap.date)
    asked = shift_of(agent=swap.taker, date=_their_date(swap)) if swap.kind == SwapKind.SWAP else None
    if not offered.same_as(swap.offered_shift) or (asked is not None and not asked.same_as(swap.taker_shift)):
        raise _conflict(
            "schedule_changed",
            _("A schedule changed since this swap was offered: the shifts are no longer what they were."),
        )
    return offered, asked


def swap_exchange_plans(*, swap: Swap, offered: Shift, asked: Shift | None) -> list[DayPlan]:
    """Every day the exchange writes, as it would become from the days as they are now: each agent
    loses its shift and gets the other's (a give-away: the taker only gets). Writes nothing (the
    admin shows these beside the days as they are)."""
    taker = _taker(swap)
    gone = {a.id for a in offered.activities} | ({a.id for a in asked.activities} if asked else set())
    incoming: dict[tuple[int, dt.date], list[ActivitySpec]] = {}
    for spec in _moved(swap.offered_shift, taker):
        incoming.setdefault((taker.pk, spec.start.astimezone(taker.zone).date()), []).append(spec)
    if asked is not None and swap.taker_shift:
        for spec in _moved(swap.taker_shift, swap.requester):
            key = (swap.requester.pk, spec.start.astimezone(swap.requester.zone).date())
            incoming.setdefault(key, []).append(spec)
    agents = {swap.requester.pk: swap.requester, taker.pk: taker}
    keys = _keys(swap)
    current: dict[tuple[int, dt.date], list[ActivitySpec]] = {key: [] for key in keys}
    for activity in (
        Activity.objects.of_agents(agents)
        .filter(day__date__in={date for _agent, date in keys})
        .order_by("start")
    ):
        key = (activity.agent_id, activity.start.astimezone(agents[activity.agent_id].zone).date())
        if key in current and activity.pk not in gone:
            current[key].append(activity_specs([activity])[0])
    plans = []
    for key in keys:
        arriving = incoming.get(key, [])
        plans.append(
            DayPlan(
                agent=agents[key[0]],
                date=key[1],
                activities=sorted(current[key] + arriving, key=lambda spec: spec.start),
                # A published shift stays published on the day it lands on.
                published=True if arriving else None,
            )
        )
    return plans


def _exchange(swap: Swap, actor: User | None) -> None:
    """The lifecycle's apply: both days exchanged in one call of the schedule service (one change
    group, both agents told of their changed days), read under the days' locks."""
    schedule_days_lock(keys=_keys(swap))
    offered, asked = _ensure_unchanged(swap)
    result = schedule_days_apply(
        plans=swap_exchange_plans(swap=swap, offered=offered, asked=asked),
        source=ActivitySource.SWAP,
        actor=actor,
        reason=f"swap {swap.pk}",
    )
    swap.change_group = result.group
    swap.closed_at = timezone.now()


def _approvable(swap: Swap, now: dt.datetime) -> None:
    starts = [swap.offered_start, *([swap.asked_start] if swap.asked_start else [])]
    if min(starts) <= now:
        raise _conflict("in_the_past", _("A shift of this swap has started; the swap can only be denied."))
    # What changed while it waited (time off asked for, a skill gone) is refused, not approved.
    _still_holds(swap, now)


def _both(swap: Swap) -> list[Agent]:
    return [agent for agent in (swap.requester, swap.taker) if agent is not None]


SWAPS: Lifecycle[Swap] = Lifecycle(
    model=Swap,
    approved_kind="swap_approved",
    denied_kind="swap_denied",
    apply=_exchange,
    params=_params,
    applied_fields=("change_group", "closed_at"),
    check_approvable=_approvable,
    organization=lambda swap: swap.organization,
    recipients=_both,
    related=("organization", "requester", "taker"),
)


def _verdict(
    swap: Swap, offered: Shift, asked: Shift | None, rules: SwapSettings, now: dt.datetime
) -> Verdict:
    dates = [swap.date] + ([swap.their_date] if swap.their_date else [])
    codes = sorted(
        {a.activity_code_id for a in offered.activities}
        | ({a.activity_code_id for a in asked.activities} if asked else set())
    )
    verdict = approval_evaluate_strictest(
        facts=RequestFacts(
            organization=swap.organization,
            request_type=RequestType.SWAP,
            dates=DateRange(min(dates), max(dates)),
            starts_at=min([offered.start] + ([asked.start] if asked and asked.activities else [])),
        ),
        activity_code_ids=codes,
        now=now,
    )
    unequal = asked is not None and offered.paid_hours != asked.paid_hours
    if (
        verdict.action == RuleAction.AUTO_APPROVE
        and unequal
        and rules.unequal_paid_time == UnequalPaidTime.SUPERVISOR
    ):
        return Verdict(
            RuleAction.MANUAL,
            verdict.rule,
            Reason(gettext_noop("Shifts of unequal paid time need a supervisor.")),
        )
    return verdict


# --- accept, decline, cancel ------------------------------------------------------------------------


@transaction.atomic
def swap_accept(*, agent: Agent, swap_id: int) -> Swap:
    now = timezone.now()
    swap = swap_get_for_agent(agent=agent, id=swap_id, acting=True)
    if swap is None:
        raise _not_found()
    if swap.requester_id == agent.pk:
        raise _conflict("own_swap", _("You cannot accept your own swap offer."))
    invitation = SwapRecipient.objects.filter(swap=swap, agent=agent).first()
    if not swap.open and invitation is None:
        raise _not_found()
    if invitation is not None and invitation.answer == Answer.DECLINED and swap.status == SwapStatus.OPEN:
        raise _conflict("swap_not_open", _("You declined this swap offer."))
    # The claim: one conditional update, so however many accept at once, one row count is 1. The
    # others wait on the row and then find it no longer open (or the winner's rollback reopens it).
    claimed = Swap.objects.filter(pk=swap.pk, status=SwapStatus.OPEN, expires_at__gt=now).update(
        status=SwapStatus.AWAITING_APPROVAL, taker=agent, accepted_at=now
    )
    if not claimed:
        swap.refresh_from_db()
        raise _not_open(swap, now)
    swap.refresh_from_db()
    swap.taker = agent
    rules = SwapSettings.for_organization(swap.organization)
    if swap.kind == SwapKind.SWAP:
        if invitation is not None:
            swap.taker_shift = invitation.shift
        else:
            swap.taker_shift = shift_of(agent=agent, date=_their_date(swap)).snapshot()
    schedule_days_lock(keys=_keys(swap))
    offered, asked = _ensure_unchanged(swap)
    check = SwapCheck(
        rules=rules,
        requester=swap.requester,
        offered=offered,
        kind=swap.kind,
        their_date=swap.their_date,
        now=now,
        count_offers=False,
    )
    violations = check.evaluate([agent])[0].violations
    if violations:
        raise NotEligible(violations)
    swap.asked_start = asked.start if asked is not None and asked.activities else None
    swap.save(update_fields=["taker_shift", "asked_start"])
    if invitation is None:
        invitation = SwapRecipient.objects.create(swap=swap, agent=agent, shift=swap.taker_shift)
    SwapRecipient.objects.filter(pk=invitation.pk).update(answer=Answer.ACCEPTED, answered_at=now)
    notified = _close_offer_notifications(swap, now)
    notify_each(kind="swap_accepted", items=[(swap.requester, {**_params(swap), "by_name": agent.name})])
    others = _agents_of_users(notified, exclude=[agent.pk, swap.requester_id])
    notify_each(
        kind="swap_taken",
        items=[(other, {**_params(swap), "from_name": swap.requester.name}) for other in others],
    )
    decision_follow_verdict(
        lifecycle=SWAPS, decision=swap, verdict=_verdict(swap, offered, asked, rules, now)
    )
    return swap


@transaction.atomic
def swap_decline(*, agent: Agent, swap_id: int) -> Swap:
    now = timezone.now()
    swap = swap_get_for_agent(agent=agent, id=swap_id, lock=True, acting=True)
    if swap is None:
        raise _not_found()
    if swap.requester_id == agent.pk:
        raise _conflict("own_swap", _("You cannot decline your own swap offer; cancel it instead."))
    if swap.status != SwapStatus.OPEN or swap.expires_at <= now:
        raise _not_open(swap, now)
    invitation = SwapRecipient.objects.filter(swap=swap, agent=agent).first()
    if invitation is None:
        if not swap.open:
            raise _not_found()
        invitation = SwapRecipient.objects.create(swap=swap, agent=agent)
    if invitation.answer != Answer.PENDING:
        raise _conflict("already_answered", _("You have already answered this swap offer."))
    invitation.answer, invitation.answered_at = Answer.DECLINED, now
    invitation.save(update_fields=["answer", "answered_at"])
    Notification.objects.filter(kind="swap_offer", params__swap_id=swap.pk, user_id=agent.user_id).update(
        expires_at=now
    )
    if not swap.open and not swap.recipients.filter(answer=Answer.PENDING).exists():
        swap.status, swap.closed_at = SwapStatus.DECLINED, now
        swap.save(update_fields=["status", "closed_at"])
        notify_each(kind="swap_declined", items=[(swap.requester, _params(swap))])
    return swap


def _close(swap: Swap, *, to: str, now: dt.datetime) -> bool:
    """open -> `to`, by a conditional update: false when someone else closed or took it first."""
    closed = Swap.objects.filter(pk=swap.pk, status=SwapStatus.OPEN).update(status=to, closed_at=now)
    if closed:
        swap.status, swap.closed_at = to, now
    return bool(closed)


@transaction.atomic
def swap_cancel(*, agent: Agent, swap_id: int) -> Swap:
    now = timezone.now()
    swap = swap_get_for_agent(agent=agent, id=swap_id)
    if swap is None:
        raise _not_found()
    if swap.requester_id != agent.pk:
        raise _conflict("not_requester", _("Only the colleague who offered the swap can cancel it."))
    if not _close(swap, to=SwapStatus.CANCELLED, now=now):
        swap.refresh_from_db()
        raise _not_open(swap, now)
    notified = _close_offer_notifications(swap, now)
    others = _agents_of_users(notified, exclude=[agent.pk])
    notify_each(
        kind="swap_cancelled", items=[(other, {**_params(swap), "from_name": agent.name}) for other in others]
    )
    return swap


def swap_approve(*, swap_id: int, actor: User, reason: str = "") -> Swap:
    """A supervisor's approval of a swap awaiting it: exchanged in this transaction, or not at all."""
    return decision_approve(lifecycle=SWAPS, pk=swap_id, actor=actor, reason=reason)


def swap_deny(*, swap_id: int, actor: User, reason: str = "") -> Swap:
    return decision_deny(lifecycle=SWAPS, pk=swap_id, actor=actor, reason=reason)


# --- periodic: expiry and the re-check --------------------------------------------------------------


def swaps_expire(*, now: dt.datetime | None = None) -> int:
    """Open offers past `expires_at` expire (both sides told); swaps still awaiting a supervisor when
    a shift starts are denied. Each in its own transaction, by a conditional update: an accept or a
    cancel at the same moment wins or loses whole. Safe to run twice."""
    now = now or timezone.now()
    expired = 0
    for pk in Swap.objects.filter(status=SwapStatus.OPEN, expires_at__lte=now).values_list("pk", flat=True)[
        :1000
    ]:
        with transaction.atomic():
            swap = Swap.objects.select_related("requester").get(pk=pk)
            if not _close(swap, to=SwapStatus.EXPIRED, now=now):
                continue
            notified = _close_offer_notifications(swap, now)
            told = [swap.requester, *_agents_of_users(notified, exclude=[swap.requester_id])]
            notify_each(kind="swap_expired", items=[(agent, _params(swap)) for agent in told])
            expired += 1
    lapsed = Swap.objects.filter(
        Q(offered_start__lte=now) | Q(asked_start__lte=now), status=SwapStatus.AWAITING_APPROVAL
    )
    expired += decisions_lapse(
        lifecycle=SWAPS,
        pending=list(lapsed.values_list("pk", flat=True)[:1000]),
        reason=Reason(gettext_noop("The shift began before a supervisor decided.")),
    )
    return expired


# What a re-check holds a live swap to: the rules a change of the days can break. Time passing is
# the expiry's business (a started shift, the lead time), and the offer count held when offered.
_TIMELESS = frozenset(CODES) - {"shift_in_past", "lead_time", "open_offer_limit"}
# Why a swap no longer holds, per broken rule, as the reason each reader gets in their language.
_WHY = {
    "schedule_changed": gettext_noop("a shift is no longer what it was when offered"),
    "shift_not_published": gettext_noop("a shift is no longer published"),
    "no_shift": gettext_noop("the colleague no longer works that day"),
    "has_shift": gettext_noop("the colleague now works that day"),
    "overlap": gettext_noop("a shift would overlap other activities"),
    "skill_missing": gettext_noop("a skill the shift needs is missing"),
    "skill_level_lower": gettext_noop("a skill level is lower than the shift needs"),
    "max_daily_hours": gettext_noop("a day would have too many hours"),
    "max_weekly_hours": gettext_noop("a week would have too many hours"),
    "min_rest": gettext_noop("the rest between shifts would be too short"),
    "length_difference": gettext_noop("the shifts' paid hours differ too much"),
    "not_tradable_activity": gettext_noop("a shift has activities that cannot be swapped"),
    "time_off": gettext_noop("time off was requested for one of the days"),
    "different_team": gettext_noop("the colleagues are no longer in the same team"),
}


def _why(codes: Sequence[str]) -> Reason:
    ordered = sorted(
        set(codes), key=lambda code: (code != "schedule_changed", CODES.index(code) if code in CODES else 0)
    )
    return Reason(
        gettext_noop("The swap no longer holds: %(why)s."), {"why": [Reason(_WHY[code]) for code in ordered]}
    )


def _broken(violations: Sequence[Violation]) -> list[str]:
    return [v.code for v in violations if v.code in _TIMELESS]


def _takers_broken(
    swap: Swap, offered: Shift, takers: Sequence[Agent], now: dt.datetime
) -> dict[int, list[str]]:
    """The timeless rules each taker would break now, in one evaluation (a fixed number of queries)."""
    check = SwapCheck(
        rules=SwapSettings.for_organization(swap.organization),
        requester=swap.requester,
        offered=offered,
        kind=swap.kind,
        their_date=swap.their_date,
        now=now,
        count_offers=False,
    )
    return {candidate.agent.pk: _broken(candidate.violations) for candidate in check.evaluate(takers)}


def _still_holds(swap: Swap, now: dt.datetime) -> None:
    """Before a supervisor's approval: both shifts as offered and every timeless rule still met."""
    taker = _taker(swap)
    offered = shift_of(agent=swap.requester, date=swap.date)
    asked = shift_of(agent=taker, date=_their_date(swap)) if swap.kind == SwapKind.SWAP else None
    if not offered.same_as(swap.offered_shift) or (asked is not None and not asked.same_as(swap.taker_shift)):
        raise _conflict(
            "schedule_changed",
            _("A schedule changed since this swap was offered: the shifts are no longer what they were."),
        )
    check = SwapCheck(
        rules=SwapSettings.for_organization(swap.organization),
        requester=swap.requester,
        offered=offered,
        kind=swap.kind,
        their_date=swap.their_date,
        now=now,
        count_offers=False,
    )
    broken = [v for v in check.evaluate([taker])[0].violations if v.code in _TIMELESS]
    if broken:
        raise NotEligible(broken)


def _recheck_one(pk: int, now: dt.datetime) -> str | None:
    """One live swap against its days and rules: what became of it (None: it still holds). An
    awaiting swap that no longer holds is denied, an open one cancelled, with the reason; a
    recipient of an open offer who could no longer take it drops out (its offer's actions end)."""
    with transaction.atomic():
        swap = (
            Swap.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("organization", "requester", "taker")
            .filter(pk=pk, status__in=LIVE)
            .first()
        )
        if swap is None:
            return None  # decided meanwhile, or being accepted or decided right now (that re-checks)
        Swap.objects.filter(pk=pk).update(checked_at=now)
        offered = shift_of(agent=swap.requester, date=swap.date)
        codes: list[str] = []
        if swap.status == SwapStatus.AWAITING_APPROVAL:
            taker = _taker(swap)
            asked = shift_of(agent=taker, date=_their_date(swap)) if swap.kind == SwapKind.SWAP else None
            if not offered.same_as(swap.offered_shift) or (
                asked is not None and not asked.same_as(swap.taker_shift)
            ):
                codes = ["schedule_changed"]
            else:
                codes = _takers_broken(swap, offered, [taker], now)[taker.pk]
            if not codes:
                return None
        elif not offered.same_as(swap.offered_shift):
            codes = ["schedule_changed"]
        else:
            check = SwapCheck(
                rules=SwapSettings.for_organization(swap.organization),
                requester=swap.requester,
                offered=offered,
                kind=swap.kind,
                their_date=swap.their_date,
                now=now,
                count_offers=False,
            )
            codes = _broken(check.requester_violations())
            if not codes:
                pending = list(swap.recipients.filter(answer=Answer.PENDING).select_related("agent"))
                broken = _takers_broken(swap, offered, [r.agent for r in pending], now) if pending else {}
                dropped = []
                for recipient in pending:
                    why = list(broken.get(recipient.agent_id, []))
                    if swap.kind == SwapKind.SWAP and not shift_of(
                        agent=recipient.agent, date=_their_date(swap)
                    ).same_as(recipient.shift):
                        why.insert(0, "schedule_changed")
                    if why:
                        dropped.append(recipient)
                        codes += why
                SwapRecipient.objects.filter(pk__in=[r.pk for r in dropped]).update(
                    answer=Answer.UNAVAILABLE, answered_at=now
                )
                Notification.objects.filter(
                    kind="swap_offer", params__swap_id=swap.pk, user_id__in=[r.agent.user_id for r in dropped]
                ).update(expires_at=now)
                if swap.open or len(dropped) < len(pending):
                    return None  # others may still take it
                if not pending:
                    return None
    reason = _why(codes)
    if swap.status == SwapStatus.AWAITING_APPROVAL:
        # The lifecycle's own denial (claimed pending, both agents told with the reason); a
        # supervisor deciding it at the same moment simply wins it.
        denied = decisions_lapse(lifecycle=SWAPS, pending=[pk], reason=reason)
        return "denied" if denied else None
    with transaction.atomic():
        swap = Swap.objects.select_related("requester").get(pk=pk)
        if not _close(swap, to=SwapStatus.CANCELLED, now=now):
            return None
        decision_set_reason(swap, reason)
        swap.save(update_fields=["status_reason", "status_reason_i18n"])
        notified = _close_offer_notifications(swap, now)
        told = [swap.requester, *_agents_of_users(notified, exclude=[swap.requester_id])]
        notify_each(
            kind="swap_invalidated",
            items=[(agent, {**_params(swap), "reason": swap.reason_param()}) for agent in told],
        )
    return "cancelled"


# A write's transaction may commit minutes after it stamped its days (a sync of thousands of days):
# the periodic net looks this far back before a swap's last check, so such a change is not missed.
RECHECK_SLACK = dt.timedelta(minutes=10)


def swaps_recheck(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The periodic net under swaps_recheck_days (which schedule_days_changed triggers at once):
    live swaps whose days changed since shortly before their last check are checked again; an open
    offer that no longer holds is cancelled, one awaiting approval denied, with the reason, and
    everyone involved is told. Safe to run twice: one that still holds is left as it is."""
    now = now or timezone.now()
    changed_day = ScheduleDay.objects.filter(updated_at__gt=OuterRef("checked_at") - RECHECK_SLACK)
    live = Swap.objects.filter(status__in=LIVE).filter(
        Exists(changed_day.filter(agent_id=OuterRef("requester_id"), date=OuterRef("date")))
        | Exists(changed_day.filter(agent_id=OuterRef("taker_id"), date=OuterRef("their_date")))
        | Exists(
            changed_day.filter(
                agent__swap_invitations__swap=OuterRef("pk"),
                agent__swap_invitations__answer=Answer.PENDING,
                date=OuterRef("their_date"),
            )
        )
    )
    return _recheck(list(live.values_list("pk", flat=True)[:1000]), now)


def _recheck(ids: Sequence[int], now: dt.datetime) -> dict[str, int]:
    counts = {"checked": 0, "cancelled": 0, "denied": 0}
    for pk in ids:
        counts["checked"] += 1
        outcome = _recheck_one(pk, now)
        if outcome:
            counts[outcome] += 1
    return counts


def swaps_on_days(*, keys: Sequence[tuple[int, dt.date]]) -> list[int]:
    """The live swaps that hold a promise about one of these (agent id, date) days: a shift offered
    or taken back there, or (a day either side, for other zones) where a shift would land."""
    wanted = set(keys)
    if not wanted:
        return []
    agents = {agent_id for agent_id, _date in wanted}
    dates = {date + dt.timedelta(days=offset) for _agent, date in wanted for offset in (-1, 0, 1)}
    rows = list(
        Swap.objects.filter(status__in=LIVE)
        .filter(
            Q(requester_id__in=agents)
            | Q(taker_id__in=agents)
            | Q(recipients__agent_id__in=agents, recipients__answer=Answer.PENDING)
        )
        .filter(Q(date__in=dates) | Q(their_date__in=dates))
        .values_list("pk", "requester_id", "taker_id", "date", "their_date")
        .distinct()
    )
    if not rows:
        return []  # the common case: every schedule write and time-off filing asks
    invited: dict[int, list[int]] = {}
    for swap_id, agent_id in SwapRecipient.objects.filter(
        swap_id__in=[row[0] for row in rows], answer=Answer.PENDING
    ).values_list("swap_id", "agent_id"):
        invited.setdefault(swap_id, []).append(agent_id)
    found = []
    for pk, requester_id, taker_id, date, their_date in rows:
        takers = [taker_id] if taker_id else invited.get(pk, [])
        near = {date + dt.timedelta(days=offset) for offset in (-1, 0, 1)}
        if their_date is not None:
            near |= {their_date + dt.timedelta(days=offset) for offset in (-1, 0, 1)}
        if any((agent_id, day) in wanted for agent_id in [requester_id, *takers] for day in near):
            found.append(pk)
    return sorted(found)


def swaps_recheck_ids(*, ids: Sequence[int], now: dt.datetime | None = None) -> dict[str, int]:
    """The given swaps checked again (those still live; the others are left as they are)."""
    return _recheck(list(ids), now or timezone.now())
