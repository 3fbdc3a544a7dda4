from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation.trans_real import parse_accept_lang_header
from rest_framework.views import APIView

from em_agent.models import Agent
from em_agent.policies import Feature, wfm_feature_require

_SUPPORTED_LANGUAGES = {code for code, _name in settings.LANGUAGES}


def _asks_for_a_supported_language(request) -> bool:
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    return any(
        language.split("-")[0].lower() in _SUPPORTED_LANGUAGES
        for language, _q in parse_accept_lang_header(header)
    )


class AgentAPIView(APIView):
    """Base for agent endpoints.

    - Texts in the request's language (Accept-Language, when it names one we have), else the agent's.
    - Datetimes rendered in the agent's own zone (the contract answers in the agent's zone).
    """

    agent: Agent
    # An endpoint only some WFM systems have (em_agent.policies): 409 `not_available_for_wfm_system`
    # for the others, before its input is read.
    wfm_feature: Feature | None = None

    def perform_authentication(self, request) -> None:
        try:
            super().perform_authentication(request)
        finally:
            # Before the permission checks, whose refusals are rendered in this language.
            self._activate_agent_locale(request)

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        self.agent = request.user.agent
        method = request.method.lower()
        # A method the view does not have stays 405, whatever the organisation.
        if self.wfm_feature is not None and method != "options" and hasattr(self, method):
            wfm_feature_require(organization=self.agent.organization, feature=self.wfm_feature)

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            # Threads serve other requests next: never leak this agent's zone into them.
            timezone.deactivate()

    def _activate_agent_locale(self, request) -> None:
        user = getattr(request, "_user", None)
        agent = getattr(user, "agent", None) if user is not None and user.is_authenticated else None
        if agent is None:
            return
        timezone.activate(agent.zone)
        if not _asks_for_a_supported_language(request._request):
            translation.activate(agent.language)
            request._request.LANGUAGE_CODE = agent.language
