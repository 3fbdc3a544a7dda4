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
