"""OpenAPI pieces shared by the endpoints: the error body and its examples."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers


class ErrorOutput(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, snake_case.")
    detail = serializers.CharField(help_text="Message in the request's language.")
    # The metaclass takes declared fields out of the class, so this does not hide Serializer.fields.
    fields = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For a 400: messages per input field.",
    )


_EXAMPLES = {
    400: ("validation_error", "The input is not valid."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("activation_required", "Activate the app with the code from your supervisor first."),
    404: ("not_found", "Not found."),
    409: ("conflict", "The object is not in a state that allows this."),
    429: ("throttled", "Too many attempts. Try again in 60 minutes."),
}


def ERROR_RESPONSES(*statuses: int, **codes: tuple[str, str]) -> dict[int, OpenApiResponse]:  # noqa: N802
    """Error responses for an operation; `codes` overrides the example per status (e.g. s409=(code, text))."""
    responses = {}
    for status_code in statuses:
        code, detail = codes.get(f"s{status_code}", _EXAMPLES[status_code])
        body: dict[str, object] = {"code": code, "detail": detail}
        if status_code == 400:
            body["fields"] = {"field": ["This field is required."]}
        responses[status_code] = OpenApiResponse(
            response=ErrorOutput,
            description=f"Error ({code})",
            examples=[OpenApiExample(code, value=body, response_only=True, status_codes=[str(status_code)])],
        )
    return responses
