"""OpenAPI pieces shared by the endpoints: the error body, its codes and examples."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers


class ErrorOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, snake_case.")
    detail = serializers.CharField(
        help_text="Message in the request's language (Accept-Language, else the agent's)."
    )
    # The metaclass takes declared fields out of the class, so this does not hide Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For a 400: messages per input field.",
    )


# Every error code an endpoint may answer, with the status it comes with and an example body.
ERROR_CATALOG: dict[str, tuple[int, dict]] = {
    "validation_error": (
        400,
        {
            "code": "validation_error",
            "detail": "The input is not valid.",
            "fields": {"code": ["This field is required."]},
        },
    ),
    "invalid_activation_code": (
        400,
        {
            "code": "invalid_activation_code",
            "detail": "This activation code is not valid. Check it, or ask your supervisor for a new one.",
            "fields": {"code": ["This activation code is not valid."]},
        },
    ),
    "not_authenticated": (
        401,
        {"code": "not_authenticated", "detail": "Authentication credentials were not provided."},
    ),
    "session_expired": (
        401,
        {"code": "session_expired", "detail": "Your session has expired. Please log in again."},
    ),
    "permission_denied": (
        403,
        {"code": "permission_denied", "detail": "This account is not an agent account."},
    ),
    "mfa_enrollment_required": (
        403,
        {
            "code": "mfa_enrollment_required",
            "detail": "Your organisation requires two-factor authentication: enrol and log in with it.",
        },
    ),
    "activation_required": (
        403,
        {
            "code": "activation_required",
            "detail": "Activate the app with the code from your supervisor first.",
        },
    ),
    "not_found": (404, {"code": "not_found", "detail": "Not found."}),
    "already_activated": (409, {"code": "already_activated", "detail": "This app is already activated."}),
    "not_acknowledged": (
        409,
        {"code": "not_acknowledged", "detail": "Only a read notification can be deleted. Open it first."},
    ),
    "in_the_past": (
        400,
        {
            "code": "in_the_past",
            "detail": "Only future times can be requested.",
            "fields": {"start": ["This time has passed."]},
        },
    ),
    "day_not_published": (
        409,
        {
            "code": "day_not_published",
            "detail": "Changes can only be requested for a day whose schedule is published.",
        },
    ),
    "overlap": (
        409,
        {"code": "overlap", "detail": "Activities cannot overlap: 10:00 falls inside another activity."},
    ),
    "too_many_pending_requests": (
        409,
        {
            "code": "too_many_pending_requests",
            "detail": "You have 20 requests waiting for a decision; withdraw one first.",
        },
    ),
    "request_pending": (
        409,
        {
            "code": "request_pending",
            "detail": "A request to change this activity is already waiting for a decision.",
        },
    ),
    "not_available_for_wfm_system": (
        409,
        {
            "code": "not_available_for_wfm_system",
            "detail": "Your organisation's workforce management system does not take schedule change requests.",
        },
    ),
    "not_pending": (409, {"code": "not_pending", "detail": "Only a pending request can be withdrawn."}),
    "schedule_changed": (
        409,
        {
            "code": "schedule_changed",
            "detail": "The activity this request changes is no longer on the schedule.",
        },
    ),
    "throttled": (429, {"code": "throttled", "detail": "Too many attempts. Try again in 58 minutes."}),
}

_ALWAYS = ("not_authenticated", "session_expired")

RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    location=OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before trying again.",
)


def error_responses(*codes: str) -> dict[int, OpenApiResponse]:
    """The error responses of an operation: the given codes plus the 401s every endpoint has."""
    by_status: dict[int, list[str]] = {}
    for code in (*codes, *_ALWAYS):
        by_status.setdefault(ERROR_CATALOG[code][0], []).append(code)
    return {
        status_code: OpenApiResponse(
            response=ErrorOutput,
            description=", ".join(f"`{code}`" for code in status_codes),
            examples=[
                OpenApiExample(
                    code, value=ERROR_CATALOG[code][1], response_only=True, status_codes=[str(status_code)]
                )
                for code in status_codes
            ],
        )
        for status_code, status_codes in sorted(by_status.items())
    }


def paginated(item: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The contract's list shape for the schema: `{"results": [item, ...], "next": url|null}`. Views
    that paginate by hand (APIView) must say so; spectacular only sees it on generic list views."""
    return inline_serializer(
        name=name,
        fields={
            "results": item(many=True),
            "next": serializers.URLField(allow_null=True, help_text="The next page, or null."),
        },
    )
