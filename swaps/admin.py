"""Supervisors' swap work: the queue of swaps awaiting approval (approve or deny, one at a time or in
bulk) with both agents' days before and after the exchange side by side, every swap of the
organisation for reference, and the organisation's swap rules. Decisions go through the services
(the decision lifecycle, which exchanges the shifts and tells both agents); a swap is never edited
as a form. Scoping to the supervisor's organisation is OrganizationScopedAdmin's."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple, cast

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from em_agent.admin_scoping import OrganizationScopedAdmin
from em_agent.exceptions import ApplicationError
from em_agent.models import Agent, User
from schedules.admin import DecisionForm, OrganizationConfigAdmin, QueueStatusFilter
from schedules.models import Activity, ActivityCode, ScheduleChange
from swaps.eligibility import shift_of
from swaps.models import Swap, SwapSettings, SwapStatus
from swaps.services import swap_approve, swap_deny, swap_exchange_plans


def _actor(request: HttpRequest) -> User:
    return cast(User, request.user)


def _span(agent: Agent, start: dt.datetime, end: dt.datetime) -> str:
    zone = agent.zone
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    days_later = (local_end.date() - local_start.date()).days
    text = f"{local_start:%H:%M}–{local_end:%H:%M}"
    return f"{text} (+{days_later})" if days_later else text


class _Block(NamedTuple):
    code: str
    start: dt.datetime
    end: dt.datetime


class DayView(NamedTuple):
    """One day the exchange writes, for one agent: its activities before and after."""

    agent: Agent
    date: dt.date
    before: list[_Block]
    after: list[_Block]


def swap_days_before_after(swap: Swap) -> list[DayView]:
    """Both agents' days the swap changes: for a decided one as the journal recorded them, for one
    awaiting approval as they are now and as the exchange would leave them."""
    if swap.taker is None:
        return []
    agents = {swap.requester.pk: swap.requester, swap.taker.pk: swap.taker}
    if swap.change_group is not None:
        changes = ScheduleChange.objects.filter(group=swap.change_group).order_by("agent_id", "date", "id")
        rows = [(c.agent_id, c.date, c.before["activities"], c.after["activities"]) for c in changes]
        ids = {a["activity_code_id"] for *_key, before, after in rows for a in [*before, *after]}
        codes = dict(ActivityCode.objects.filter(pk__in=ids).values_list("pk", "code"))

        def blocks(snapshots: list[dict]) -> list[_Block]:
            return [
                _Block(
                    codes.get(a["activity_code_id"], "?"),
                    dt.datetime.fromisoformat(a["start"]),
                    dt.datetime.fromisoformat(a["end"]),
                )
                for a in snapshots
            ]

        return [DayView(agents[agent_id], date, blocks(b), blocks(a)) for agent_id, date, b, a in rows]
    offered = shift_of(agent=swap.requester, date=swap.date)
    asked = shift_of(agent=swap.taker, date=swap.their_date) if swap.their_date else None
    plans = swap_exchange_plans(swap=swap, offered=offered, asked=asked)
    dates = {plan.date for plan in plans}
    now: dict[tuple[int, dt.date], list[_Block]] = {(plan.agent.pk, plan.date): [] for plan in plans}
    for activity in (
        Activity.objects.of_agents(agents)
        .filter(day__date__in=dates)
        .select_related("activity_code", "day")
        .order_by("start")
    ):
        key = (activity.agent_id, activity.day.date)
        if key in now:
            now[key].append(_Block(activity.activity_code.code, activity.start, activity.end))
    codes = dict(
        ActivityCode.objects.filter(
            pk__in={spec.activity_code_id for plan in plans for spec in plan.activities}
        ).values_list("pk", "code")
    )
    return [
        DayView(
            plan.agent,
            plan.date,
            now[(plan.agent.pk, plan.date)],
            [_Block(codes.get(spec.activity_code_id, "?"), spec.start, spec.end) for spec in plan.activities],
        )
        for plan in plans
    ]


def _blocks_text(agent: Agent, blocks: list[_Block]) -> str:
    return ", ".join(f"{b.code} {_span(agent, b.start, b.end)}" for b in blocks) or gettext("day off")


class SwapQueueFilter(QueueStatusFilter):
    """The queue opens on what waits for a supervisor; "All" shows every swap."""

    default: str = SwapStatus.AWAITING_APPROVAL


@admin.register(Swap)
class SwapAdmin(OrganizationScopedAdmin):
    organization_path = "organization"
    supervisor_actions = frozenset({"view", "change"})
    list_display = ["requester", "taker", "kind", "day", "status", "requester_days", "taker_days", "age"]
    list_filter = [SwapQueueFilter, "kind", "open", "date"]
    search_fields = ["requester__name", "taker__name", "requester__user__email"]
    list_select_related = ["requester", "taker"]
    # The soonest shift first: it is the one that can no longer wait.
    ordering = ["offered_start", "pk"]
    actions = ["approve_selected", "deny_selected"]
    change_form_template = "admin/schedules/schedulerequest/change_form.html"
    fieldsets = [
        (
            None,
            {"fields": ["requester", "taker", "kind", "open", "date", "their_date", "message", "created_at"]},
        ),
        (_("Decision"), {"fields": ["status", "reason", "decided_by", "decided_by_rule", "decided_at"]}),
        (_("Both agents' days, before and after the exchange"), {"fields": ["days_side_by_side"]}),
    ]
    readonly_fields = [
        "requester",
        "taker",
        "kind",
        "open",
        "date",
        "their_date",
        "message",
        "created_at",
        "status",
        "reason",
        "decided_by",
        "decided_by_rule",
        "decided_at",
        "days_side_by_side",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # agents offer swaps, through the app

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The model-level permission is the right to decide (the actions); no swap is edited as a form.
        return obj is None and super().has_change_permission(request)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), "may_decide": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("day"), ordering="date")
    def day(self, obj: Swap) -> str:
        if obj.their_date and obj.their_date != obj.date:
            return f"{date_format(obj.date)} ↔ {date_format(obj.their_date)}"
        return date_format(obj.date)

    @admin.display(description=_("reason"), ordering="status_reason")
    def reason(self, obj: Swap) -> str:
        return obj.reason_text()

    @admin.display(description=_("age"), ordering="-created_at")
    def age(self, obj: Swap) -> str:
        return timesince(obj.created_at, depth=1)

    def _side(self, obj: Swap, agent: Agent | None) -> str:
        if agent is None:
            return "-"
        days = [view for view in self._views(obj) if view.agent.pk == agent.pk]
        return " | ".join(
            f"{date_format(view.date)}: {_blocks_text(agent, view.before)} → {_blocks_text(agent, view.after)}"
            for view in days
        )

    def _views(self, obj: Swap) -> list[DayView]:
        # Once per row: the queue shows both agents' columns from the same reads.
        cached = getattr(obj, "_day_views", None)
        if cached is None:
            cached = obj._day_views = swap_days_before_after(obj)  # type: ignore[attr-defined]
        return cached

    @admin.display(description=_("requester: before → after"))
    def requester_days(self, obj: Swap) -> str:
        return self._side(obj, obj.requester) if obj.taker_id else "-"

    @admin.display(description=_("taker: before → after"))
    def taker_days(self, obj: Swap) -> str:
        return self._side(obj, obj.taker)

    @admin.display(description=_("days"))
    def days_side_by_side(self, obj: Swap) -> SafeString:
        views = self._views(obj)
        if not views:
            return format_html("<p>{}</p>", gettext("Nobody has taken this swap yet."))
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    view.agent.name,
                    view.agent.timezone,
                    date_format(view.date),
                    _blocks_text(view.agent, view.before),
                    _blocks_text(view.agent, view.after),
                )
                for view in views
            ),
        )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            gettext("Agent"),
            gettext("Time zone"),
            gettext("Day"),
            gettext("Before"),
            gettext("After"),
            rows,
        )

    # --- the decisions

    @admin.action(description=_("Approve selected"), permissions=["change"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet):
        return self._decide(request, queryset, approve=True)

    @admin.action(description=_("Deny selected"), permissions=["change"])
    def deny_selected(self, request: HttpRequest, queryset: QuerySet):
        return self._decide(request, queryset, approve=False)

    def _chosen(self, request: HttpRequest, queryset: QuerySet) -> list[Swap]:
        """The ticked swaps within the supervisor's reach, whatever the queue's filter shows now."""
        ids: QuerySet | list[str]
        if request.POST.get("select_across") == "1":
            ids = queryset.values("pk")
        else:
            ids = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        return list(
            self.get_queryset(request)
            .filter(pk__in=ids)
            .select_related("requester", "taker")
            .order_by("offered_start", "pk")
        )

    def _decide(self, request: HttpRequest, queryset: QuerySet, *, approve: bool):
        chosen = self._chosen(request, queryset)
        if not chosen:
            self.message_user(request, gettext("No swap was selected."), messages.WARNING)
            return None
        form = DecisionForm(request.POST if "apply" in request.POST else None, approve=approve)
        if not form.is_valid():
            return self._decision_page(request, chosen, form, approve=approve)
        decide = swap_approve if approve else swap_deny
        done = not_pending = 0
        for swap in chosen:
            # One transaction per swap (the service's): one that no longer fits fails alone.
            try:
                decide(swap_id=swap.pk, actor=_actor(request), reason=form.cleaned_data["reason"])
            except ApplicationError as error:
                if error.code == "not_pending":
                    not_pending += 1
                    continue
                self.message_user(
                    request,
                    gettext("The swap of %(requester)s for %(date)s could not be decided: %(detail)s")
                    % {
                        "requester": swap.requester.name,
                        "date": date_format(swap.date),
                        "detail": error.detail,
                    },
                    messages.ERROR,
                )
            else:
                done += 1
        if done:
            text = (
                ngettext("%(count)d swap approved.", "%(count)d swaps approved.", done)
                if approve
                else ngettext("%(count)d swap denied.", "%(count)d swaps denied.", done)
            )
            self.message_user(request, text % {"count": done}, messages.SUCCESS)
        if not_pending:
            self.message_user(
                request,
                ngettext(
                    "%(count)d swap was not awaiting approval any more.",
                    "%(count)d swaps were not awaiting approval any more.",
                    not_pending,
                )
                % {"count": not_pending},
                messages.WARNING,
            )
        return None

    def _decision_page(
        self, request: HttpRequest, chosen: list[Swap], form: DecisionForm, *, approve: bool
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Approve swaps") if approve else gettext("Deny swaps"),
            "submit_label": gettext("Approve") if approve else gettext("Deny"),
            "opts": self.model._meta,
            "rows": [
                {
                    "swap": swap,
                    "day": self.day(swap),
                    "requester_days": self.requester_days(swap),
                    "taker_days": self.taker_days(swap),
                }
                for swap in chosen
            ],
            "form": form,
            "action": "approve_selected" if approve else "deny_selected",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/swaps/swap/decide.html", context)


@admin.register(SwapSettings)
class SwapSettingsAdmin(OrganizationConfigAdmin):
    organization_path = "organization"
    supervisor_actions = frozenset({"view", "change", "add"})
    list_display = [
        "organization",
        "allow_swaps",
        "allow_give_aways",
        "allow_board",
        "min_lead_hours",
        "min_rest_hours",
        "unequal_paid_time",
    ]
    list_select_related = ["organization"]
    filter_horizontal = ["not_tradable_codes"]
