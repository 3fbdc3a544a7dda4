import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from em_agent import sessions
from em_agent.api.exceptions import error_body

SESSION_TOKEN_HEADER = "X-Session-Token"  # noqa: S105  (a header name)
_GUARDED_PREFIXES = ("/api/", "/_allauth/")


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
        error_body("session_expired", _("Your session has expired. Please log in again.")),
        status=401,
    )


class InactivityTimeoutMiddleware:
    """Ends app sessions after the idle timeout or the absolute lifetime (see docs/sessions.md).

    It runs before allauth's and DRF's views, so an expired token is flushed before anything can use
    it, and it hands the loaded session to the DRF authentication to save a second lookup.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        token = request.headers.get(SESSION_TOKEN_HEADER)
        if not token or not request.path.startswith(_GUARDED_PREFIXES):
            return None
        session = sessions.lookup(token)
        if session is None:
            return session_expired_response() if sessions.was_expired(token) else None
        if sessions.session_user_id(session) is None:
            return None  # a login still in progress (MFA stage): allauth times its stages itself
        now = time.time()
        if sessions.expiry_reason(session, now=now) is not None:
            sessions.end(session, token=token)
            return session_expired_response()
        if not _is_passive(view_func):
            sessions.touch(session, now=now)
        request.em_app_session = session  # type: ignore[attr-defined]
        return None
