"""One error body for every error under /api/: {"code", "detail"} plus "fields" for bad input."""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from em_agent.exceptions import ApplicationError

logger = logging.getLogger(__name__)


def error_body(code: str, detail: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "detail": str(detail)}
    if fields is not None:
        body["fields"] = fields
    return body


def _flatten_fields(data: Any) -> dict[str, list[str]]:
    """DRF nests errors for nested serializers and lists; the contract wants field -> messages."""
    if isinstance(data, dict):
        flat: dict[str, list[str]] = {}
        for key, value in data.items():
            if isinstance(value, dict):
                for sub_key, messages in _flatten_fields(value).items():
                    flat[f"{key}.{sub_key}"] = messages
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                for index, item in enumerate(value):
                    for sub_key, messages in _flatten_fields(item).items():
                        flat[f"{key}[{index}].{sub_key}"] = messages
            elif isinstance(value, list):
                flat[key] = [str(message) for message in value]
            else:
                flat[key] = [str(value)]
        return flat
    if isinstance(data, list):
        return {"non_field_errors": [str(message) for message in data]}
    return {"non_field_errors": [str(data)]}


_CODE_BY_EXCEPTION: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "not_authenticated"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
]


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(
            error_body(exc.code, exc.detail, exc.fields),
            status=exc.status_code,
            headers=exc.headers,
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            detail=exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's 500 handler answers with the same body, and it is logged

    set_rollback()
    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]

    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        fields = _flatten_fields(exc.detail) if isinstance(exc, exceptions.ValidationError) else {}
        body = error_body("validation_error", _("The input is not valid."), fields)
        return Response(body, status=status.HTTP_400_BAD_REQUEST, headers=headers)

    code = next((code for cls, code in _CODE_BY_EXCEPTION if isinstance(exc, cls)), None)
    if code is None:
        # PermissionDenied raised by our gate carries its own code (activation_required, ...).
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) and codes != "permission_denied" else str(exc.default_code)
    return Response(error_body(code, str(exc.detail)), status=exc.status_code, headers=headers)


def json_error_response(
    request: HttpRequest, *, code: str, detail: str, status_code: int, fields: dict | None = None
) -> JsonResponse:
    return JsonResponse(error_body(code, detail, fields), status=status_code)


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")
