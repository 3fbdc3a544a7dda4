from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from em_agent.api import inputs
from em_agent.api.docs import (
    BODY_ERRORS,
    PAGINATION,
    PAGINATION_RULES,
    error_responses,
    operation_extensions,
    paginated,
)
from em_agent.api.fields import DateField, LocalTimeField
from em_agent.api.inputs import BodyInput, CommaListField, discriminated
from em_agent.api.pagination import CursorPagination
from em_agent.api.views import AgentAPIView
from schedules.apis import ActivityCodeOutput, MonthField
from timeoff.absences import absence_request_create
from timeoff.balances import balances_for_agent, hours
from timeoff.models import AbsenceStatus, TimeOffKind, TimeOffStatus
from timeoff.selectors import (
    absence_request_get_for_agent,
    absence_request_list_for_agent,
    time_off_request_get_for_agent,
    time_off_request_list_for_agent,
    waitlist_position,
)
from timeoff.services import time_off_request_cancel, time_off_request_create, time_off_request_preview


@extend_schema_field({"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "nullable": True})
class _WallClockField(serializers.Field):
    """An instant as the agent's wall clock, HH:MM (the view has activated the agent's zone)."""

    def to_representation(self, value) -> str:
        return f"{timezone.localtime(value):%H:%M}"


class AbsenceRequestOutput(serializers.Serializer):
    id = serializers.IntegerField()
    date = serializers.DateField(help_text="The local day (the agent's zone).")
    exception_code = serializers.CharField(source="exception_code.code")
    exception = ActivityCodeOutput(
        source="exception_code", help_text="The exception code as the app shows it."
    )
    full_day = serializers.BooleanField()
    start_time = _WallClockField(source="start", help_text="HH:MM in the agent's zone; null for a whole day.")
    end_time = _WallClockField(source="end", help_text="HH:MM in the agent's zone; null for a whole day.")
    comment = serializers.CharField()
    status = serializers.ChoiceField(
        choices=AbsenceStatus.choices,
        help_text="`submitted`: handed to the supervisor and the WFM, which needs no approval.",
    )
    created_at = serializers.DateTimeField()


ABSENCE_EXAMPLE = {
    "id": 17,
    "date": "2026-12-08",
    "exception_code": "DOCTOR",
    "exception": {
        "code": "DOCTOR",
        "name": "Doctor's appointment",
        "category": "absence",
        "color": "#9B59B6",
    },
    "full_day": False,
    "start_time": "09:00",
    "end_time": "11:30",
    "comment": "Dentist",
    "status": "submitted",
    "created_at": "2026-12-03T08:12:00+01:00",
}


class _AbsenceInput(BodyInput):
    date = DateField(
        help_text="Today up to the organisation's horizon (28 days by default), the agent's zone."
    )
    exception_code = serializers.CharField(
        max_length=40, help_text="From `GET /activity-codes?usage=absence`."
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


# The two shapes exclude each other (`full_day` false or absent, or true), so a body is one of them.
@extend_schema_field({"type": "boolean", "enum": [False], "default": False})
class _PartOfADayField(serializers.BooleanField):
    pass


@extend_schema_field({"type": "boolean", "enum": [True]})
class _WholeDayField(serializers.BooleanField):
    pass


class PartialDayAbsenceInput(_AbsenceInput):
    full_day = _PartOfADayField(required=False, default=False, help_text="Leave out, or false.")
    start_time = LocalTimeField(help_text="HH:MM in the agent's zone; later than now.")
    end_time = LocalTimeField(help_text="HH:MM, after `start_time` on the same day.")


class FullDayAbsenceInput(_AbsenceInput):
    full_day = _WholeDayField(help_text="true: the whole local day.")


ABSENCE_INPUT_SCHEMA = PolymorphicProxySerializer(
    component_name="AbsenceRequestInput",
    serializers=[PartialDayAbsenceInput, FullDayAbsenceInput],
    resource_type_field_name=None,
)

ABSENCE_ERRORS = (
    "validation_error",
    "in_the_past",
    "beyond_horizon",
    "overlaps_existing_request",
    "not_available_for_wfm_system",
    "activation_required",
    "mfa_enrollment_required",
)

_ABSENCE_LINKS = {
    "ReadAbsenceRequest": {
        "operationId": "absence_requests_read",
        "parameters": {"absence_id": "$response.body#/id"},
    }
}


class AbsenceRequestListApi(AgentAPIView):
    """IEX WFM Integrated: the agent's absence requests, and a new one."""

    wfm_feature = "absence_requests"

    @extend_schema(
        operation_id="absence_requests_list",
        summary="The agent's absence requests (IEX WFM Integrated), newest first",
        parameters=PAGINATION,
        responses={
            200: paginated(AbsenceRequestOutput, "AbsenceRequestPage"),
            **error_responses(
                "validation_error",
                "not_available_for_wfm_system",
                "activation_required",
                "mfa_enrollment_required",
            ),
        },
        extensions=operation_extensions(
            field_rules=PAGINATION_RULES,
            links={
                200: {
                    name: {**link, "parameters": {"absence_id": "$response.body#/results/0/id"}}
                    for name, link in _ABSENCE_LINKS.items()
                }
            },
        ),
        examples=[
            OpenApiExample("Absences", value={"results": [ABSENCE_EXAMPLE], "next": None}, response_only=True)
        ],
        tags=["absence (IEX)"],
    )
    def get(self, request):
        absences = absence_request_list_for_agent(agent=self.agent)
        paginator = CursorPagination()
        page = paginator.paginate_queryset(absences, request, view=self)
        return paginator.get_paginated_response(AbsenceRequestOutput(page, many=True).data)

    @extend_schema(
        operation_id="absence_requests_create",
        summary="Request an absence (IEX WFM Integrated): one day, whole or from a start to an end time",
        description=(
            "No approval step: the request is recorded as `submitted` and the agent's supervisor is emailed "
            "at once; the schedule changes when the WFM's next export carries the absence. A whole day may be "
            "today; a part of a day must start later than now. At most the organisation's horizon ahead "
            "(28 days: the 28th day from today, in the agent's zone, is the last)."
        ),
        request=ABSENCE_INPUT_SCHEMA,
        responses={201: AbsenceRequestOutput, **error_responses(*BODY_ERRORS, *ABSENCE_ERRORS)},
        extensions=operation_extensions(
            field_rules={
                "exception_code": "One of `GET /activity-codes?usage=absence`.",
                "start_time": "A time that exists that day (not in the hour the clocks skip).",
                "end_time": "After `start_time`, and a time that exists that day.",
            },
            links={201: _ABSENCE_LINKS},
        ),
        examples=[
            OpenApiExample(
                "Part of a day",
                value={
                    "date": "2026-12-08",
                    "exception_code": "DOCTOR",
                    "start_time": "09:00",
                    "end_time": "11:30",
                    "comment": "Dentist",
                },
                request_only=True,
            ),
            OpenApiExample(
                "A whole day",
                value={"date": "2026-12-04", "exception_code": "SICK", "full_day": True},
                request_only=True,
            ),
            OpenApiExample("Submitted", value=ABSENCE_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
        tags=["absence (IEX)"],
    )
    def post(self, request):
        # A body with `"full_day": true` is a whole day (its times, if any, are not read); any other
        # is a part of a day, which needs its times.
        full_day = isinstance(request.data, dict) and request.data.get("full_day") is True
        serializer = (FullDayAbsenceInput if full_day else PartialDayAbsenceInput)(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = absence_request_create(agent=self.agent, **serializer.validated_data)
        return Response(AbsenceRequestOutput(created).data, status=201)


class AbsenceRequestDetailApi(AgentAPIView):
    wfm_feature = "absence_requests"

    @extend_schema(
        operation_id="absence_requests_read",
        summary="One of the agent's absence requests",
        responses={
            200: AbsenceRequestOutput,
            **error_responses(
                "not_found", "not_available_for_wfm_system", "activation_required", "mfa_enrollment_required"
            ),
        },
        examples=[OpenApiExample("Absence", value=ABSENCE_EXAMPLE, response_only=True)],
        tags=["absence (IEX)"],
    )
    def get(self, request, absence_id: int):
        found = absence_request_get_for_agent(agent=self.agent, id=absence_id)
        if found is None:
            raise NotFound()
        return Response(AbsenceRequestOutput(found).data)


# --- CXone time off ---------------------------------------------------------------------------------


def _hours_field(**limits) -> type[serializers.Field]:
    """A count of minutes shown as hours with two decimals, a JSON number (7 h 20 min: 7.33)."""

    @extend_schema_field({"type": "number", "format": "double", **limits})
    class HoursField(serializers.Field):
        def __init__(self, **kwargs) -> None:
            super().__init__(read_only=True, **kwargs)

        def to_representation(self, minutes: int) -> Decimal:
            return hours(minutes)

    return HoursField


_Hours = _hours_field()
_HoursNotNegative = _hours_field(minimum=0)
_DayHours = _hours_field(minimum=0, maximum=25)


class TimeOffDayOutput(serializers.Serializer):
    date = serializers.DateField(help_text="A local day of the request (the agent's zone).")
    hours = _DayHours(source="minutes", help_text="What this day counts against the balance.")
    start = serializers.DateTimeField(help_text="The span the time off takes that day.")
    end = serializers.DateTimeField()


class DeciderOutput(serializers.Serializer):
    type = serializers.ChoiceField(
        choices=["supervisor", "rule", "system", "agent"],
        help_text=(
            "`supervisor`: a person; `rule`: an approval rule; `system`: the time came first; "
            "`agent`: the agent withdrew it."
        ),
    )
    name = serializers.CharField(allow_null=True, help_text="The supervisor's name, when a person decided.")


class TimeOffRequestOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=TimeOffKind.choices)
    activity_code = serializers.CharField(source="activity_code.code")
    activity = ActivityCodeOutput(source="activity_code", help_text="The time-off code as the app shows it.")
    status = serializers.ChoiceField(
        choices=TimeOffStatus.choices,
        help_text="`cancelled`: approved, then cancelled by the agent (the schedule was restored).",
    )
    status_reason = serializers.CharField(
        source="reason_text", help_text="Why it was decided so, or why it waits, in the reader's language."
    )
    substatus = serializers.SerializerMethodField(help_text="`waitlisted`: pending, in line for a place.")
    waitlist_position = serializers.SerializerMethodField(
        help_text="Its place in line (1: next) while waitlisted; else null."
    )
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    start_time = _WallClockField(
        source="partial_start", help_text="Part of a day: HH:MM in the agent's zone; null for whole days."
    )
    end_time = _WallClockField(source="partial_end", help_text="Part of a day: HH:MM; null for whole days.")
    hours = _HoursNotNegative(source="minutes", help_text="What the request counts against the balance.")
    days = TimeOffDayOutput(many=True)
    from_intervals = serializers.BooleanField(help_text="Chosen from the intervals staffing offered.")
    comment = serializers.CharField()
    decided_by = serializers.SerializerMethodField()
    decided_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    @extend_schema_field({"type": "string", "enum": ["waitlisted"], "nullable": True})
    def get_substatus(self, request) -> str | None:
        return request.substatus or None

    @extend_schema_field({"type": "integer", "minimum": 1, "nullable": True})
    def get_waitlist_position(self, request) -> int | None:
        return waitlist_position(request)

    @extend_schema_field(DeciderOutput(allow_null=True))
    def get_decided_by(self, request) -> dict | None:
        if request.decided_at is None:
            return None
        if request.status == TimeOffStatus.WITHDRAWN:
            return {"type": "agent", "name": None}
        if request.decided_by is not None:
            return {
                "type": "supervisor",
                "name": request.decided_by.get_full_name() or request.decided_by.email,
            }
        return {"type": "rule" if request.decided_by_rule_id else "system", "name": None}


NOT_RESTORED_WHY = {
    "overlap": _("Its time is taken by another activity now."),
    "changed": _("It was changed or removed after the time off was approved."),
    "wfm_copy": _("The WFM has sent a newer schedule for this day since; that schedule stands."),
}


class NotRestoredOutput(serializers.Serializer):
    date = serializers.DateField(help_text="The local day it was on.")
    activity_code = serializers.CharField()
    start = serializers.DateTimeField(help_text="As it was before the time off.")
    end = serializers.DateTimeField()
    why = serializers.ChoiceField(
        choices=list(NOT_RESTORED_WHY),
        help_text=(
            "`overlap`: its time is taken now; `changed`: changed or removed since; `wfm_copy`: the WFM sent "
            "a newer copy of the day, which stands."
        ),
    )
    detail = serializers.SerializerMethodField(help_text="`why` in the reader's language.")

    def get_detail(self, item) -> str:
        return str(NOT_RESTORED_WHY[item.why])


class TimeOffCancelOutput(TimeOffRequestOutput):
    not_restored = serializers.SerializerMethodField(
        help_text=(
            "What the time off had replaced that could not be put back (empty when the day is as it was, "
            "and for a withdrawn request)."
        )
    )

    @extend_schema_field(NotRestoredOutput(many=True))
    def get_not_restored(self, request) -> list:
        # Known only to the cancellation that just ran (the journal keeps no such list).
        return list(NotRestoredOutput(self.context["not_restored"], many=True).data)


TIME_OFF_EXAMPLE = {
    "id": 52,
    "kind": "full_day",
    "activity_code": "VAC",
    "activity": {"code": "VAC", "name": "Vacation", "category": "time_off", "color": "#27AE60"},
    "status": "pending",
    "status_reason": "On the waitlist: the limit of Monday 21 December is reached.",
    "substatus": "waitlisted",
    "waitlist_position": 2,
    "start_date": "2026-12-21",
    "end_date": "2026-12-22",
    "start_time": None,
    "end_time": None,
    "hours": 16.0,
    "days": [
        {
            "date": "2026-12-21",
            "hours": 8.0,
            "start": "2026-12-21T00:00:00+01:00",
            "end": "2026-12-22T00:00:00+01:00",
        },
        {
            "date": "2026-12-22",
            "hours": 8.0,
            "start": "2026-12-22T00:00:00+01:00",
            "end": "2026-12-23T00:00:00+01:00",
        },
    ],
    "from_intervals": False,
    "comment": "Christmas",
    "decided_by": None,
    "decided_at": None,
    "cancelled_at": None,
    "created_at": "2026-12-03T10:12:00+01:00",
}


class _TimeOffInput(BodyInput):
    activity_code = serializers.CharField(
        max_length=40, help_text="From `GET /activity-codes?usage=time_off`."
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class FullDayTimeOffInput(_TimeOffInput):
    kind = serializers.ChoiceField(choices=[TimeOffKind.FULL_DAY.value])
    start_date = DateField(help_text="Tomorrow at the earliest (the agent's zone).")
    end_date = DateField(help_text="The last day off, at most 31 days from `start_date` counted inclusively.")


class PartialDayTimeOffInput(_TimeOffInput):
    kind = serializers.ChoiceField(choices=[TimeOffKind.PARTIAL_DAY.value])
    date = DateField(help_text="A day whose schedule is published.")
    start_time = LocalTimeField(help_text="HH:MM in the agent's zone, later than now.")
    end_time = LocalTimeField(help_text="HH:MM, 1 to 8 hours of real time after `start_time`, the same day.")


TIME_OFF_INPUTS: dict[str, type[serializers.Serializer]] = {
    TimeOffKind.FULL_DAY.value: FullDayTimeOffInput,
    TimeOffKind.PARTIAL_DAY.value: PartialDayTimeOffInput,
}

TIME_OFF_INPUT_SCHEMA = PolymorphicProxySerializer(
    component_name="TimeOffRequestInput",
    serializers=dict[str, type[serializers.Serializer] | serializers.Serializer](TIME_OFF_INPUTS),
    resource_type_field_name="kind",
)

TIME_OFF_ERRORS = (
    "validation_error",
    "in_the_past",
    "partial_day_needs_published_schedule",
    "duration_out_of_range",
    "overlaps_existing_request",
    "insufficient_balance",
    "overlap",
    "too_many_pending_requests",
    "not_available_for_wfm_system",
    "activation_required",
    "mfa_enrollment_required",
)

# A preview writes no schedule, so it never meets an overlap of activities.
PREVIEW_ERRORS = tuple(code for code in TIME_OFF_ERRORS if code != "overlap")

TIME_OFF_RULES = {
    "activity_code": "One of `GET /activity-codes?usage=time_off`.",
    "start_date": "Tomorrow or later.",
    "end_date": "On or after `start_date`; the request spans at most 31 days; not only days off.",
    "date": "Today or later, on a published day.",
    "start_time": "Later than now; a time that exists that day (not in the hour the clocks skip).",
    "end_time": "1 to 8 hours of real time after `start_time`, on the same day.",
}

TIME_OFF_BODY_EXAMPLES = [
    OpenApiExample(
        "Whole days",
        value={
            "kind": "full_day",
            "activity_code": "VAC",
            "start_date": "2026-12-21",
            "end_date": "2026-12-22",
            "comment": "Christmas",
        },
        request_only=True,
    ),
    OpenApiExample(
        "Part of a day",
        value={
            "kind": "partial_day",
            "activity_code": "PERSONAL",
            "date": "2026-12-08",
            "start_time": "13:00",
            "end_time": "17:00",
        },
        request_only=True,
    ),
]

_TIME_OFF_LINKS = {
    "ReadTimeOffRequest": {
        "operationId": "time_off_requests_read",
        "parameters": {"request_id": "$response.body#/id"},
    },
    "CancelTimeOffRequest": {
        "operationId": "time_off_requests_cancel",
        "parameters": {"request_id": "$response.body#/id"},
    },
}


def _time_off_payload(request) -> dict:
    return discriminated(request.data, field="kind", serializers_by_value=TIME_OFF_INPUTS)


class TimeOffRequestListApi(AgentAPIView):
    """CXone WFM: the agent's time-off requests of a month (newest first), and a new one."""

    wfm_feature = "time_off"

    class QueryInput(inputs.QueryInput):
        month = MonthField(required=False, help_text="YYYY-MM; default: this month (the agent's zone).")
        status = CommaListField(choices=TimeOffStatus.values, required=False)
        kind = CommaListField(choices=TimeOffKind.values, required=False)

    @extend_schema(
        operation_id="time_off_requests_list",
        summary="The agent's time-off requests with a day in a month",
        parameters=[
            OpenApiParameter(
                "month",
                {"type": "string", "pattern": "^(20\\d\\d|2100)-(0[1-9]|1[0-2])$"},
                description="YYYY-MM, from 2000-01 to 2100-12; default: this month (the agent's zone).",
            ),
            OpenApiParameter(
                "status",
                {"type": "array", "items": {"type": "string", "enum": TimeOffStatus.values}, "minItems": 1},
                explode=False,
                style="form",
                description="Only these statuses, as a comma list: `pending,approved`.",
            ),
            OpenApiParameter(
                "kind",
                {"type": "array", "items": {"type": "string", "enum": TimeOffKind.values}, "minItems": 1},
                explode=False,
                style="form",
                description="Only these kinds, as a comma list.",
            ),
            *PAGINATION,
        ],
        responses={
            200: paginated(TimeOffRequestOutput, "TimeOffRequestPage"),
            **error_responses(
                "validation_error",
                "not_available_for_wfm_system",
                "activation_required",
                "mfa_enrollment_required",
            ),
        },
        extensions=operation_extensions(
            field_rules=PAGINATION_RULES,
            links={
                200: {
                    name: {**link, "parameters": {"request_id": "$response.body#/results/0/id"}}
                    for name, link in _TIME_OFF_LINKS.items()
                }
            },
        ),
        examples=[
            OpenApiExample(
                "Requests", value={"results": [TIME_OFF_EXAMPLE], "next": None}, response_only=True
            )
        ],
        tags=["time off (CXone)"],
    )
    def get(self, request):
        query = self.QueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        month = query.validated_data.get("month") or timezone.localdate().replace(day=1)
        requests = time_off_request_list_for_agent(
            agent=self.agent,
            month=month,
            statuses=query.validated_data.get("status") or (),
            kinds=query.validated_data.get("kind") or (),
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(requests, request, view=self)
        return paginator.get_paginated_response(TimeOffRequestOutput(page, many=True).data)

    @extend_schema(
        operation_id="time_off_requests_create",
        summary="Request time off: whole days, or part of one published day",
        description=(
            "A whole day counts the paid hours its published schedule has (a day off: 0), or the "
            "organisation's default hours for that weekday while it is not published. Part of a day counts "
            "the real time between its start and end (a DST change included). The approval rules decide at "
            "once (`approved`: the schedule already holds the time off; `denied` with the reason), leave it "
            "`pending` for a supervisor, or, when only a full limit stands in the way and the rule allows, put "
            "it on the waitlist (`pending`, `substatus: waitlisted`, approved by itself when a place frees)."
        ),
        request=TIME_OFF_INPUT_SCHEMA,
        responses={201: TimeOffRequestOutput, **error_responses(*BODY_ERRORS, *TIME_OFF_ERRORS)},
        extensions=operation_extensions(field_rules=TIME_OFF_RULES, links={201: _TIME_OFF_LINKS}),
        examples=[
            *TIME_OFF_BODY_EXAMPLES,
            OpenApiExample("Waitlisted", value=TIME_OFF_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
        tags=["time off (CXone)"],
    )
    def post(self, request):
        # As written: its agent, code and days are the ones the service had (see keep_days).
        created = time_off_request_create(agent=self.agent, **_time_off_payload(request))
        return Response(TimeOffRequestOutput(created).data, status=201)


class TimeOffRequestDetailApi(AgentAPIView):
    wfm_feature = "time_off"

    @extend_schema(
        operation_id="time_off_requests_read",
        summary="One of the agent's time-off requests, with its days, its decision and its waitlist place",
        responses={
            200: TimeOffRequestOutput,
            **error_responses(
                "not_found", "not_available_for_wfm_system", "activation_required", "mfa_enrollment_required"
            ),
        },
        examples=[OpenApiExample("Request", value=TIME_OFF_EXAMPLE, response_only=True)],
        tags=["time off (CXone)"],
    )
    def get(self, request, request_id: int):
        found = time_off_request_get_for_agent(agent=self.agent, id=request_id)
        if found is None:
            raise NotFound()
        return Response(TimeOffRequestOutput(found).data)


CANCELLED_EXAMPLE = {
    **TIME_OFF_EXAMPLE,
    "status": "cancelled",
    "status_reason": "Approved automatically.",
    "substatus": None,
    "waitlist_position": None,
    "decided_by": {"type": "rule", "name": None},
    "decided_at": "2026-12-03T10:12:00+01:00",
    "cancelled_at": "2026-12-05T08:00:00+01:00",
}


class TimeOffRequestCancelApi(AgentAPIView):
    wfm_feature = "time_off"

    @extend_schema(
        operation_id="time_off_requests_cancel",
        summary="Cancel time off: a pending request is withdrawn, approved time off not yet begun cancelled",
        description=(
            "Approved time off is cancelled only for whole days from tomorrow on and a part of a day whose "
            "start is ahead (409 `cannot_cancel_past`). The schedule is restored as it was without the time "
            "off (or as the WFM sent it since), the hours return to the balance, a waitlisted request may take "
            "the place, and the supervisor is told."
        ),
        request=None,
        responses={
            200: TimeOffCancelOutput,
            **error_responses(
                "not_found",
                "cannot_cancel_past",
                "not_cancellable",
                "not_available_for_wfm_system",
                "activation_required",
                "mfa_enrollment_required",
            ),
        },
        examples=[
            OpenApiExample("Cancelled", value={**CANCELLED_EXAMPLE, "not_restored": []}, response_only=True),
            OpenApiExample(
                "Cancelled, the WFM's newer copy of the day standing",
                value={
                    **CANCELLED_EXAMPLE,
                    "not_restored": [
                        {
                            "date": "2026-12-21",
                            "activity_code": "PHONE",
                            "start": "2026-12-21T09:00:00+01:00",
                            "end": "2026-12-21T17:30:00+01:00",
                            "why": "wfm_copy",
                            "detail": "The WFM has sent a newer schedule for this day since; that schedule stands.",
                        }
                    ],
                },
                response_only=True,
            ),
        ],
        tags=["time off (CXone)"],
    )
    def post(self, request, request_id: int):
        cancelled = time_off_request_cancel(agent=self.agent, request_id=request_id)
        fresh = time_off_request_get_for_agent(agent=self.agent, id=request_id)
        return Response(TimeOffCancelOutput(fresh, context={"not_restored": cancelled.not_restored}).data)


class PreviewDayOutput(serializers.Serializer):
    date = serializers.DateField()
    hours = _DayHours(source="minutes")


class PreviewOutput(serializers.Serializer):
    days = PreviewDayOutput(many=True)
    hours = _HoursNotNegative(source="minutes")
    balance_after = _Hours(help_text="The code's remaining hours were it approved.")
    outcome = serializers.ChoiceField(
        choices=["auto_approve", "approval_required", "waitlisted", "auto_decline"]
    )
    reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Why, in the request's language."
    )


class TimeOffPreviewApi(AgentAPIView):
    wfm_feature = "time_off"

    @extend_schema(
        operation_id="time_off_requests_preview",
        summary="What a time-off request would take and what would happen to it, without sending it",
        description=(
            "The body of a request; nothing is written. The same refusals a request would get (400), or the "
            "days with their hours, the balance after, and the outcome: `auto_approve`, `approval_required`, "
            "`waitlisted` or `auto_decline`, with the reasons. Things can change before the request is sent."
        ),
        request=TIME_OFF_INPUT_SCHEMA,
        responses={200: PreviewOutput, **error_responses(*BODY_ERRORS, *PREVIEW_ERRORS)},
        extensions=operation_extensions(field_rules=TIME_OFF_RULES),
        examples=[
            *TIME_OFF_BODY_EXAMPLES,
            OpenApiExample(
                "Approved at once",
                value={
                    "days": [{"date": "2026-12-21", "hours": 8.0}, {"date": "2026-12-22", "hours": 8.0}],
                    "hours": 16.0,
                    "balance_after": 24.0,
                    "outcome": "auto_approve",
                    "reasons": ["Approved automatically."],
                },
                response_only=True,
            ),
        ],
        tags=["time off (CXone)"],
    )
    def post(self, request):
        payload = _time_off_payload(request)
        payload.pop("comment", None)
        return Response(PreviewOutput(time_off_request_preview(agent=self.agent, **payload)).data)


class BalanceOutput(serializers.Serializer):
    activity_code = serializers.CharField(source="activity_code.code")
    name = serializers.CharField(source="activity_code.name")
    earned = _Hours(help_text="Hours earned (the WFM's, or the accrual rule's).")
    used = _HoursNotNegative(help_text="Approved hours on days before today.")
    planned = _HoursNotNegative(help_text="Approved hours from today on.")
    remaining = _Hours(help_text="earned - used - planned.")
    pending = _HoursNotNegative(help_text="Hours of requests not decided yet.")


class BalancesOutput(serializers.Serializer):
    unit = serializers.ChoiceField(choices=["hours"])
    balances = BalanceOutput(many=True)


class TimeOffBalancesApi(AgentAPIView):
    wfm_feature = "time_off"

    @extend_schema(
        operation_id="time_off_balances",
        summary="The agent's time-off balance per code: earned, used, planned, remaining and pending hours",
        responses={
            200: BalancesOutput,
            **error_responses(
                "not_available_for_wfm_system", "activation_required", "mfa_enrollment_required"
            ),
        },
        examples=[
            OpenApiExample(
                "Balances",
                value={
                    "unit": "hours",
                    "balances": [
                        {
                            "activity_code": "VAC",
                            "name": "Vacation",
                            "earned": 200.0,
                            "used": 40.0,
                            "planned": 16.0,
                            "remaining": 144.0,
                            "pending": 8.0,
                        }
                    ],
                },
                response_only=True,
            )
        ],
        tags=["time off (CXone)"],
    )
    def get(self, request):
        today = timezone.localdate()  # the view has activated the agent's zone
        return Response(
            BalancesOutput(
                {"unit": "hours", "balances": balances_for_agent(agent=self.agent, today=today)}
            ).data
        )
