import datetime as dt
import hashlib
import json

from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers

from em_agent.api.docs import error_responses
from em_agent.api.views import AgentAPIView
from schedules.models import ActivityCategory
from schedules.selectors import activity_codes_for_agent, schedule_calendar_for_agent, schedule_days_for_agent

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
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
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

    class QueryInput(serializers.Serializer):
        start = serializers.DateField(required=False, help_text="Default: today (the agent's zone).")
        end = serializers.DateField(required=False, help_text="Inclusive; default: start.")

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


@extend_schema_field({"type": "string", "pattern": r"^\d{4}-\d{2}$", "example": "2026-12"})
class MonthField(serializers.Field):
    """YYYY-MM, as the first day of that month."""

    def to_internal_value(self, data) -> dt.date:
        try:
            if not isinstance(data, str) or len(data) != 7:
                raise ValueError
            month = dt.datetime.strptime(data, "%Y-%m").date()  # noqa: DTZ007  (a calendar month, no time)
        except ValueError:
            raise serializers.ValidationError(_("Use the format YYYY-MM.")) from None
        if not 2000 <= month.year <= 2100:
            raise serializers.ValidationError(_("That month is out of range."))
        return month

    def to_representation(self, value: dt.date) -> str:
        return value.strftime("%Y-%m")


class CalendarApi(AgentAPIView):
    """The month view's green dots: which days are published and which have activities."""

    class QueryInput(serializers.Serializer):
        month = MonthField(required=False, help_text="YYYY-MM; default: this month.")

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

    class QueryInput(serializers.Serializer):
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
                value=[{"code": "TRAIN", "name": "Training", "category": "training", "color": "#7B61FF"}],
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
