from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response

from em_agent.api.docs import ERROR_RESPONSES
from em_agent.api.permissions import IsAgent
from em_agent.api.views import AgentAPIView
from em_agent.selectors import agent_get_profile
from em_agent.serializers import ME_EXAMPLE, MeOutput


class MeApi(AgentAPIView):
    # Works before activation and MFA enrolment, so the app can route the agent.
    permission_classes = [IsAgent]

    @extend_schema(
        operation_id="me",
        summary="The logged-in agent",
        responses={200: MeOutput, **ERROR_RESPONSES(401, 403)},
        examples=[OpenApiExample("Activated agent", value=ME_EXAMPLE, response_only=True)],
        tags=["agent"],
    )
    def get(self, request):
        agent = agent_get_profile(user=request.user)
        return Response(MeOutput(agent, context={"agent": agent}).data)
