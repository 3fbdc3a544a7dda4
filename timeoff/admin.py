"""Supervisors' time off (issue 11, point 10): the queue of time-off requests beside the schedule
requests' (the same machinery: schedules.admin.DecisionQueueAdmin), with each request's days, the
staffing of those days, what their limits leave and the agent's balance; balances per agent and
their adjustments; limits, policies (accrual, floor) and the organisation's settings; who is off on
a date, per team. What the WFM exports (balances earned, staffing) and IEX absences stay read-only.
Scoping to the supervisor's organisation is OrganizationScopedAdmin's."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from em_agent.admin_scoping import (
    OrganizationScopedAdmin,
    RecordAdminMixin,
    is_supervisor,
    organization_of,
)
from em_agent.exceptions import ApplicationError
from em_agent.models import Agent, Organization, Team, User
from schedules.admin import (
    DecisionQueueAdmin,
    DefaultChoiceFilter,
    OrganizationConfigAdmin,
    QueueStatusFilter,
    _explain,
    _span,
)
from schedules.models import Activity, ActivityCategory, ActivityCode
from timeoff.admin_services import balance_adjust, time_off_limit_delete, time_off_limit_save
from timeoff.balances import Balance, balance_for_code, balances_for_agent, hours
from timeoff.limits import limits_for_days, taken_on
from timeoff.models import (
    AbsenceRequest,
    BalanceAdjustment,
    LimitUnit,
    StaffingInterval,
    TimeOffBalance,
    TimeOffDay,
    TimeOffKind,
    TimeOffLimit,
    TimeOffPolicy,
    TimeOffRequest,
    TimeOffSettings,
    TimeOffStatus,
)
from timeoff.selectors import waitlist_position
from timeoff.services import time_off_request_approve, time_off_request_deny


def _actor(request: HttpRequest) -> User:
    return cast(User, request.user)


def _hours(minutes: int) -> str:
    return gettext("%(hours)s h") % {"hours": hours(minutes)}


def _organization_zone(request: HttpRequest) -> zoneinfo.ZoneInfo:
    """A supervisor plans in its organisation's wall time; a superuser's is the server's."""
    organization_id = organization_of(request)
    organization = Organization.objects.filter(pk=organization_id).first() if organization_id else None
    return zoneinfo.ZoneInfo(organization.default_timezone if organization else settings.TIME_ZONE)


# --- what a pending request meets: staffing, limits, balance ------------------------------------


@dataclass(frozen=True)
class LimitLeft:
    scope: str  # the team's name, or "organisation"
    unit: str
    capacity: Decimal
    left: Decimal  # what approved time off leaves of it, besides this request
    wanted: Decimal  # what this request would take of it

    @property
    def full(self) -> bool:
        return self.wanted > self.left

    def text(self) -> str:
        values = {"left": _number(self.left), "capacity": _number(self.capacity), "scope": self.scope}
        if self.unit == LimitUnit.AGENTS:
            text = gettext("%(scope)s: %(left)s of %(capacity)s agents left") % values
        else:
            text = gettext("%(scope)s: %(left)s of %(capacity)s hours left") % values
        return f"{text} ({gettext('full')})" if self.full else text


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:.2f}"


@dataclass(frozen=True)
class DayOutlook:
    day: TimeOffDay
    # The tightest interval of the WFM's staffing the day's time off covers (the agent's team's,
    # else the organisation's); None: the WFM sent none.
    staffing: StaffingInterval | None
    limits: list[LimitLeft]


@dataclass(frozen=True)
class Outlook:
    days: list[DayOutlook]
    balance: Balance
    after: int  # what remains once approved (a pending request takes nothing yet)


def _spans(request: TimeOffRequest, days: list[TimeOffDay]) -> dict[dt.date, tuple[dt.datetime, dt.datetime]]:
    """The time each day takes the agent away: part of a day its own span; a whole day the shift
    it replaces (the staffing that matters is that of the hours the agent would have worked),
    or the local day where nothing is scheduled yet."""
    spans = {day.date: (day.start, day.end) for day in days}
    if request.kind == TimeOffKind.FULL_DAY:
        shifts: dict[dt.date, tuple[dt.datetime, dt.datetime]] = {}
        for date, start, end in (
            Activity.objects.of_agent(request.agent_id)
            .filter(day__date__in=list(spans))
            .values_list("day__date", "start", "end")
        ):
            first, last = shifts.get(date, (start, end))
            shifts[date] = (min(first, start), max(last, end))
        spans.update(shifts)
    return spans


def _staffing(request: TimeOffRequest, days: list[TimeOffDay]) -> dict[dt.date, StaffingInterval | None]:
    agent = request.agent
    spans = _spans(request, days)
    if not spans:
        return {}
    scopes = Q(team__isnull=True) | (Q(team_id=agent.team_id) if agent.team_id is not None else Q(pk__in=[]))
    intervals = list(
        StaffingInterval.objects.filter(
            scopes,
            organization_id=agent.organization_id,
            start__gte=min(start for start, _end in spans.values()) - dt.timedelta(minutes=60),  # the longest
            start__lt=max(end for _start, end in spans.values()),
        )
    )
    found: dict[dt.date, StaffingInterval | None] = {}
    for date, (start, end) in spans.items():
        covered = [
            interval
            for interval in intervals
            if interval.start < end and interval.start + dt.timedelta(minutes=interval.minutes) > start
        ]
        # The team's own staffing says more than the whole organisation's.
        own = [interval for interval in covered if interval.team_id is not None] or covered
        found[date] = min(own, key=lambda i: (i.scheduled - i.required, i.start), default=None)
    return found


def _limits(request: TimeOffRequest, days: list[TimeOffDay]) -> dict[dt.date, list[LimitLeft]]:
    agent = request.agent
    counted = [day for day in days if day.minutes > 0]  # a day off takes no place
    dates = [day.date for day in counted]
    limits = limits_for_days(organization_id=agent.organization_id, team_id=agent.team_id, dates=dates)
    if not limits:
        return {}
    taken = taken_on(
        organization_id=agent.organization_id,
        team_id=agent.team_id,
        dates=dates,
        exclude_request=request.pk,
    )
    minutes = {day.date: day.minutes for day in counted}
    found: dict[dt.date, list[LimitLeft]] = {}
    for (scope, date), limit in sorted(limits.items(), key=lambda item: (item[0][1], item[0][0] or 0)):
        agents, taken_minutes = taken.get((scope, date), (0, 0))
        capacity = Decimal(limit.capacity)
        if limit.unit == LimitUnit.AGENTS:
            left, wanted = capacity - agents, Decimal(1)
        else:
            left, wanted = capacity - Decimal(taken_minutes) / 60, Decimal(minutes[date]) / 60
        name = agent.team.name if scope is not None and agent.team is not None else gettext("organisation")
        found.setdefault(date, []).append(
            LimitLeft(scope=name, unit=limit.unit, capacity=capacity, left=left, wanted=wanted)
        )
    return found


def outlook(request: TimeOffRequest) -> Outlook:
    """What deciding the request meets now, read once per request (and kept on it for the page)."""
    cached = getattr(request, "_outlook", None)
    if cached is not None:
        return cached
    days = list(request.days.all())
    staffing, limits = _staffing(request, days), _limits(request, days)
    today = timezone.now().astimezone(request.agent.zone).date()
    balance = balance_for_code(agent=request.agent, activity_code=request.activity_code, today=today)
    pending = request.status == TimeOffStatus.PENDING
    result = Outlook(
        days=[
            DayOutlook(day=day, staffing=staffing.get(day.date), limits=limits.get(day.date, []))
            for day in days
        ],
        balance=balance,
        after=balance.remaining - request.minutes if pending else balance.remaining,
    )
    request._outlook = result  # type: ignore[attr-defined]
    return result


def _staffing_text(interval: StaffingInterval | None, zone: zoneinfo.ZoneInfo) -> str:
    if interval is None:
        return gettext("no staffing from the WFM")
    return gettext("%(scheduled)d scheduled, %(required)d required at %(time)s") % {
        "scheduled": interval.scheduled,
        "required": interval.required,
        "time": f"{interval.start.astimezone(zone):%H:%M}",
    }


# --- the queue ---------------------------------------------------------------------------------


@admin.register(TimeOffRequest)
class TimeOffRequestAdmin(DecisionQueueAdmin):
    """Time-off requests waiting for a supervisor (waitlisted ones too: a supervisor may approve past
    a full limit, which the columns show), decided only through the approve and deny actions
    (timeoff.services, which write the time off into the schedule and tell the agent)."""

    organization_path = "agent__organization"
    list_display = [
        "agent",
        "team",
        "kind",
        "code",
        "days_text",
        "hours_text",
        "staffing",
        "limit_left",
        "balance",
        "status",
        "waitlist",
        "age",
    ]
    list_filter = [QueueStatusFilter, "kind", "substatus", "activity_code", "agent__team"]
    search_fields = ["agent__name", "agent__user__email"]
    list_select_related = ["agent__user", "agent__team", "agent__organization", "activity_code"]
    list_per_page = 50  # each row reads its staffing, limits and balance
    # The soonest time off first: it is the one that can no longer wait.
    ordering = ["start_date", "created_at"]
    decision_order = ("start_date", "pk")
    decide_template = "admin/timeoff/timeoffrequest/decide.html"
    decision_titles = (_("Approve time-off requests"), _("Deny time-off requests"))
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "agent",
                    "team",
                    "kind",
                    "code",
                    "days_text",
                    "hours_text",
                    "from_intervals",
                    "comment",
                    "created_at",
                ]
            },
        ),
        (
            _("Decision"),
            {
                "fields": [
                    "status",
                    "waitlist",
                    "reason",
                    "decided_by",
                    "decided_by_rule",
                    "decided_at",
                    "cancelled_at",
                ]
            },
        ),
        (_("Each day: staffing and limits"), {"fields": ["day_table"]}),
        (_("The agent's balance"), {"fields": ["balance_table"]}),
    ]
    readonly_fields = [
        "agent",
        "team",
        "kind",
        "code",
        "days_text",
        "hours_text",
        "from_intervals",
        "comment",
        "created_at",
        "status",
        "waitlist",
        "reason",
        "decided_by",
        "decided_by_rule",
        "decided_at",
        "cancelled_at",
        "day_table",
        "balance_table",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("days", queryset=TimeOffDay.objects.order_by("date")))
        )

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "who_is_off_url": reverse("admin:timeoff_timeoffday_changelist"),
            "balances_url": reverse("admin:timeoff_balances"),
        }
        return super().changelist_view(request, extra_context)

    # --- columns and fields

    @admin.display(description=_("team"), ordering="agent__team__name")
    def team(self, obj: TimeOffRequest) -> str:
        return obj.agent.team.name if obj.agent.team is not None else "-"

    @admin.display(description=_("code"), ordering="activity_code__code")
    def code(self, obj: TimeOffRequest) -> str:
        return obj.activity_code.code

    @admin.display(description=_("days"), ordering="start_date")
    def days_text(self, obj: TimeOffRequest) -> str:
        if obj.kind == TimeOffKind.PARTIAL_DAY:
            return f"{date_format(obj.start_date)} {_span(obj.agent.zone, obj.start, obj.end)}"
        if obj.start_date == obj.end_date:
            return date_format(obj.start_date)
        return f"{date_format(obj.start_date)} – {date_format(obj.end_date)}"

    @admin.display(description=_("hours"), ordering="minutes")
    def hours_text(self, obj: TimeOffRequest) -> str:
        return _hours(obj.minutes)

    def _pending(self, obj: TimeOffRequest) -> bool:
        return obj.status == TimeOffStatus.PENDING

    @admin.display(description=_("staffing (tightest interval)"))
    def staffing(self, obj: TimeOffRequest) -> str:
        if not self._pending(obj):
            return "-"
        days = outlook(obj).days
        known = [day for day in days if day.staffing is not None]
        if not known:
            return _staffing_text(None, obj.agent.zone)
        tightest = min(known, key=lambda d: (d.staffing.scheduled - d.staffing.required, d.day.date))  # type: ignore[union-attr]
        text = _staffing_text(tightest.staffing, obj.agent.zone)
        return text if len(days) == 1 else f"{date_format(tightest.day.date, 'SHORT_DATE_FORMAT')}: {text}"

    @admin.display(description=_("limit left"))
    def limit_left(self, obj: TimeOffRequest) -> SafeString | str:
        if not self._pending(obj):
            return "-"
        days = outlook(obj).days
        limited = [(day, limit) for day in days for limit in day.limits]
        if not limited:
            return gettext("no limit")
        day, limit = min(limited, key=lambda pair: (pair[1].left - pair[1].wanted, pair[0].day.date))
        text = (
            limit.text()
            if len(days) == 1
            else f"{date_format(day.day.date, 'SHORT_DATE_FORMAT')}: {limit.text()}"
        )
        return format_html("<strong>{}</strong>", text) if limit.full else text

    @admin.display(description=_("balance"))
    def balance(self, obj: TimeOffRequest) -> SafeString | str:
        if not self._pending(obj):
            return "-"
        seen = outlook(obj)
        text = gettext("%(remaining)s h left, %(after)s h after") % {
            "remaining": hours(seen.balance.remaining),
            "after": hours(seen.after),
        }
        if seen.after < seen.balance.floor:
            return format_html(
                "<strong>{}</strong>",
                text
                + " "
                + gettext("(below the floor of %(floor)s h)") % {"floor": hours(seen.balance.floor)},
            )
        return text

    @admin.display(description=_("waitlist"))
    def waitlist(self, obj: TimeOffRequest) -> str:
        position = waitlist_position(obj)
        return gettext("place %(position)d") % {"position": position} if position is not None else "-"

    @admin.display(description=_("reason"), ordering="status_reason")
    def reason(self, obj: TimeOffRequest) -> str:
        return obj.reason_text()

    @admin.display(description=_("age"), ordering="-created_at")
    def age(self, obj: TimeOffRequest) -> str:
        return timesince(obj.created_at, depth=1)

    @admin.display(description=_("days"))
    def day_table(self, obj: TimeOffRequest) -> SafeString:
        zone = obj.agent.zone
        pending = self._pending(obj)
        rows = []
        for seen in outlook(obj).days if pending else [DayOutlook(d, None, []) for d in obj.days.all()]:
            day = seen.day
            rows.append(
                (
                    date_format(day.date),
                    gettext("whole day")
                    if obj.kind == TimeOffKind.FULL_DAY
                    else _span(zone, day.start, day.end),
                    _hours(day.minutes),
                    _staffing_text(seen.staffing, zone) if pending else "-",
                    ("; ".join(limit.text() for limit in seen.limits) or gettext("no limit"))
                    if pending
                    else "-",
                    reverse("admin:timeoff_timeoffday_changelist") + f"?on={day.date.isoformat()}",
                )
            )
        body = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href="{}">{}</a></td></tr>',
            (row + (gettext("Who is off"),) for row in rows),
        )
        return format_html(
            "<p>{}</p><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>"
            "</thead><tbody>{}</tbody></table>",
            gettext("Times in %(zone)s, the agent's time zone.") % {"zone": obj.agent.timezone},
            gettext("Date"),
            gettext("Time"),
            gettext("Hours"),
            gettext("Staffing (tightest interval)"),
            gettext("Limit left"),
            body,
        )

    @admin.display(description=_("balance"))
    def balance_table(self, obj: TimeOffRequest) -> SafeString:
        today = timezone.now().astimezone(obj.agent.zone).date()
        balance = (
            outlook(obj).balance
            if self._pending(obj)
            else balance_for_code(agent=obj.agent, activity_code=obj.activity_code, today=today)
        )
        adjust = reverse("admin:timeoff_balanceadjustment_add") + (
            f"?agent={obj.agent_id}&activity_code={obj.activity_code_id}"
        )
        return format_html(
            "{}<p><a href='{}'>{}</a></p>",
            _balance_table([balance], after=outlook(obj).after if self._pending(obj) else None),
            adjust,
            gettext("Adjust this balance"),
        )

    # --- the decisions (DecisionQueueAdmin's actions)

    def decide_one(self, obj: TimeOffRequest, *, approve: bool, actor: User, reason: str) -> None:
        decide = time_off_request_approve if approve else time_off_request_deny
        decide(request_id=obj.pk, actor=actor, reason=reason)

    def decision_when(self, obj: TimeOffRequest) -> str:
        return self.days_text(obj)

    def decision_rows(self, chosen: list) -> list[dict]:
        return [
            {
                "request": r,
                "days": self.days_text(r),
                "hours": self.hours_text(r),
                "code": self.code(r),
                "limit_left": self.limit_left(r),
                "balance": self.balance(r),
            }
            for r in chosen
        ]


def _balance_table(balances: list[Balance], *, after: int | None = None) -> SafeString:
    headers = [
        gettext("Code"),
        gettext("Earned"),
        gettext("Used"),
        gettext("Planned"),
        gettext("Pending"),
        gettext("Remaining"),
        gettext("Floor"),
    ]
    if after is not None:
        headers.append(gettext("After this request"))
    rows = []
    for balance in balances:
        cells = [
            f"{balance.activity_code.code} ({balance.activity_code.name})",
            *(
                _hours(value)
                for value in (
                    balance.earned,
                    balance.used,
                    balance.planned,
                    balance.pending,
                    balance.remaining,
                    balance.floor,
                )
            ),
        ]
        if after is not None:
            cells.append(_hours(after))
        rows.append(format_html_join("", "<td>{}</td>", ((cell,) for cell in cells)))
    return format_html(
        "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>",
        format_html_join("", "<th>{}</th>", ((header,) for header in headers)),
        format_html_join("", "<tr>{}</tr>", ((row,) for row in rows)),
    )


# --- balances and their adjustments ------------------------------------------------------------


class BalanceAdjustmentForm(forms.ModelForm):
    hours = forms.DecimalField(
        label=_("hours"),
        max_digits=7,
        decimal_places=2,
        help_text=_("Added to what the agent has earned; negative to take hours off."),
    )
    # Set per request by the admin: what the service refused after the form had validated.
    refusal: ApplicationError | None = None

    class Meta:
        model = BalanceAdjustment
        fields = ["agent", "activity_code", "hours", "reason"]
        widgets = {"reason": forms.Textarea(attrs={"rows": 3, "cols": 60})}

    def clean(self):
        cleaned = super().clean()
        agent, code = cleaned.get("agent"), cleaned.get("activity_code")
        if agent is not None and code is not None and code.organization_id != agent.organization_id:
            self.add_error("activity_code", _("The activity code belongs to another organisation."))
        if self.refusal is not None and not self.errors:
            for field, field_messages in (self.refusal.fields or {}).items():
                for message in field_messages:
                    self.add_error(field if field in self.fields else None, message)
            if not self.refusal.fields:
                self.add_error(None, _explain(self.refusal))
        return cleaned


@admin.register(BalanceAdjustment)
class BalanceAdjustmentAdmin(OrganizationScopedAdmin):
    """Supervisors' corrections of agents' balances: added through `balance_adjust` (who, when, how
    much, why), never changed or deleted (the audit of a balance). The balances page shows every
    agent's balances, each with a link here."""

    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view", "add"})
    form = BalanceAdjustmentForm
    list_display = ["agent", "activity_code", "hours_text", "reason", "made_by", "made_at"]
    list_filter = ["agent", "activity_code", "agent__team"]
    search_fields = ["agent__name", "agent__user__email", "reason"]
    list_select_related = ["agent", "activity_code", "made_by"]
    autocomplete_fields = ["agent"]
    change_form_template = "admin/timeoff/balanceadjustment/change_form.html"
    change_list_template = "admin/timeoff/balanceadjustment/change_list.html"

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return ["agent", "activity_code", "hours_text", "reason", "made_by", "made_at"] if obj else []

    def get_fields(self, request: HttpRequest, obj=None):
        return (
            self.get_readonly_fields(request, obj) if obj else ["agent", "activity_code", "hours", "reason"]
        )

    @admin.display(description=_("hours"), ordering="minutes")
    def hours_text(self, adjustment: BalanceAdjustment) -> str:
        sign = "+" if adjustment.minutes > 0 else ""
        return f"{sign}{hours(adjustment.minutes)}"

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if db_field.name == "activity_code":
            # Codes of time off, or that some agent has a balance of (one closed to requests now).
            codes = ActivityCode.objects.filter(
                Q(open_for_time_off=True)
                | Q(category=ActivityCategory.TIME_OFF)
                | Q(time_off_balances__isnull=False)
            )
            if is_supervisor(request):
                codes = codes.filter(organization_id=cast(int, organization_of(request)))
            kwargs["queryset"] = codes.order_by("code").distinct()
            return super(OrganizationScopedAdmin, self).formfield_for_foreignkey(db_field, request, **kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.refusal = getattr(request, "balance_refusal", None)  # type: ignore[attr-defined]
        return form

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None):
        agent = self._agent(request, request.GET.get("agent") or request.POST.get("agent"))
        if agent is not None:
            today = timezone.now().astimezone(agent.zone).date()
            extra_context = {
                **(extra_context or {}),
                "balance_agent": agent,
                "balance_table": _balance_table(balances_for_agent(agent=agent, today=today)),
            }
        return super().add_view(request, form_url, extra_context)

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as refusal:
            # The service refused after the form had validated (the admin's transaction is rolled
            # back): the same page again, input kept, with the refusal on its fields.
            request.balance_refusal = refusal  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: BalanceAdjustment, form, change: bool) -> None:
        saved = balance_adjust(
            agent=form.cleaned_data["agent"],
            activity_code=form.cleaned_data["activity_code"],
            hours=form.cleaned_data["hours"],
            reason=form.cleaned_data["reason"],
            by=_actor(request),
        )
        obj.pk, obj.minutes, obj.made_by, obj.made_at = saved.pk, saved.minutes, saved.made_by, saved.made_at

    def response_add(self, request: HttpRequest, obj: BalanceAdjustment, post_url_continue=None):
        self.message_user(
            request,
            gettext("%(agent)s's balance of %(code)s changed by %(hours)s hours.")
            % {"agent": obj.agent.name, "code": obj.activity_code.code, "hours": self.hours_text(obj)},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:timeoff_balances") + f"?agent={obj.agent_id}")

    # --- the balances page

    def _agents(self, request: HttpRequest) -> QuerySet[Agent]:
        agents = Agent.objects.select_related("team", "organization").order_by("name", "pk")
        if request.user.is_superuser:
            return agents
        if is_supervisor(request):
            return agents.filter(organization_id=cast(int, organization_of(request)))
        return agents.none()

    def _agent(self, request: HttpRequest, agent_id: str | None) -> Agent | None:
        if not agent_id or not str(agent_id).isdigit():
            return None
        return self._agents(request).filter(pk=int(agent_id)).first()

    def get_urls(self):
        return [
            path("balances/", self.admin_site.admin_view(self.balances_view), name="timeoff_balances"),
            *super().get_urls(),
        ]

    def balances_view(self, request: HttpRequest) -> TemplateResponse:
        """Each agent's balance of every time-off code (earned, used, planned, pending, remaining),
        a team's or one agent's, with a link to adjust each."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        agents = self._agents(request)
        teams = Team.objects.filter(pk__in=agents.exclude(team=None).values("team")).order_by("name")
        team_id = request.GET.get("team", "")
        if team_id.isdigit():
            agents = agents.filter(team_id=int(team_id))
        one = self._agent(request, request.GET.get("agent"))
        if one is not None:
            agents = agents.filter(pk=one.pk)
        query = request.GET.get("q", "").strip()[:100]
        if query:
            agents = agents.filter(name__icontains=query)
        page = Paginator(agents, 25).get_page(request.GET.get("p"))
        add_url = reverse("admin:timeoff_balanceadjustment_add")
        history_url = reverse("admin:timeoff_balanceadjustment_changelist")
        rows = []
        for agent in page:
            today = timezone.now().astimezone(agent.zone).date()
            for balance in balances_for_agent(agent=agent, today=today):
                rows.append(
                    {
                        "agent": agent,
                        "balance": balance,
                        "cells": [
                            _hours(value)
                            for value in (
                                balance.earned,
                                balance.used,
                                balance.planned,
                                balance.pending,
                                balance.remaining,
                                balance.floor,
                            )
                        ],
                        "adjust_url": f"{add_url}?agent={agent.pk}&activity_code={balance.activity_code.pk}",
                        "history_url": f"{history_url}?agent__id__exact={agent.pk}"
                        f"&activity_code__id__exact={balance.activity_code.pk}",
                    }
                )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Time-off balances"),
            "opts": self.model._meta,
            "rows": rows,
            "page": page,
            "teams": teams,
            "team_id": team_id,
            "query": query,
            "agent": one,
            "may_adjust": self.has_add_permission(request),
        }
        return TemplateResponse(request, "admin/timeoff/balances.html", context)


# --- what supervisors configure --------------------------------------------------------------------


class TimeOffLimitForm(forms.ModelForm):
    # No Meta: the admin builds it with every field of the model.

    def clean(self):
        cleaned = super().clean()
        team = cleaned.get("team")
        # On a change the organisation is read-only (not in the form): the limit's own.
        organization = cleaned.get("organization") or (
            self.instance.organization if self.instance.organization_id else None
        )
        if organization is None:
            return cleaned
        if team is not None and team.organization_id != organization.pk:
            self.add_error("team", _("The team belongs to another organisation."))
            return cleaned
        clash = TimeOffLimit.objects.filter(organization=organization, team=team, date=cleaned.get("date"))
        if self.instance.pk is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            # On the field the clashing constraint is about, so it is said here in words and not
            # again by the constraint's name (a field in error is left out of constraint checks).
            field = "date" if cleaned.get("date") else ("team" if team is not None else "organization")
            self.add_error(field, _("There is such a limit already: change that one."))
        return cleaned


@admin.register(TimeOffLimit)
class TimeOffLimitAdmin(OrganizationConfigAdmin):
    """How much time off a day allows. Saved through `time_off_limit_save`: one raised (or new, or
    removed) lets the waitlisted requests of its days be decided again."""

    organization_path = "organization"
    supervisor_actions = frozenset({"view", "change", "add", "delete"})
    form = TimeOffLimitForm
    list_display = ["scope", "day", "unit", "capacity", "organization"]
    list_filter = ["organization", "team", "unit"]
    list_select_related = ["organization", "team"]
    ordering = ["organization", "team__name", "date"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "organization"] if obj is not None else fields  # a limit stays with its organisation

    @admin.display(description=_("for"), ordering="team__name")
    def scope(self, limit: TimeOffLimit) -> str:
        return limit.team.name if limit.team is not None else gettext("the whole organisation")

    @admin.display(description=_("date"), ordering="date")
    def day(self, limit: TimeOffLimit) -> str:
        return date_format(limit.date) if limit.date else gettext("every other date (default)")

    def save_model(self, request: HttpRequest, obj: TimeOffLimit, form, change: bool) -> None:
        time_off_limit_save(limit=obj, by=_actor(request))

    def delete_model(self, request: HttpRequest, obj: TimeOffLimit) -> None:
        time_off_limit_delete(limit=obj, by=_actor(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for limit in queryset.select_related("organization"):
            time_off_limit_delete(limit=limit, by=_actor(request))


class TimeOffPolicyForm(forms.ModelForm):
    # No Meta: the admin builds it with every field of the model.

    def clean(self):
        cleaned = super().clean()
        organization, code = cleaned.get("organization"), cleaned.get("activity_code")
        if organization is not None and code is not None and code.organization_id != organization.pk:
            self.add_error("activity_code", _("The activity code belongs to another organisation."))
        return cleaned


@admin.register(TimeOffPolicy)
class TimeOffPolicyAdmin(OrganizationConfigAdmin):
    """Per time-off code: how low a balance may go, and the accrual rule for agents the WFM sends no
    balance of it for."""

    organization_path = "organization"
    supervisor_actions = frozenset({"view", "change", "add", "delete"})
    form = TimeOffPolicyForm
    list_display = [
        "activity_code",
        "floor_hours",
        "accrual_hours_per_month",
        "accrual_start",
        "starting_hours",
        "carry_over_cap_hours",
        "organization",
    ]
    list_filter = ["organization"]
    list_select_related = ["organization", "activity_code"]


@admin.register(TimeOffSettings)
class TimeOffSettingsAdmin(OrganizationConfigAdmin):
    """The organisation's default hours per weekday (a day the WFM has not published) and the
    interval self-service margins; an organisation without a row has the defaults."""

    organization_path = "organization"
    supervisor_actions = frozenset({"view", "change", "add"})
    list_display = [
        "organization",
        "monday_hours",
        "tuesday_hours",
        "wednesday_hours",
        "thursday_hours",
        "friday_hours",
        "saturday_hours",
        "sunday_hours",
        "day_start",
        "interval_auto_margin",
        "interval_approval_margin",
    ]
    list_select_related = ["organization"]
    fieldsets = [
        (None, {"fields": ["organization"]}),
        (
            _("Hours a whole day counts before the WFM publishes it"),
            {
                "fields": [
                    "monday_hours",
                    "tuesday_hours",
                    "wednesday_hours",
                    "thursday_hours",
                    "friday_hours",
                    "saturday_hours",
                    "sunday_hours",
                    "day_start",
                ]
            },
        ),
        (_("Interval self-service"), {"fields": ["interval_auto_margin", "interval_approval_margin"]}),
    ]


# --- who is off ----------------------------------------------------------------------------------


class OffOnFilter(DefaultChoiceFilter):
    """One date at a time, today (the organisation's) unless another is chosen; any date can be
    asked for as ?on=YYYY-MM-DD."""

    title = _("date")
    parameter_name = "on"
    DAYS_SHOWN = 14

    def _today(self, request: HttpRequest) -> dt.date:
        return timezone.now().astimezone(_organization_zone(request)).date()

    def lookups(self, request, model_admin):
        today = self._today(request)
        self.default = today.isoformat()
        choices = []
        for offset in range(self.DAYS_SHOWN):
            date = today + dt.timedelta(days=offset)
            label = date_format(date, "D j M")
            if offset == 0:
                label = gettext("Today (%(date)s)") % {"date": label}
            elif offset == 1:
                label = gettext("Tomorrow (%(date)s)") % {"date": label}
            choices.append((date.isoformat(), label))
        value = self.value()
        if value and value != self.ALL and value not in dict(choices):
            chosen = self._date(value)
            choices.insert(0, (value, date_format(chosen)))
        return [*choices, (self.ALL, _("All dates"))]

    def _date(self, value: str) -> dt.date:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise IncorrectLookupParameters(value) from None

    def filtered(self, queryset, value: str):
        return queryset.filter(date=self._date(value))


@admin.register(TimeOffDay)
class WhoIsOffAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    """Who is off: the approved time off of a date, per team (days off, which count no hours, are
    not time off taken)."""

    organization_path = "organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["agent", "team", "code", "local_times", "hours_text", "request_link"]
    list_filter = [OffOnFilter, "agent__team", "request__activity_code"]
    search_fields = ["agent__name", "agent__user__email"]
    list_select_related = ["agent__team", "request__activity_code"]
    ordering = ["date", "agent__team__name", "agent__name", "start"]
    fields = ["agent", "team", "date", "code", "local_times", "hours_text", "request_link"]
    readonly_fields = ["agent", "team", "date", "code", "local_times", "hours_text", "request_link"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).filter(request__status=TimeOffStatus.APPROVED, minutes__gt=0)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), "title": gettext("Who is off")})

    @admin.display(description=_("team"), ordering="agent__team__name")
    def team(self, day: TimeOffDay) -> str:
        return day.agent.team.name if day.agent.team is not None else "-"

    @admin.display(description=_("code"))
    def code(self, day: TimeOffDay) -> str:
        return day.request.activity_code.code

    @admin.display(description=_("time (agent's zone)"), ordering="start")
    def local_times(self, day: TimeOffDay) -> str:
        if day.request.kind == TimeOffKind.FULL_DAY:
            return gettext("whole day")
        return _span(day.agent.zone, day.start, day.end)

    @admin.display(description=_("hours"), ordering="minutes")
    def hours_text(self, day: TimeOffDay) -> str:
        return _hours(day.minutes)

    @admin.display(description=_("request"))
    def request_link(self, day: TimeOffDay) -> SafeString:
        url = reverse("admin:timeoff_timeoffrequest_change", args=[day.request_id])
        return format_html('<a href="{}">{}</a>', url, gettext("Request %(id)d") % {"id": day.request_id})


# --- what the WFM exports and IEX absences: read-only -------------------------------------------


@admin.register(AbsenceRequest)
class AbsenceRequestAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    """IEX absences as the agents sent them: the supervisor records them in the WFM, not here."""

    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["agent", "date", "exception_code", "full_day", "start", "end", "status", "created_at"]
    list_filter = ["status", "full_day", "date"]
    search_fields = ["agent__name", "agent__user__email"]
    date_hierarchy = "date"
    list_select_related = ["agent", "exception_code"]
    readonly_fields = [
        "agent",
        "date",
        "exception_code",
        "full_day",
        "start",
        "end",
        "comment",
        "status",
        "created_at",
    ]


@admin.register(TimeOffBalance)
class TimeOffBalanceAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    """Earned balances as the WFM's export last counted them: the next sync would overwrite a change
    (a correction is a balance adjustment, which stays)."""

    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["agent", "activity_code", "earned_hours", "as_of", "updated_at"]
    list_filter = ["activity_code", "as_of"]
    search_fields = ["agent__name", "agent__external_id", "agent__user__email"]
    list_select_related = ["agent", "activity_code"]
    readonly_fields = ["agent", "activity_code", "earned_minutes", "earned_hours", "as_of", "updated_at"]

    @admin.display(description=_("earned hours"), ordering="earned_minutes")
    def earned_hours(self, balance: TimeOffBalance) -> str:
        return f"{balance.earned_minutes / 60:.2f}"


@admin.register(StaffingInterval)
class StaffingIntervalAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    """The WFM's interval staffing, by team (none: the whole organisation), as its export last had it."""

    organization_path = "organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["local_start", "team", "minutes", "required", "scheduled", "surplus", "updated_at"]
    list_filter = ["team", "minutes"]
    date_hierarchy = "start"
    list_select_related = ["organization", "team"]
    readonly_fields = [
        "organization",
        "team",
        "start",
        "local_start",
        "minutes",
        "required",
        "scheduled",
        "updated_at",
    ]

    @admin.display(description=_("start (organisation's time zone)"), ordering="start")
    def local_start(self, interval: StaffingInterval) -> str:
        # Supervisors plan in the organisation's wall time, as the export wrote it; UTC is for the database.
        local = interval.start.astimezone(zoneinfo.ZoneInfo(interval.organization.default_timezone))
        return f"{local:%Y-%m-%d %H:%M %Z}"

    @admin.display(description=_("scheduled - required"))
    def surplus(self, interval: StaffingInterval) -> int:
        return interval.scheduled - interval.required
