from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response

from em_agent.api.docs import error_responses
from em_agent.api.permissions import IsAgent
from em_agent.api.views import AgentAPIView
from em_agent.selectors import agent_get_profile
from em_agent.serializers import ME_EXAMPLE, MeOutput


class MeApi(AgentAPIView):
    """The logged-in agent: who, where, and what the app must do next (activate, enrol MFA)."""

    # Works before activation and MFA enrolment, so the app can route the agent.
    permission_classes = [IsAgent]

    @extend_schema(
        operation_id="me",
        summary="The logged-in agent",
        description=(
            "Works before activation and before MFA enrolment, so the app can route: `activated` false "
            "means ask for the activation code; `organization.mfa_required` with `mfa_enrolled` false "
            "means enrol TOTP. Datetimes are in the agent's own time zone."
        ),
        responses={200: MeOutput, **error_responses("permission_denied")},
        examples=[OpenApiExample("Activated agent", value=ME_EXAMPLE, response_only=True)],
        tags=["agent"],
    )
    def get(self, request):
        agent = agent_get_profile(user=request.user)
        return Response(MeOutput(agent, context={"agent": agent}).data)
