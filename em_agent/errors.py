"""Django's own error views, answering with the contract's error body under /api/."""

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.views import csrf as csrf_views
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from em_agent.api.exceptions import is_api_request, json_error_response


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return json_error_response(
            request, code="validation_error", detail=_("Bad request."), status_code=400, fields={}
        )
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return json_error_response(
            request, code="permission_denied", detail=_("You may not do this."), status_code=403
        )
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return json_error_response(request, code="not_found", detail=_("Not found."), status_code=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return json_error_response(
            request,
            code="server_error",
            detail=_("Something went wrong on our side."),
            status_code=500,
        )
    return defaults.server_error(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    # The app never sends cookies, so a CSRF refusal under /api/ is a request to no real endpoint
    # (a cookie-session call to the API): the contract's body, not Django's HTML page.
    if is_api_request(request):
        return json_error_response(
            request, code="permission_denied", detail=_("You may not do this."), status_code=403
        )
    return csrf_views.csrf_failure(request, reason)


# Unsafe methods too: a POST to an unknown path is a 404, not a CSRF page.
@csrf_exempt
def api_not_found(request: HttpRequest) -> HttpResponse:
    return json_error_response(request, code="not_found", detail=_("Not found."), status_code=404)
