"""Signal receivers for login bookkeeping. Signals, because logins and factor changes happen inside
allauth's flows; the receivers only stamp the session, no business rules."""

from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_added
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from em_agent import sessions


@receiver(user_logged_in)
def stamp_new_session(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        sessions.stamp_login(session=request.session, user=user)


@receiver(authenticator_added)
def count_enrolment_as_mfa(sender, request, user, authenticator, **kwargs) -> None:
    # Activating TOTP needs the password again and a valid code from the new authenticator, so the
    # session has proved both factors; the agent need not log in again to pass the MFA gate.
    if authenticator.type == Authenticator.Type.TOTP and request is not None:
        record_authentication(request, user, "mfa", type="totp", id=authenticator.pk)
