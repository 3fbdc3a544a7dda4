from django.utils import translation
from rest_framework.views import APIView

from em_agent.models import Agent


class AgentAPIView(APIView):
    """Base for agent endpoints: texts in the request's language (Accept-Language), else the agent's."""

    agent: Agent

    def perform_authentication(self, request) -> None:
        try:
            super().perform_authentication(request)
        finally:
            # Before the permission checks, whose refusals are rendered in this language.
            self._activate_language(request)

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self.agent = request.user.agent

    def _activate_language(self, request) -> None:
        if "HTTP_ACCEPT_LANGUAGE" in request.META:
            return  # LocaleMiddleware already chose from Accept-Language
        user = getattr(request, "_user", None)
        agent = getattr(user, "agent", None) if user is not None and user.is_authenticated else None
        if agent is not None:
            translation.activate(agent.language)
            request._request.LANGUAGE_CODE = agent.language
