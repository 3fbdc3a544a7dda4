"""Supervisors' schedule work: the queue of schedule requests (approve or deny, one at a time or in
bulk), the agents' days (edited through `schedule_days_apply`, so each change is journalled and the
agent told), and the organisation's activity codes, approval rules and blackout periods. Scoping to
the supervisor's organisation is OrganizationScopedAdmin's."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from em_agent.admin_scoping import OrganizationScopedAdmin, RecordAdminMixin, is_supervisor, organization_of
from em_agent.exceptions import ApplicationError
from em_agent.localtime import NonexistentLocalTime, local_datetime
from em_agent.models import User
from schedules.models import (
    Activity,
    ActivityCode,
    ActivitySource,
    ApprovalRule,
    BlackoutPeriod,
    CalendarFeed,
    RequestAction,
    RequestStatus,
    ScheduleChange,
    ScheduleDay,
    ScheduleRequest,
)
from schedules.requests import schedule_request_approve, schedule_request_deny
from schedules.services import ActivitySpec, DayPlan, schedule_days_apply

# What an approval refused because the day moved on since the request was made.
NO_LONGER_FITS = frozenset({"schedule_changed", "overlap", "validation_error"})


def _actor(request: HttpRequest) -> User:
    return cast(User, request.user)


def _explain(error: ApplicationError) -> str:
    """What the service said; a validation error's own detail is generic, its field messages are not."""
    if error.fields:
        return " ".join(message for field_messages in error.fields.values() for message in field_messages)
    return error.detail


def _span(zone: zoneinfo.ZoneInfo, start: dt.datetime, end: dt.datetime) -> str:
    """Wall-clock times in the zone; "+1" when the end falls on a later local day (a night shift)."""
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    text = f"{local_start:%H:%M}–{local_end:%H:%M}"
    days_later = (local_end.date() - local_start.date()).days
    return f"{text} (+{days_later})" if days_later else text


# --- the queue of schedule requests ------------------------------------------------------------


class DefaultChoiceFilter(admin.SimpleListFilter):
    """A filter that opens on one choice (`default`), not on everything, with "All" as one more
    choice: a queue opens on what waits. Subclasses say how a chosen value filters (`filtered`)."""

    ALL = "all"
    default: str = ""

    def filtered(self, queryset, value: str):
        raise NotImplementedError

    def _current(self) -> str:
        return self.value() or self.default

    def choices(self, changelist):
        for value, label in self.lookup_choices:
            yield {
                "selected": self._current() == value,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request, queryset):
        current = self._current()
        return queryset if current == self.ALL else self.filtered(queryset, current)


class QueueStatusFilter(DefaultChoiceFilter):
    """The queue opens on what waits for a decision; "All" shows the decided ones too."""

    title = _("status")
    parameter_name = "status"
    default: str = RequestStatus.PENDING

    def lookups(self, request, model_admin):
        # The queue's own statuses: time off has "cancelled" beside the shared ones.
        return [*model_admin.model._meta.get_field("status").choices, (self.ALL, _("All"))]

    def filtered(self, queryset, value: str):
        return queryset.filter(status=value)


class DecisionForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )

    def __init__(self, *args, approve: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["reason"]
        field.required = not approve  # a denied agent is owed an explanation
        field.help_text = (
            _("Optional; kept with the decision.")
            if approve
            else _("Required; the agent reads it in the notification.")
        )


class DecisionQueueAdmin(OrganizationScopedAdmin):
    """A queue of requests a supervisor decides (schedule requests; time off in timeoff/admin.py):
    approve and deny actions, one at a time or in bulk, with a reason asked on a page of its own,
    each request decided by its type's service (which applies the change and tells the agent) and
    what it refused said as a message. A subclass says how to decide one (`decide_one`) and how a
    request reads in those messages and on that page; its pages are read-only."""

    supervisor_actions = frozenset({"view", "change"})
    actions = ["approve_selected", "deny_selected"]
    change_form_template = "admin/schedules/schedulerequest/change_form.html"
    decide_template: str  # the reason page, reading `decision_rows`
    decision_titles: tuple[str | Promise, str | Promise]  # its title when approving, when denying
    # The order the chosen requests are decided in (and listed on the reason page).
    decision_order: tuple[str, ...] = ("pk",)

    def decide_one(self, obj, *, approve: bool, actor: User, reason: str) -> None:
        raise NotImplementedError

    def decision_when(self, obj) -> str:
        """The request's day or days, as the messages name them."""
        raise NotImplementedError

    def decision_rows(self, chosen: list) -> list[dict]:
        """The reason page's rows (`decide_template` reads them)."""
        raise NotImplementedError

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # agents make requests, through the app

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # The model-level permission is the right to decide (the actions); no request is ever edited
        # as a form, which could also overwrite a decision someone else has just taken.
        return obj is None and super().has_change_permission(request)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context=None):
        extra_context = {**(extra_context or {}), "may_decide": self.has_change_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # Each queue names what waits in the others (time off beside schedule requests), so a
        # supervisor working through one does not miss the rest; counted in the same scoping.
        waiting = [
            (reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"), count, model)
            for model, queue in self.admin_site._registry.items()
            if isinstance(queue, DecisionQueueAdmin)
            and queue is not self
            and queue.has_view_permission(request)
            and (count := queue.get_queryset(request).filter(status=RequestStatus.PENDING).count())
        ]
        if waiting:
            links = format_html_join(
                ", ",
                '<a href="{}">{} {}</a>',
                (
                    (url, count, model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural)
                    for url, count, model in sorted(waiting, key=lambda item: item[0])
                ),
            )
            extra_context = {
                **(extra_context or {}),
                "subtitle": format_html("{} {}", gettext("Also pending:"), links),
            }
        return super().changelist_view(request, extra_context)

    # --- the decisions

    @admin.action(description=_("Approve selected"), permissions=["change"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet):
        return self._decide(request, queryset, approve=True)

    @admin.action(description=_("Deny selected"), permissions=["change"])
    def deny_selected(self, request: HttpRequest, queryset: QuerySet):
        return self._decide(request, queryset, approve=False)

    def _chosen(self, request: HttpRequest, queryset: QuerySet) -> list:
        """The ticked requests within the supervisor's reach, whatever the queue's filter shows now: one
        that someone else decided meanwhile is then reported as such, not dropped without a word."""
        ids: QuerySet | list[str]
        if request.POST.get("select_across") == "1":
            ids = queryset.values("pk")
        else:
            ids = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        return list(
            self.get_queryset(request)
            .filter(pk__in=ids)
            .select_related(*cast(list[str], self.list_select_related))
            .order_by(*self.decision_order)
        )

    def _decide(self, request: HttpRequest, queryset: QuerySet, *, approve: bool):
        chosen = self._chosen(request, queryset)
        if not chosen:
            self.message_user(request, gettext("No request was selected."), messages.WARNING)
            return None
        form = DecisionForm(request.POST if "apply" in request.POST else None, approve=approve)
        if not form.is_valid():
            return self._decision_page(request, chosen, form, approve=approve)

        done = not_pending = 0
        refused: ApplicationError | None = None
        refused_count = 0
        for chosen_request in chosen:
            # One transaction per request (the service's): one that no longer fits fails alone.
            try:
                self.decide_one(
                    chosen_request, approve=approve, actor=_actor(request), reason=form.cleaned_data["reason"]
                )
            except ApplicationError as error:
                if error.code == "not_pending":
                    not_pending += 1
                    continue
                if error.code == "permission_denied":
                    # The service's own check behind the queue's scoping (which should have kept the
                    # request out): nothing was decided, said once in the service's words.
                    refused, refused_count = error, refused_count + 1
                    continue
                template = (
                    gettext("The request of %(agent)s for %(date)s no longer fits the schedule: %(detail)s")
                    if error.code in NO_LONGER_FITS
                    else gettext("The request of %(agent)s for %(date)s could not be decided: %(detail)s")
                )
                self.message_user(
                    request,
                    template
                    % {
                        "agent": chosen_request.agent.name,
                        "date": self.decision_when(chosen_request),
                        "detail": _explain(error),
                    },
                    messages.ERROR,
                )
            else:
                done += 1
        if done:
            text = (
                ngettext("%(count)d request approved.", "%(count)d requests approved.", done)
                if approve
                else ngettext("%(count)d request denied.", "%(count)d requests denied.", done)
            )
            self.message_user(request, text % {"count": done}, messages.SUCCESS)
        if not_pending:
            self.message_user(
                request,
                ngettext(
                    "%(count)d request was not pending any more: it had been decided or withdrawn.",
                    "%(count)d requests were not pending any more: they had been decided or withdrawn.",
                    not_pending,
                )
                % {"count": not_pending},
                messages.WARNING,
            )
        if refused is not None:
            self.message_user(
                request,
                ngettext(
                    "%(count)d request was not decided: %(detail)s",
                    "%(count)d requests were not decided: %(detail)s",
                    refused_count,
                )
                % {"count": refused_count, "detail": refused.detail},
                messages.ERROR,
            )
        return None

    def _decision_page(
        self, request: HttpRequest, chosen: list, form: DecisionForm, *, approve: bool
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": self.decision_titles[0] if approve else self.decision_titles[1],
            "submit_label": gettext("Approve") if approve else gettext("Deny"),
            "opts": self.model._meta,
            "rows": self.decision_rows(chosen),
            "form": form,
            "action": "approve_selected" if approve else "deny_selected",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, self.decide_template, context)


@admin.register(ScheduleRequest)
class ScheduleRequestAdmin(DecisionQueueAdmin):
    """The supervisor's queue. A request is decided only through the approve and deny actions (the
    services, which apply the change and tell the agent); its page is read-only."""

    organization_path = "agent__organization"
    list_display = ["agent", "action", "day", "code", "local_times", "status", "reason", "age"]
    list_filter = [QueueStatusFilter, "action", "date", "agent__team"]
    search_fields = ["agent__name", "agent__user__email"]
    list_select_related = ["agent__user", "activity_code", "activity__activity_code"]
    # The soonest day first: it is the one that can no longer wait.
    ordering = ["date", "created_at"]
    decision_order = ("date", "pk")
    decide_template = "admin/schedules/schedulerequest/decide.html"
    decision_titles = (_("Approve schedule requests"), _("Deny schedule requests"))
    fieldsets = [
        (None, {"fields": ["agent", "action", "day", "code", "local_times", "comment", "created_at"]}),
        (
            _("Decision"),
            {"fields": ["status", "status_reason", "decided_by", "decided_by_rule", "decided_at", "change"]},
        ),
        (_("The agent's schedule that day"), {"fields": ["day_schedule"]}),
    ]
    readonly_fields = [
        "agent",
        "action",
        "day",
        "code",
        "local_times",
        "comment",
        "created_at",
        "status",
        "status_reason",
        "decided_by",
        "decided_by_rule",
        "decided_at",
        "change",
        "day_schedule",
    ]

    # --- columns and fields

    @admin.display(description=_("day"), ordering="date")
    def day(self, obj: ScheduleRequest) -> str:
        return date_format(obj.date)

    @admin.display(description=_("code"))
    def code(self, obj: ScheduleRequest) -> str:
        code = obj.activity_code or (obj.activity.activity_code if obj.activity else None)
        return code.code if code is not None else "-"

    @admin.display(description=_("time (agent's zone)"))
    def local_times(self, obj: ScheduleRequest) -> str:
        start, end = obj.start, obj.end
        if start is None and obj.activity is not None:  # a cancellation: the activity's own times
            start, end = obj.activity.start, obj.activity.end
        if start is None or end is None:
            return "-"
        return _span(obj.agent.zone, start, end)

    @admin.display(description=_("reason"), ordering="status_reason")
    def reason(self, obj: ScheduleRequest) -> str:
        return obj.reason_text()

    @admin.display(description=_("age"), ordering="-created_at")
    def age(self, obj: ScheduleRequest) -> str:
        return timesince(obj.created_at, depth=1)

    @admin.display(description=_("schedule"))
    def day_schedule(self, obj: ScheduleRequest) -> SafeString:
        agent, zone = obj.agent, obj.agent.zone
        day = ScheduleDay.objects.filter(agent=agent, date=obj.date).first()
        activities = (
            Activity.objects.of_agent(agent.pk)
            .filter(day__date=obj.date)
            .select_related("activity_code")
            .order_by("start")
        )
        marks: dict[str, str] = {
            RequestAction.EDIT: gettext("to be replaced"),
            RequestAction.CANCEL: gettext("to be cancelled"),
        }
        rows = [
            (
                a.start,
                a.activity_code.code,
                a.activity_code.name,
                _span(zone, a.start, a.end),
                a.note,
                a.get_source_display(),
                marks.get(obj.action, "") if a.pk == obj.activity_id else "",
            )
            for a in activities
        ]
        if obj.activity_code is not None and obj.start is not None and obj.end is not None:
            rows.append(
                (
                    obj.start,
                    obj.activity_code.code,
                    obj.activity_code.name,
                    _span(zone, obj.start, obj.end),
                    obj.comment,
                    str(ActivitySource.REQUEST.label),
                    gettext("requested"),
                )
            )
        rows.sort(key=lambda row: row[0])
        if day is None:
            state = gettext("No schedule for this day.")
        elif day.published:
            state = gettext("Published.")
        else:
            state = gettext("Not published.")
        summary = format_html(
            "<p>{} {}</p>",
            state,
            gettext("Times in %(zone)s, the agent's time zone.") % {"zone": agent.timezone},
        )
        if day is not None and day.note:
            summary += format_html("<p>{}: {}</p>", gettext("Day note"), day.note)
        if rows:
            body = format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><strong>{}</strong></td></tr>",
                (row[1:] for row in rows),
            )
        else:
            body = format_html('<tr><td colspan="6">{}</td></tr>', gettext("No activities."))
        return format_html(
            "{}<table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            summary,
            gettext("Code"),
            gettext("Name"),
            gettext("Time"),
            gettext("Note"),
            gettext("Source"),
            gettext("This request"),
            body,
        )

    # --- the decisions

    def decide_one(self, obj: ScheduleRequest, *, approve: bool, actor: User, reason: str) -> None:
        decide = schedule_request_approve if approve else schedule_request_deny
        decide(request_id=obj.pk, actor=actor, reason=reason)

    def decision_when(self, obj: ScheduleRequest) -> str:
        return date_format(obj.date)

    def decision_rows(self, chosen: list) -> list[dict]:
        return [
            {"request": r, "day": self.day(r), "code": self.code(r), "times": self.local_times(r)}
            for r in chosen
        ]


# --- the agents' days ----------------------------------------------------------------------------


def _local(date: dt.date, time: dt.time, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    try:
        # A time the clocks repeat is its first occurrence: the form has no way to say which.
        return local_datetime(date, time, zone)
    except NonexistentLocalTime:
        # Refused rather than moved: the supervisor meant a time that does not happen that day.
        raise ValidationError(
            _("%(time)s does not exist on %(date)s in %(zone)s (the clocks go forward)."),
            params={"time": time.strftime("%H:%M"), "date": date_format(date), "zone": zone.key},
        ) from None


TIME_HELP = _("In the agent's time zone. An end at or before the start is on the next day.")


class ActivityForm(forms.ModelForm):
    """An activity as wall-clock times of the day in the agent's zone: it starts on the day's local
    date by construction, whatever zone the supervisor is in."""

    local_start = forms.TimeField(
        label=_("start"), help_text=TIME_HELP, widget=forms.TimeInput(format="%H:%M", attrs={"size": 6})
    )
    local_end = forms.TimeField(
        label=_("end"), help_text=TIME_HELP, widget=forms.TimeInput(format="%H:%M", attrs={"size": 6})
    )

    class Meta:
        model = Activity
        fields = ["activity_code", "note"]
        widgets = {"note": forms.TextInput(attrs={"size": 40})}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            zone = self.instance.agent.zone
            self.initial["local_start"] = self.instance.start.astimezone(zone).time()
            self.initial["local_end"] = self.instance.end.astimezone(zone).time()


class ActivityFormSet(forms.BaseInlineFormSet):
    """Turns the rows into the day's complete activity list, which the admin hands to
    `schedule_days_apply` as one DayPlan; no row is ever saved on its own."""

    def __init__(self, *args, refusal: ApplicationError | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refusal = refusal
        self.specs: list[ActivitySpec] = []

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        day: ScheduleDay = self.instance
        if day.agent_id is None or day.date is None:
            return  # the day's own fields are in error; they say so
        if self.refusal is not None:
            raise ValidationError(_explain(self.refusal))
        zone = day.agent.zone
        specs = []
        for form in self.forms:
            existing = form.instance if form.instance.pk else None
            if (self.can_delete and form.cleaned_data.get("DELETE", False)) or (
                existing is None and not form.has_changed()
            ):
                continue
            data = form.cleaned_data
            if existing is not None and not {"local_start", "local_end"} & set(form.changed_data):
                # Untouched times stay the very instants they were (an hour the clocks repeat
                # would otherwise come back as its first occurrence).
                start, end = existing.start, existing.end
            else:
                start = _local(day.date, data["local_start"], zone)
                end = _local(day.date, data["local_end"], zone)
                if end <= start:
                    end = _local(day.date + dt.timedelta(days=1), data["local_end"], zone)
            # An untouched row keeps its origin (the WFM's, a request's); what the supervisor wrote is theirs.
            unchanged = existing is not None and not form.has_changed()
            specs.append(
                ActivitySpec(
                    activity_code_id=data["activity_code"].pk,
                    start=start,
                    end=end,
                    note=data["note"],
                    source=existing.source
                    if existing is not None and unchanged
                    else ActivitySource.SUPERVISOR,
                    id=existing.pk if existing is not None else None,
                )
            )
        self.specs = specs


class ActivityInline(admin.TabularInline):
    model = Activity
    form = ActivityForm
    formset = ActivityFormSet
    fields = ["activity_code", "local_start", "local_end", "note", "origin"]
    readonly_fields = ["origin"]
    extra = 1
    verbose_name = _("activity")
    verbose_name_plural = _("activities")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("agent", "activity_code")

    def get_formset(self, request: HttpRequest, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        # Inlines are not OrganizationScopedAdmins: the codes offered are the day's organisation's
        # (a new day's: the supervisor's; a superuser's new day: any, the service checks the agent's).
        organization_id = obj.agent.organization_id if obj is not None else organization_of(request)
        codes = ActivityCode.objects.order_by("code")
        if organization_id is not None:
            codes = codes.filter(organization_id=organization_id)
        cast(forms.ModelChoiceField, formset.form.base_fields["activity_code"]).queryset = codes
        return formset

    @admin.display(description=_("source"))
    def origin(self, activity: Activity) -> str:
        return activity.get_source_display() if activity.pk else "-"

    # The day's admin has scoped the day already; its activities go with it.
    def _may(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or is_supervisor(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request)

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._may(request)


class ScheduleDayForm(forms.ModelForm):
    # When the page was loaded: the service refuses the save if the day changed since (an approved
    # request, the sync), rather than silently putting back what the page showed.
    loaded_updated_at = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["loaded_updated_at"].initial = self.instance.updated_at.isoformat()

    def clean_loaded_updated_at(self) -> dt.datetime | None:
        value = self.cleaned_data.get("loaded_updated_at")
        try:
            return dt.datetime.fromisoformat(value) if value else None
        except ValueError:
            raise forms.ValidationError(_("Reload the page and try again.")) from None


@admin.register(ScheduleDay)
class ScheduleDayAdmin(OrganizationScopedAdmin):
    """An agent's day, edited as a whole: the note, the published flag and every activity become one
    DayPlan for `schedule_days_apply` (source "supervisor"), which validates, journals and tells the
    agent. What it refuses comes back on the page, and nothing is saved."""

    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view", "change", "add"})
    list_display = ["agent", "date", "published", "short_note", "activity_count"]
    list_filter = ["published", "date", "agent__team"]
    search_fields = ["agent__name", "agent__user__email"]
    list_select_related = ["agent__user"]
    ordering = ["date", "agent__name"]
    autocomplete_fields = ["agent"]
    form = ScheduleDayForm
    fields = ["agent", "date", "agent_time_zone", "published", "note", "updated_at", "loaded_updated_at"]
    readonly_fields = ["agent_time_zone", "updated_at"]
    inlines = [ActivityInline]
    change_form_template = "admin/schedules/scheduleday/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).annotate(activity_count=Count("activities"))

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields += ["agent", "date"]  # another agent or day is another day
        return fields

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a day is emptied through its activities (the service), never deleted

    @admin.display(description=_("note"))
    def short_note(self, day: ScheduleDay) -> str:
        return day.note[:60]

    @admin.display(description=_("activities"), ordering="activity_count")
    def activity_count(self, day: ScheduleDay) -> int:
        return getattr(day, "activity_count", 0)

    @admin.display(description=_("agent's time zone"))
    def agent_time_zone(self, day: ScheduleDay) -> str:
        return day.agent.timezone if day.agent_id else "-"

    def changeform_view(self, request: HttpRequest, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as refusal:
            # The service refused the day after the forms had validated; the admin's transaction is
            # rolled back. The same page again, input kept, with the refusal on the activities.
            request.schedule_day_refusal = refusal  # type: ignore[attr-defined]
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_formset_kwargs(self, request: HttpRequest, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if request.method == "POST":
            kwargs["refusal"] = getattr(request, "schedule_day_refusal", None)
        return kwargs

    def save_model(self, request: HttpRequest, obj: ScheduleDay, form, change: bool) -> None:
        pass  # written by the service in save_related, with its activities

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        day: ScheduleDay = form.instance
        specs = next(formset.specs for formset in formsets if isinstance(formset, ActivityFormSet))
        schedule_days_apply(
            plans=[
                DayPlan(
                    agent=day.agent,
                    date=day.date,
                    activities=specs,
                    note=day.note,
                    published=day.published,
                    expected_updated_at=form.cleaned_data.get("loaded_updated_at") if change else None,
                )
            ],
            source=ActivitySource.SUPERVISOR,
            actor=_actor(request),
            reason="edited in the admin",
        )
        saved = ScheduleDay.objects.get(agent=day.agent, date=day.date)
        day.pk, day.updated_at = saved.pk, saved.updated_at
        for formset in formsets:
            # The change message reads these; the journal (ScheduleChange) holds the detail.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


# --- what supervisors configure --------------------------------------------------------------------


class OrganizationConfigAdmin(OrganizationScopedAdmin):
    """A supervisor's new code, rule or period is its organisation's: preselected, the only choice."""

    def get_changeform_initial_data(self, request: HttpRequest) -> dict:
        initial = super().get_changeform_initial_data(request)
        if is_supervisor(request):
            initial.setdefault("organization", str(organization_of(request)))
        return initial


@admin.register(ActivityCode)
class ActivityCodeAdmin(OrganizationConfigAdmin):
    organization_path = "organization"
    supervisor_actions = frozenset({"view", "change", "add"})
    list_display = [
        "code",
        "name",
        "category",
        "paid",
        "open_for_requests",
        "open_for_time_off",
        "open_for_absence",
        "active",
        "organization",
    ]
    list_filter = ["organization", "category", "active", "open_for_requests", "open_for_time_off"]
    search_fields = ["code", "name"]
    list_select_related = ["organization"]
    readonly_fields = ["updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("code")  # the WFM's key for the code: renamed, it would be another code
        return fields

    def save_model(self, request: HttpRequest, obj: ActivityCode, form, change: bool) -> None:
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)


class ApprovalRuleForm(forms.ModelForm):
    # No Meta: the admin builds it with every field of the model.

    def clean(self):
        cleaned = super().clean()
        organization, code = cleaned.get("organization"), cleaned.get("activity_code")
        if organization is not None and code is not None and code.organization_id != organization.pk:
            self.add_error("activity_code", _("The activity code belongs to another organisation."))
        return cleaned


@admin.register(ApprovalRule)
class ApprovalRuleAdmin(OrganizationConfigAdmin):
    organization_path = "organization"
    supervisor_actions = frozenset({"view", "change", "add", "delete"})
    form = ApprovalRuleForm
    list_display = [
        "request_type",
        "activity_code",
        "action",
        "min_lead_hours",
        "max_per_day",
        "when_conditions_fail",
        "priority",
        "active",
        "organization",
    ]
    list_filter = ["organization", "request_type", "action", "active"]
    list_select_related = ["organization", "activity_code"]


class BlackoutPeriodForm(forms.ModelForm):
    # No Meta: the admin builds it with every field of the model.

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start is not None and end is not None and end < start:
            self.add_error("end_date", _("The end date cannot be before the start date."))
        return cleaned


@admin.register(BlackoutPeriod)
class BlackoutPeriodAdmin(OrganizationConfigAdmin):
    organization_path = "organization"
    supervisor_actions = frozenset({"view", "change", "add", "delete"})
    form = BlackoutPeriodForm
    list_display = [
        "start_date",
        "end_date",
        "reason",
        "applies_to_schedule",
        "applies_to_time_off",
        "applies_to_swap",
        "organization",
    ]
    list_filter = ["organization", "start_date"]
    search_fields = ["reason"]
    list_select_related = ["organization"]


@admin.register(ScheduleChange)
class ScheduleChangeAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    """The journal of every schedule change: read-only for everyone, since reverts rely on it."""

    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["agent", "date", "source", "actor", "created_at", "reason"]
    list_filter = ["source", "date", "agent__team"]
    # A change group's id finds every day one decision changed (time off over a week, a swap).
    search_fields = ["agent__name", "agent__user__email", "=group"]
    list_select_related = ["agent__user", "actor"]
    readonly_fields = [
        "agent",
        "date",
        "source",
        "actor",
        "reason",
        "group",
        "before",
        "after",
        "reverts",
        "created_at",
    ]


@admin.register(CalendarFeed)
class CalendarFeedAdmin(OrganizationScopedAdmin):
    """Agents' calendar feed URLs: deleting one revokes it (a leaked URL); the token is never shown."""

    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view", "delete"})
    list_display = ["agent", "created_at", "last_used_at"]
    search_fields = ["agent__name", "agent__user__email"]
    list_select_related = ["agent__user"]
    fields = ["agent", "created_at", "last_used_at"]
    readonly_fields = ["agent", "created_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
