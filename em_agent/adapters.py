import base64
import hashlib

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from cryptography.fernet import Fernet
from django.conf import settings
from django.utils import translation


class AccountAdapter(DefaultAccountAdapter):
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
