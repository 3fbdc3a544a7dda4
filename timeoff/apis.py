from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from em_agent.api.docs import (
    BODY_ERRORS,
    PAGINATION,
    PAGINATION_RULES,
    error_responses,
    operation_extensions,
    paginated,
)
from em_agent.api.fields import DateField, LocalTimeField
from em_agent.api.inputs import BodyInput
from em_agent.api.pagination import CursorPagination
from em_agent.api.views import AgentAPIView
from schedules.apis import ActivityCodeOutput
from timeoff.absences import absence_request_create
from timeoff.models import AbsenceStatus
from timeoff.selectors import absence_request_get_for_agent, absence_request_list_for_agent


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
