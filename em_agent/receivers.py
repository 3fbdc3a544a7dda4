"""Signal receivers for login bookkeeping. Signals, because logins and factor changes happen inside
allauth's flows; the receivers only stamp the session and end sessions, no business rules."""

from allauth.account.internal.flows.login import record_authentication
from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_added
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from em_agent import sessions
from em_agent.models import User


@receiver(user_logged_in)
def stamp_new_session(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        sessions.stamp_login(request.session, user)


@receiver(authenticator_added)
def count_enrolment_as_mfa(sender, request, user, authenticator, **kwargs) -> None:
    # Activating TOTP needs the password again and a valid code from the new authenticator, so the
    # session has proved both factors; the agent need not log in again to pass the MFA gate.
    if authenticator.type == Authenticator.Type.TOTP and request is not None:
        record_authentication(request, user, "mfa", type="totp", id=authenticator.pk)


@receiver(pre_save, sender=User)
def remember_active_flag(sender, instance: User, **kwargs) -> None:
    if instance.pk:
        previous = User.objects.filter(pk=instance.pk).values_list("is_active", flat=True).first()
        instance._was_active = previous  # type: ignore[attr-defined]


@receiver(post_save, sender=User)
def end_sessions_of_deactivated_user(sender, instance: User, created: bool, **kwargs) -> None:
    # Whoever deactivates a user (a supervisor in the admin, the WFM sync, a shell), their sessions
    # end at once (ASVS 5.0 7.4.2), not when each token is next used.
    if not created and getattr(instance, "_was_active", False) and not instance.is_active:
        sessions.end_all_for_user(instance)
