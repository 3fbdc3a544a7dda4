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
    "beyond_horizon": (
        400,
        {
            "code": "beyond_horizon",
            "detail": "An absence can be requested at most 28 days ahead.",
            "fields": {"date": ["The last day you can request is Thursday 31 December."]},
        },
    ),
    "overlaps_existing_request": (
        400,
        {
            "code": "overlaps_existing_request",
            "detail": "You already requested an absence for this time.",
            "fields": {"date": ["This overlaps an absence you requested earlier."]},
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
    "partial_day_needs_published_schedule": (
        400,
        {
            "code": "partial_day_needs_published_schedule",
            "detail": "Part of a day can only be requested on a day whose schedule is published.",
            "fields": {"date": ["This day's schedule is not published yet."]},
        },
    ),
    "duration_out_of_range": (
        400,
        {
            "code": "duration_out_of_range",
            "detail": "Part of a day is 1 to 8 hours; this is 30 minutes.",
            "fields": {"end_time": ["Between 1 and 8 hours after the start."]},
        },
    ),
    "insufficient_balance": (
        400,
        {
            "code": "insufficient_balance",
            "detail": "Your balance of Vacation is not enough: 4.00 hours left, 8.00 asked.",
        },
    ),
    "intervals_not_consecutive": (
        400,
        {
            "code": "intervals_not_consecutive",
            "detail": "The intervals must follow each other without a gap.",
            "fields": {"starts": ["11:00 does not follow 10:00."]},
        },
    ),
    "mixed_interval_types": (
        400,
        {
            "code": "mixed_interval_types",
            "detail": "One request takes intervals of one type: all approved at once, or all needing approval.",
            "fields": {"starts": ["10:30 needs approval; 10:00 is approved at once."]},
        },
    ),
    "interval_unavailable": (
        400,
        {
            "code": "interval_unavailable",
            "detail": "This interval is not offered (any more).",
            "fields": {"starts": ["10:30 is not offered."]},
        },
    ),
    "cannot_cancel_past": (
        409,
        {"code": "cannot_cancel_past", "detail": "Time off that has begun can no longer be cancelled."},
    ),
    "not_cancellable": (
        409,
        {
            "code": "not_cancellable",
            "detail": "Only pending or approved time off can be cancelled (this is Denied).",
        },
    ),
    "throttled": (429, {"code": "throttled", "detail": "Too many attempts. Try again in 58 minutes."}),
    "request_too_large": (
        413,
        {"code": "request_too_large", "detail": "The request body is larger than 65536 bytes."},
    ),
    "unsupported_media_type": (
        415,
        {"code": "unsupported_media_type", "detail": 'Unsupported media type "text/plain" in request.'},
    ),
}

# What every operation with a JSON body may answer before its own rules: bad JSON, a body too large or
# nested too deep (refused before any view runs), another content type.
BODY_ERRORS = ("validation_error", "request_too_large", "unsupported_media_type")

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
    for code in dict.fromkeys((*codes, *_ALWAYS)):
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


# The list endpoints' paging parameters, as CursorPagination checks them.
CURSOR = OpenApiParameter(
    "cursor",
    {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[A-Za-z0-9+/=]+$"},
    description="From `next`, as given; anything else is 400.",
)
PAGE_SIZE = OpenApiParameter(
    "page_size",
    {"type": "integer", "minimum": 1, "maximum": 200},
    description="Items per page: 1 to 200, default 50.",
)
PAGINATION = [CURSOR, PAGE_SIZE]
# A cursor has the schema's shape and still may not be one the server made.
PAGINATION_RULES = {"cursor": "Only the cursor of a `next` link, as given."}


def operation_extensions(
    *, field_rules: dict[str, str] | None = None, links: dict[int, dict[str, dict]] | None = None
) -> dict:
    """`extend_schema(extensions=...)` for what spectacular cannot say itself:

    - `x-field-rules`: rules on input fields that JSON Schema cannot state, because they relate two
      fields (an end after its start) or depend on data (a code the organisation has); a request that
      breaks one is 400 `validation_error` naming that field. The contract fuzz reads them too.
    - OpenAPI links per response status, from an operation to those that read, change or delete what
      it answered (moved into the responses by `move_links_into_responses`).
    """
    extensions: dict = {}
    if field_rules:
        extensions["x-field-rules"] = field_rules
    if links:
        extensions[_LINKS_KEY] = {str(status_code): value for status_code, value in links.items()}
    return extensions


_LINKS_KEY = "x-em-links"


def move_links_into_responses(result: dict, generator, request, public) -> dict:
    """Also marks a discriminated body (`oneOf` by `action` or `kind`) required: spectacular only
    sees required fields on a plain serializer, and without its discriminator the body is no shape."""
    components = result.get("components", {}).get("schemas", {})
    for operations in result["paths"].values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for status_code, links in operation.pop(_LINKS_KEY, {}).items():
                operation["responses"][status_code]["links"] = links
            for media in operation.get("requestBody", {}).get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                if "oneOf" in components.get(ref.rpartition("/")[2], {}):
                    operation["requestBody"]["required"] = True
    return result


# DRF's CharField refuses a NUL character (PostgreSQL cannot store one): the schema says so, or a
# generated client and a fuzzer take any string for valid.
_NO_NUL = "^[^\\x00]*$"


def forbid_nul_in_request_strings(result: dict, generator, request, public) -> dict:
    """Every free string of an API request body gets a pattern without NUL (strings with an enum,
    a format or a pattern of their own are already narrower)."""
    components = result.get("components", {}).get("schemas", {})
    seen: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rpartition("/")[2]
            if name not in seen and name in components:
                seen.add(name)
                visit(components[name])
            return
        if node.get("type") == "string" and not {"enum", "format", "pattern"} & set(node):
            node["pattern"] = _NO_NUL
        for key in ("properties", "additionalProperties", "items", "oneOf", "anyOf", "allOf"):
            value = node.get(key)
            if isinstance(value, dict) and key == "properties":
                visit(list(value.values()))
            elif value is not None:
                visit(value)

    for path, operations in result["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for operation in operations.values():
            if isinstance(operation, dict):
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    visit(media.get("schema"))
    return result
