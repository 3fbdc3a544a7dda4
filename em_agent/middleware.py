import re

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from em_agent import sessions
from em_agent.api.exceptions import error_body

SESSION_TOKEN_HEADER = "X-Session-Token"  # noqa: S105  (a header name)
_TOKEN_PREFIXES = ("/api/", "/_allauth/")


def passive(view):
    """Marks a view as passive: it is checked against the timeout but does not count as activity."""
    view.passive_activity = True
    return view


def _is_passive(view_func) -> bool:
    if getattr(view_func, "passive_activity", False):
        return True
    view_class = getattr(view_func, "cls", None) or getattr(view_func, "view_class", None)
    return bool(getattr(view_class, "passive_activity", False))


def session_expired_response() -> JsonResponse:
    return JsonResponse(
        error_body("session_expired", _("Your session has expired. Please log in again.")), status=401
    )


class InactivityTimeoutMiddleware:
    """Ends sessions after the idle timeout or the absolute lifetime (docs/sessions.md).

    App sessions (X-Session-Token) answer 401 session_expired; cookie sessions (the admin) are logged
    out and see the login page. It runs before the views, so an expired session is gone before
    anything can use it, and it hands the loaded app session to the DRF authentication.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        token = request.headers.get(SESSION_TOKEN_HEADER)
        if token and request.path.startswith(_TOKEN_PREFIXES):
            return self._check_app_session(request, token, view_func)
        if not token and sessions.session_user_id(request.session) is not None:
            self._check_cookie_session(request, view_func)
        return None

    def _check_app_session(self, request: HttpRequest, token: str, view_func) -> HttpResponse | None:
        session = sessions.lookup(token)
        if session is None:
            return session_expired_response() if sessions.was_expired(token) else None
        if sessions.session_user_id(session) is None:
            return None  # a login still in progress (MFA stage): allauth times its stages itself
        now = sessions.now_epoch()
        if sessions.expiry_reason(session=session, now=now) is not None:
            sessions.end(session=session, token=token)
            return session_expired_response()
        if not _is_passive(view_func) and not sessions.touch(session=session, now=now):
            return session_expired_response()
        request.em_app_session = session  # type: ignore[attr-defined]
        return None

    def _check_cookie_session(self, request: HttpRequest, view_func) -> None:
        now = sessions.now_epoch()
        if sessions.expiry_reason(session=request.session, now=now) is not None:
            sessions.end(session=request.session)
            request.user = AnonymousUser()
        elif not _is_passive(view_func):
            sessions.touch(session=request.session, now=now)


_GUARDED_PREFIXES = ("/api/", "/_allauth/")
# A JSON string (escapes included) or a bracket: what a depth count must see, and nothing else.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _nesting_exceeds(text: str, limit: int) -> bool:
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            if depth > limit:
                return True
        elif mark in "]}":
            depth -= 1
    return False


def _refusal(request: HttpRequest, *, status: int, code: str, detail: str, field: str | None = None):
    if request.path.startswith("/_allauth/"):
        # allauth's headless clients read allauth's error shape there.
        error = {"message": detail, "code": code} | ({"param": field} if field else {})
        return JsonResponse({"status": status, "errors": [error]}, status=status)
    fields = {field: [detail]} if field else None
    return JsonResponse(error_body(code, detail, fields), status=status)


class RequestGuardMiddleware:
    """Refuses, before any view runs, a path or query with a NUL character, and request bodies the
    API never takes: larger than
    API_MAX_BODY_BYTES (413 `request_too_large`), not UTF-8, or nested deeper than
    API_MAX_JSON_DEPTH (400 `validation_error`: Python's parser would recurse until it fails with a
    500). Marks every answer under /api/ and /_allauth/ `Cache-Control: no-store`: they carry an
    agent's schedule, tokens or personal data, which no cache on the way may keep."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(_GUARDED_PREFIXES):
            return self.get_response(request)
        response = self._refuse(request) or self.get_response(request)
        if not request.path.startswith(("/api/schema/", "/api/docs/")):
            response["Cache-Control"] = "no-store"
        return response

    def _refuse(self, request: HttpRequest) -> HttpResponse | None:
        # No identifier, token or parameter of ours holds a NUL, and PostgreSQL cannot compare one
        # (a lookup by such a path would end in a 500).
        if "\x00" in request.path or any(
            "\x00" in name or any("\x00" in value for value in values) for name, values in request.GET.lists()
        ):
            return _refusal(
                request,
                status=400,
                code="validation_error",
                detail=_("The address contains a NUL character."),
            )
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refusal(
                request,
                status=400,
                code="validation_error",
                detail=_("The Content-Length header is not valid."),
            )
        if length > limit:
            return _refusal(
                request,
                status=413,
                code="request_too_large",
                detail=_("The request body is larger than %(limit)d bytes.") % {"limit": limit},
            )
        if length == 0:
            return None
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return _refusal(
                request,
                status=400,
                code="validation_error",
                detail=_("The request body is not UTF-8."),
                field="body",
            )
        if _nesting_exceeds(text, settings.API_MAX_JSON_DEPTH):
            return _refusal(
                request,
                status=400,
                code="validation_error",
                detail=_("The request body is nested more than %(depth)d levels deep.")
                % {"depth": settings.API_MAX_JSON_DEPTH},
                field="body",
            )
        return None
