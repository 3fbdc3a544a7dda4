from allauth.core.internal.sessionkit import get_session_user
from allauth.headless.contrib.rest_framework.authentication import XSessionTokenAuthentication
from rest_framework import exceptions

from em_agent import sessions


class SessionTokenAuthentication(XSessionTokenAuthentication):
    """allauth's X-Session-Token authentication, strict: a missing or dead token is a 401, never a
    403, with DRF's own (translated) message."""

    allow_anonymous_users = False
    allow_invalid_session_tokens = False

    def authenticate(self, request):
        token = self.get_session_token(request)
        if not token:
            return None
        # The inactivity middleware has already looked the session up (and checked its age).
        session = getattr(request._request, "em_app_session", None)
        if session is None or session.session_key != token:
            session = sessions.lookup(token)
        user = get_session_user(session) if session is not None else None
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed()
        return user, session


from em_agent.api import schema  # noqa: E402, F401  (registers the OpenAPI security scheme)
