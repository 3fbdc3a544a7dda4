import base64
import hashlib
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.headless.internal.restkit.response import ErrorResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from cryptography.fernet import Fernet
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from em_agent import login_limits

TOO_MANY = "too_many_login_attempts"


def _is_headless(request: HttpRequest | None) -> bool:
    return hasattr(getattr(request, "allauth", None), "headless")


def too_many_attempts_response(request: HttpRequest, *, retry_after: int, message: str) -> HttpResponse:
    """allauth's headless error body ({"status", "errors": [{"message", "code"}]}) with 429, not the
    400 form error allauth gives its failed-login limits, and the seconds to wait."""
    response = ErrorResponse(request, exception=ValidationError(message, code=TOO_MANY), status=429)
    response["Retry-After"] = str(retry_after)
    return response


class AccountAdapter(DefaultAccountAdapter):
    _login_attempt: login_limits.Reservation | None = None

    def is_open_for_signup(self, request) -> bool:
        # Agents come from the WFM and supervisors from the admin; nobody signs up.
        return False

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # Emails (the first-password invitation above all) go out in the agent's own language.
        user = context.get("user")
        agent = getattr(user, "agent", None) if user is not None else None
        language = agent.language if agent is not None else translation.get_language()
        with translation.override(language):
            super().send_mail(template_prefix, email, context)

    # Password attempts (the app's login, the admin's login page, a reauthentication: all call
    # authenticate) are limited by em_agent.login_limits, which reserves before the check. allauth's
    # own login_failed counter is not consumed here (no super()): it is left to the TOTP step.
    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        login = credentials.get("email") or credentials.get("username") or ""
        try:
            self._login_attempt = login_limits.login_attempt_reserve(
                login=login, address=self.get_client_ip(request)
            )
        except login_limits.LimitReached as limit:
            if _is_headless(request):
                raise ImmediateHttpResponse(
                    too_many_attempts_response(
                        request, retry_after=limit.retry_after, message=self.error_messages[TOO_MANY]
                    )
                ) from None
            # allauth's own pages (the admin's login) show it on the form, as allauth does.
            raise super().validation_error(TOO_MANY) from None

    def authenticate(self, request: HttpRequest, **credentials: Any) -> AbstractBaseUser | None:
        self._login_attempt = None
        user = super().authenticate(request, **credentials)  # calls pre_authenticate first
        if user is not None and self._login_attempt is not None:
            self._login_attempt.release()
        return user

    def validation_error(self, code: str, *args: Any) -> ValidationError:
        # allauth's other limits on failed codes (the TOTP step's login_failed, see settings) raise
        # this as a form error, 400; under /_allauth/ a limit answers 429 like the password's.
        request = context.request
        if code == TOO_MANY and request is not None and _is_headless(request):
            raise ImmediateHttpResponse(
                too_many_attempts_response(
                    request,
                    # allauth's window slides: by then every counted failure has left it.
                    retry_after=settings.LOGIN_FAILURE_WINDOW_SECONDS,
                    message=self.error_messages[TOO_MANY],
                )
            )
        return super().validation_error(code, *args)

    def set_password(self, user: AbstractBaseUser, password: str) -> None:
        super().set_password(user, password)
        # A completed password reset (which needs the mailbox) or a change (which needs the session
        # and the old password) ends the account's lockout, so its owner is never locked out for
        # good; the address's count stays. docs/sessions.md has the trade-off.
        email = getattr(user, "email", "")
        if email:
            login_limits.login_failures_clear(login=email)


class MFAAdapter(DefaultMFAAdapter):
    def _fernet(self) -> Fernet:
        digest = hashlib.sha256(("mfa-secret:" + settings.SECRET_KEY).encode()).digest()
        return Fernet(base64.urlsafe_b64encode(digest))

    def encrypt(self, text: str) -> str:
        # TOTP secrets are encrypted at rest, so a copy of the database alone cannot mint codes.
        return self._fernet().encrypt(text.encode()).decode()

    def decrypt(self, encrypted_text: str) -> str:
        return self._fernet().decrypt(encrypted_text.encode()).decode()

    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        # Where the organisation requires MFA, the agent may replace its TOTP only through a
        # supervisor (who resets it), never drop the only factor from a stolen session.
        agent = getattr(authenticator.user, "agent", None)
        if agent is not None and agent.organization.mfa_required:
            return authenticator.type != Authenticator.Type.TOTP
        return True
