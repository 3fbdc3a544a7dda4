from allauth.account.adapter import DefaultAccountAdapter
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
