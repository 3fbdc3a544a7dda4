import datetime as dt
import hashlib
import json
import re

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
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
from em_agent.api.fields import AwareDateTimeField, DateField
from em_agent.api.inputs import BodyInput, CommaListField, discriminated
from em_agent.api.pagination import CursorPagination
from em_agent.api.views import AgentAPIView
from schedules.models import ActivityCategory, RequestAction, RequestStatus
from schedules.requests import schedule_request_create, schedule_request_withdraw
from schedules.selectors import (
    activity_codes_for_agent,
    schedule_calendar_for_agent,
    schedule_days_for_agent,
    schedule_request_get_for_agent,
    schedule_request_list_for_agent,
)

MAX_RANGE_DAYS = 62

ACTIVITY_EXAMPLE = {
    "id": 812,
    "activity_code": {"code": "PHONE", "name": "Phone", "category": "work", "color": "#4A90D9"},
    "start": "2026-12-01T09:00:00+01:00",
    "end": "2026-12-01T11:00:00+01:00",
    "note": "Queue: Billing NL",
}


def json_with_etag(request, data) -> HttpResponse:
    """The JSON body with a strong ETag of its bytes; 304 when the app already has them, so its
    refresh costs a few bytes. Private: the schedule is one agent's."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    # Weak comparison, as RFC 9110 asks of If-None-Match: a proxy may have weakened our tag.
    sent = {tag.strip().removeprefix("W/") for tag in request.headers.get("If-None-Match", "").split(",")}
    if etag in sent or "*" in sent:
        response = HttpResponse(status=304)
        del response["Content-Type"]
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Vary"] = "Accept-Language, X-Session-Token"
    return response


class ActivityCodeOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    category = serializers.ChoiceField(choices=ActivityCategory.choices)
    color = serializers.CharField(help_text="#RRGGBB")


class ActivityOutput(serializers.Serializer):
    id = serializers.IntegerField()
    activity_code = ActivityCodeOutput()
    start = serializers.DateTimeField(help_text="In the agent's time zone, with its offset.")
    end = serializers.DateTimeField()
    note = serializers.CharField(help_text="The activity note.")


class DayOutput(serializers.Serializer):
    date = serializers.DateField(help_text="A local date in the agent's time zone.")
    published = serializers.BooleanField(help_text="Published by the WFM (the green dot).")
    note = serializers.CharField(help_text="The day note.")
    activities = ActivityOutput(many=True)


class ScheduleOutput(serializers.Serializer):
    days = DayOutput(many=True)


class ScheduleApi(AgentAPIView):
    """The agent's days with their activities, in the agent's zone."""

    class QueryInput(inputs.QueryInput):
        start = DateField(required=False, help_text="Default: today (the agent's zone).")
        end = DateField(required=False, help_text="Inclusive; default: start; at most 62 days from start.")

        def validate(self, attrs):
            start = attrs.get("start") or timezone.localdate()
            end = attrs.get("end") or start
            if end < start:
                raise serializers.ValidationError({"end": [_("The end date is before the start date.")]})
            if (end - start).days + 1 > MAX_RANGE_DAYS:
                raise serializers.ValidationError(
                    {"end": [_("At most %(days)d days at a time.") % {"days": MAX_RANGE_DAYS}]}
                )
            return {"start": start, "end": end}

    @extend_schema(
        operation_id="schedule_read",
        summary="The schedule for a range of days (at most 62)",
        parameters=[
            QueryInput,
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="An earlier ETag."),
        ],
        responses={
            200: ScheduleOutput,
            304: OpenApiResponse(description="Not modified: the ETag still matches."),
            **error_responses("validation_error", "activation_required", "mfa_enrollment_required"),
        },
        extensions=operation_extensions(
            field_rules={"end": "On or after `start`, and at most 62 days from it (both inclusive)."},
            links={
                200: {
                    "CancelFirstActivity": {
                        "operationId": "schedule_requests_create",
                        "description": "Ask to cancel the first activity of the first day.",
                        "requestBody": {
                            "action": "cancel",
                            "activity_id": "$response.body#/days/0/activities/0/id",
                        },
                    }
                }
            },
        ),
        examples=[
            OpenApiExample(
                "A working day",
                value={
                    "days": [
                        {
                            "date": "2026-12-01",
                            "published": True,
                            "note": "Team meeting after lunch",
                            "activities": [ACTIVITY_EXAMPLE],
                        }
                    ]
                },
                response_only=True,
            )
        ],
        tags=["schedule"],
    )
    def get(self, request):
        query = self.QueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        days = schedule_days_for_agent(agent=self.agent, **query.validated_data)
        return json_with_etag(request, {"days": days})


class CalendarDayOutput(serializers.Serializer):
    date = serializers.DateField()
    published = serializers.BooleanField()
    has_activities = serializers.BooleanField()


class CalendarOutput(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    days = CalendarDayOutput(many=True)


_MONTH = r"(20\d\d|2100)-(0[1-9]|1[0-2])"


@extend_schema_field({"type": "string", "pattern": f"^{_MONTH}$", "example": "2026-12"})
class MonthField(serializers.Field):
    """YYYY-MM from 2000-01 to 2100-12, as the first day of that month."""

    def to_internal_value(self, data) -> dt.date:
        if not isinstance(data, str) or not re.fullmatch(_MONTH, data, re.ASCII):
            raise serializers.ValidationError(_("Use the format YYYY-MM, from 2000-01 to 2100-12."))
        return dt.date(int(data[:4]), int(data[5:]), 1)

    def to_representation(self, value: dt.date) -> str:
        return value.strftime("%Y-%m")


class CalendarApi(AgentAPIView):
    """The month view's green dots: which days are published and which have activities."""

    class QueryInput(inputs.QueryInput):
        month = MonthField(required=False, help_text="YYYY-MM, from 2000-01 to 2100-12; default: this month.")

    @extend_schema(
        operation_id="schedule_calendar",
        summary="Published days of a month (the green dots)",
        parameters=[
            QueryInput,
            OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER, description="An earlier ETag."),
        ],
        responses={
            200: CalendarOutput,
            304: OpenApiResponse(description="Not modified: the ETag still matches."),
            **error_responses("validation_error", "activation_required", "mfa_enrollment_required"),
        },
        examples=[
            OpenApiExample(
                "December",
                value={
                    "month": "2026-12",
                    "days": [
                        {"date": "2026-12-01", "published": True, "has_activities": True},
                        {"date": "2026-12-02", "published": False, "has_activities": False},
                    ],
                },
                response_only=True,
            )
        ],
        tags=["schedule"],
    )
    def get(self, request):
        query = self.QueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        month = query.validated_data.get("month") or timezone.localdate().replace(day=1)
        days = schedule_calendar_for_agent(agent=self.agent, month=month)
        return json_with_etag(request, {"month": month.strftime("%Y-%m"), "days": days})


class ActivityCodesApi(AgentAPIView):
    """The activity codes the agent may pick for a use (all active ones without `usage`)."""

    class QueryInput(inputs.QueryInput):
        usage = serializers.ChoiceField(choices=["schedule", "time_off", "absence"], required=False)

    @extend_schema(
        operation_id="activity_codes_list",
        summary="Activity codes for a use",
        parameters=[QueryInput],
        responses={
            200: ActivityCodeOutput(many=True),
            **error_responses("validation_error", "activation_required", "mfa_enrollment_required"),
        },
        examples=[
            OpenApiExample(
                "Schedule requests",
                value=[{"code": "TRAINING", "name": "Training", "category": "training", "color": "#7B61FF"}],
                response_only=True,
            )
        ],
        tags=["schedule"],
    )
    def get(self, request):
        query = self.QueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        codes = activity_codes_for_agent(agent=self.agent, usage=query.validated_data.get("usage"))
        return json_with_etag(request, list(codes.values("code", "name", "category", "color")))


# --- schedule change requests ---------------------------------------------------------------------


class ScheduleRequestOutput(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.ChoiceField(choices=RequestAction.choices)
    status = serializers.ChoiceField(choices=RequestStatus.choices)
    status_reason = serializers.CharField(
        source="reason_text", help_text="Why it was decided so (or why it waits), in the reader's language."
    )
    date = serializers.DateField(help_text="The local day the request changes.")
    activity_id = serializers.IntegerField(
        source="activity_ref", allow_null=True, help_text="The activity edited or cancelled."
    )
    activity_code = serializers.CharField(source="activity_code.code", allow_null=True, default=None)
    start = serializers.DateTimeField(allow_null=True)
    end = serializers.DateTimeField(allow_null=True)
    comment = serializers.CharField()
    created_at = serializers.DateTimeField()
    decided_at = serializers.DateTimeField(allow_null=True)


REQUEST_EXAMPLE = {
    "id": 41,
    "action": "add",
    "status": "approved",
    "status_reason": "Approved automatically.",
    "date": "2026-12-03",
    "activity_id": None,
    "activity_code": "TRAINING",
    "start": "2026-12-03T14:00:00+01:00",
    "end": "2026-12-03T15:00:00+01:00",
    "comment": "Product training",
    "created_at": "2026-12-01T10:12:00+01:00",
    "decided_at": "2026-12-01T10:12:00+01:00",
}

REQUEST_ERRORS = (
    "validation_error",
    "not_available_for_wfm_system",
    "request_pending",
    "in_the_past",
    "day_not_published",
    "overlap",
    "too_many_pending_requests",
    "not_found",
    "activation_required",
    "mfa_enrollment_required",
)


class _RequestInput(BodyInput):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class AddRequestInput(_RequestInput):
    action = serializers.ChoiceField(choices=[RequestAction.ADD.value])
    activity_code = serializers.CharField(
        max_length=40, help_text="From `GET /activity-codes?usage=schedule`."
    )
    start = AwareDateTimeField()
    end = AwareDateTimeField(help_text="After `start`, on the same local day.")


class EditRequestInput(AddRequestInput):
    """An add's fields, for one of the agent's activities (its local day stays)."""

    action = serializers.ChoiceField(choices=[RequestAction.EDIT.value])
    activity_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="From the schedule.")


class CancelRequestInput(_RequestInput):
    action = serializers.ChoiceField(choices=[RequestAction.CANCEL.value])
    activity_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1, help_text="From the schedule.")


REQUEST_INPUTS: dict[str, type[serializers.Serializer]] = {
    RequestAction.ADD.value: AddRequestInput,
    RequestAction.EDIT.value: EditRequestInput,
    RequestAction.CANCEL.value: CancelRequestInput,
}

REQUEST_INPUT_SCHEMA = PolymorphicProxySerializer(
    component_name="ScheduleRequestInput",
    serializers=dict[str, type[serializers.Serializer] | serializers.Serializer](REQUEST_INPUTS),
    resource_type_field_name="action",
)

# Links from an operation that answers a request to those that read or withdraw it.
_REQUEST_LINKS = {
    "ReadRequest": {
        "operationId": "schedule_requests_read",
        "parameters": {"request_id": "$response.body#/id"},
    },
    "WithdrawRequest": {
        "operationId": "schedule_requests_withdraw",
        "parameters": {"request_id": "$response.body#/id"},
    },
}


class ScheduleRequestListApi(AgentAPIView):
    """The agent's schedule change requests (newest first), and a new one."""

    class QueryInput(inputs.QueryInput):
        status = CommaListField(
            choices=RequestStatus.values,
            required=False,
            help_text="Comma list: pending,approved,denied,withdrawn.",
        )

    @extend_schema(
        operation_id="schedule_requests_list",
        summary="The agent's schedule change requests",
        parameters=[
            OpenApiParameter(
                "status",
                {"type": "array", "items": {"type": "string", "enum": RequestStatus.values}, "minItems": 1},
                explode=False,
                style="form",
                description="Only these statuses, as a comma list: `pending,approved`.",
            ),
            *PAGINATION,
        ],
        responses={
            200: paginated(ScheduleRequestOutput, "ScheduleRequestPage"),
            **error_responses("validation_error", "activation_required", "mfa_enrollment_required"),
        },
        extensions=operation_extensions(
            field_rules=PAGINATION_RULES,
            links={
                200: {
                    name: {**link, "parameters": {"request_id": "$response.body#/results/0/id"}}
                    for name, link in _REQUEST_LINKS.items()
                }
            },
        ),
        examples=[
            OpenApiExample("Requests", value={"results": [REQUEST_EXAMPLE], "next": None}, response_only=True)
        ],
        tags=["schedule"],
    )
    def get(self, request):
        query = self.QueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        requests = schedule_request_list_for_agent(
            agent=self.agent, statuses=query.validated_data.get("status")
        )
        paginator = CursorPagination()
        page = paginator.paginate_queryset(requests, request, view=self)
        return paginator.get_paginated_response(ScheduleRequestOutput(page, many=True).data)

    @extend_schema(
        operation_id="schedule_requests_create",
        summary="Ask for a schedule change: add, edit or cancel an activity",
        description=(
            "Only activity codes open to schedule requests (`GET /activity-codes?usage=schedule`), only "
            "the agent's own activities, only published future days. The organisation's approval rules "
            "decide at once (approved: the schedule has already changed; denied: `status_reason` says "
            "why) or leave it `pending` for a supervisor."
        ),
        request=REQUEST_INPUT_SCHEMA,
        responses={201: ScheduleRequestOutput, **error_responses(*BODY_ERRORS, *REQUEST_ERRORS)},
        extensions=operation_extensions(
            field_rules={
                "activity_code": "One of `GET /activity-codes?usage=schedule`.",
                "start": "In the future; an edit keeps the activity's local day.",
                "end": "After `start`, on the same local day, within the longest activity allowed.",
            },
            links={201: _REQUEST_LINKS},
        ),
        examples=[
            OpenApiExample(
                "Add training",
                value={
                    "action": "add",
                    "activity_code": "TRAINING",
                    "start": "2026-12-03T14:00:00+01:00",
                    "end": "2026-12-03T15:00:00+01:00",
                    "comment": "Product training",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Edit an activity",
                value={
                    "action": "edit",
                    "activity_id": 812,
                    "activity_code": "TRAINING",
                    "start": "2026-12-03T09:00:00+01:00",
                    "end": "2026-12-03T10:00:00+01:00",
                },
                request_only=True,
            ),
            OpenApiExample(
                "Cancel an activity", value={"action": "cancel", "activity_id": 812}, request_only=True
            ),
            OpenApiExample(
                "Approved at once", value=REQUEST_EXAMPLE, response_only=True, status_codes=["201"]
            ),
        ],
        tags=["schedule"],
    )
    def post(self, request):
        payload = discriminated(request.data, field="action", serializers_by_value=REQUEST_INPUTS)
        created = schedule_request_create(agent=self.agent, **payload)
        return Response(ScheduleRequestOutput(created).data, status=201)


class ScheduleRequestDetailApi(AgentAPIView):
    @extend_schema(
        operation_id="schedule_requests_read",
        summary="One of the agent's schedule change requests",
        responses={
            200: ScheduleRequestOutput,
            **error_responses("not_found", "activation_required", "mfa_enrollment_required"),
        },
        examples=[OpenApiExample("Request", value=REQUEST_EXAMPLE, response_only=True)],
        tags=["schedule"],
    )
    def get(self, request, request_id: int):
        found = schedule_request_get_for_agent(agent=self.agent, id=request_id)
        if found is None:
            raise NotFound()
        return Response(ScheduleRequestOutput(found).data)

    @extend_schema(
        operation_id="schedule_requests_withdraw",
        summary="Withdraw a pending request",
        responses={
            204: None,
            **error_responses("not_found", "not_pending", "activation_required", "mfa_enrollment_required"),
        },
        tags=["schedule"],
    )
    def delete(self, request, request_id: int):
        schedule_request_withdraw(agent=self.agent, request_id=request_id)
        return Response(status=204)
