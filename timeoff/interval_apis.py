"""Interval self-service (CXone WFM): the intervals an agent may take off on a day, and a request
over some of them. The logic is timeoff.intervals'."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from em_agent.api import inputs
from em_agent.api.docs import BODY_ERRORS, error_responses, operation_extensions
from em_agent.api.fields import AwareDateTimeField, DateField
from em_agent.api.inputs import BodyInput
from em_agent.api.views import AgentAPIView
from timeoff.apis import TIME_OFF_EXAMPLE, TimeOffRequestOutput
from timeoff.intervals import (
    APPROVAL_REQUIRED,
    AUTO_APPROVE,
    MAX_INTERVALS,
    interval_request_create,
    intervals_for_agent,
)

_TYPES = [AUTO_APPROVE, APPROVAL_REQUIRED]


class IntervalOutput(serializers.Serializer):
    start = serializers.DateTimeField(help_text="RFC 3339 in the agent's zone: what `starts` takes.")
    end = serializers.DateTimeField()
    type = serializers.ChoiceField(
        choices=_TYPES,
        help_text="`auto_approve`: approved at once; `approval_required`: a supervisor decides.",
    )


class IntervalsOutput(serializers.Serializer):
    date = serializers.DateField()
    interval_minutes = serializers.ChoiceField(
        choices=[15, 30, 60], help_text="The staffing's interval length."
    )
    intervals = IntervalOutput(many=True, source="offered", help_text="Only the offered ones, in order.")


INTERVALS_EXAMPLE = {
    "date": "2026-12-08",
    "interval_minutes": 30,
    "intervals": [
        {"start": "2026-12-08T14:00:00+01:00", "end": "2026-12-08T14:30:00+01:00", "type": "auto_approve"},
        {"start": "2026-12-08T14:30:00+01:00", "end": "2026-12-08T15:00:00+01:00", "type": "auto_approve"},
        {
            "start": "2026-12-08T15:00:00+01:00",
            "end": "2026-12-08T15:30:00+01:00",
            "type": "approval_required",
        },
    ],
}


class TimeOffIntervalsApi(AgentAPIView):
    """CXone WFM: the intervals of a day the agent may take off, by staffing."""

    wfm_feature = "time_off"

    class QueryInput(inputs.QueryInput):
        date = DateField(required=False, help_text="Default: today (the agent's zone).")

    @extend_schema(
        operation_id="time_off_intervals",
        summary="The intervals of a day the agent may take off (interval self-service)",
        description=(
            "The intervals of the agent's future working time on a published day (its paid activities that "
            "are not time off or absence) that staffing lets it take off: `auto_approve` while the staffing "
            "without the agent stays at or above required plus the organisation's margin, `approval_required` "
            "while it stays within the second margin; others are not listed. Staffing is the WFM's, less "
            "the time off approved since, so an approval shows at once. A day that is past, not published or "
            "without staffing has none. Send chosen `start` values as they are to "
            "`POST /time-off/interval-requests`."
        ),
        parameters=[QueryInput],
        responses={
            200: IntervalsOutput,
            **error_responses(
                "validation_error",
                "not_available_for_wfm_system",
                "activation_required",
                "mfa_enrollment_required",
            ),
        },
        examples=[OpenApiExample("Intervals", value=INTERVALS_EXAMPLE, response_only=True)],
        tags=["time off (CXone)"],
    )
    def get(self, request):
        query = self.QueryInput(data=request.query_params)
        query.is_valid(raise_exception=True)
        date = query.validated_data.get("date") or timezone.localdate()  # the agent's zone is active
        return Response(IntervalsOutput(intervals_for_agent(agent=self.agent, date=date)).data)


class _StartsField(serializers.ListField):
    """A list of instants whose refusals name `starts` itself (not `starts.0`): the app chose them
    together, and the schema's rules are written for the field."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as error:
            if not isinstance(error.detail, dict):
                raise
            messages = [str(message) for part in error.detail.values() for message in part]
            raise serializers.ValidationError(list(dict.fromkeys(messages))) from None


class IntervalRequestInput(BodyInput):
    date = DateField(help_text="The day of the intervals (the agent's zone).")
    activity_code = serializers.CharField(
        max_length=40, help_text="From `GET /activity-codes?usage=time_off`."
    )
    starts = _StartsField(
        child=AwareDateTimeField(),
        min_length=1,
        max_length=MAX_INTERVALS,
        help_text=(
            "The chosen intervals' `start` values from `GET /time-off/intervals`: RFC 3339 with an offset "
            "(any offset; an instant, so the hour a DST change repeats is unambiguous), in any order."
        ),
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
    auto_approve_only = serializers.BooleanField(
        required=False,
        default=False,
        help_text=(
            "true: only if the intervals are still approved at once; when they now need approval (the last "
            "automatic place was just taken), 400 `interval_unavailable` rather than a wait for a supervisor."
        ),
    )


INTERVAL_REQUEST_ERRORS = (
    "validation_error",
    "intervals_not_consecutive",
    "mixed_interval_types",
    "interval_unavailable",
    "overlaps_existing_request",
    "insufficient_balance",
    "overlap",
    "too_many_pending_requests",
    "not_available_for_wfm_system",
    "activation_required",
    "mfa_enrollment_required",
)

_LINKS = {
    "ReadTimeOffRequest": {
        "operationId": "time_off_requests_read",
        "parameters": {"request_id": "$response.body#/id"},
    },
    "CancelTimeOffRequest": {
        "operationId": "time_off_requests_cancel",
        "parameters": {"request_id": "$response.body#/id"},
    },
}

INTERVAL_REQUEST_EXAMPLE = {
    **TIME_OFF_EXAMPLE,
    "kind": "partial_day",
    "status": "approved",
    "status_reason": "Approved automatically: the staffing of these intervals allows it.",
    "substatus": None,
    "waitlist_position": None,
    "start_date": "2026-12-08",
    "end_date": "2026-12-08",
    "start_time": "14:00",
    "end_time": "15:00",
    "hours": 1.0,
    "days": [
        {
            "date": "2026-12-08",
            "hours": 1.0,
            "start": "2026-12-08T14:00:00+01:00",
            "end": "2026-12-08T15:00:00+01:00",
        }
    ],
    "from_intervals": True,
    "comment": "",
    "decided_by": {"type": "rule", "name": None},
    "decided_at": "2026-12-03T10:12:00+01:00",
}


class TimeOffIntervalRequestApi(AgentAPIView):
    wfm_feature = "time_off"

    @extend_schema(
        operation_id="time_off_interval_requests_create",
        summary="Request time off over consecutive offered intervals of one type",
        description=(
            "One part-of-a-day request over the chosen intervals, as short as one interval: they must follow "
            "each other (400 `intervals_not_consecutive`), be of one type (400 `mixed_interval_types`) and "
            "still be offered (400 `interval_unavailable`: another agent may just have taken the last place). "
            "`auto_approve` intervals are approved at once (the schedule already holds the time off; a "
            "blackout date declines, a full day limit leaves it to a supervisor); `approval_required` ones "
            "wait for a supervisor. The balance counts the real time they span."
        ),
        request=IntervalRequestInput,
        responses={201: TimeOffRequestOutput, **error_responses(*BODY_ERRORS, *INTERVAL_REQUEST_ERRORS)},
        extensions=operation_extensions(
            field_rules={
                "activity_code": "One of `GET /activity-codes?usage=time_off`.",
                "starts": (
                    "Each instant once; RFC 3339 with its offset, seconds without a leap second and at most "
                    "6 decimals."
                ),
            },
            links={201: _LINKS},
        ),
        examples=[
            OpenApiExample(
                "Two intervals",
                value={
                    "date": "2026-12-08",
                    "activity_code": "VAC",
                    "starts": ["2026-12-08T14:00:00+01:00", "2026-12-08T14:30:00+01:00"],
                    "auto_approve_only": True,
                },
                request_only=True,
            ),
            OpenApiExample(
                "Approved at once", value=INTERVAL_REQUEST_EXAMPLE, response_only=True, status_codes=["201"]
            ),
        ],
        tags=["time off (CXone)"],
    )
    def post(self, request):
        body = IntervalRequestInput(data=request.data)
        body.is_valid(raise_exception=True)
        # As written (see TimeOffRequest.keep_days).
        created = interval_request_create(agent=self.agent, **body.validated_data)
        return Response(TimeOffRequestOutput(created).data, status=201)
