from allauth.account.adapter import get_adapter as get_account_adapter
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.response import Response

from activation.services import agent_activate
from em_agent.api.docs import BODY_ERRORS, RETRY_AFTER, error_responses
from em_agent.api.inputs import BodyInput
from em_agent.api.permissions import IsAgent
from em_agent.api.views import AgentAPIView
from em_agent.selectors import agent_get_profile
from em_agent.serializers import ME_EXAMPLE, MeOutput


class ActivationApi(AgentAPIView):
    """Redeems the activation code a supervisor gave the agent."""

    permission_classes = [IsAgent]

    @extend_schema_serializer(component_name="ActivationInput")
    class InputSerializer(BodyInput):
        # Letters and digits, with the spaces and dashes a person types between groups.
        code = serializers.RegexField(
            r"^[A-Za-z0-9 -]*[A-Za-z0-9][A-Za-z0-9 -]*$",
            max_length=32,
            trim_whitespace=False,
            help_text="As given by the supervisor, e.g. `K7QW2-MX9PD`.",
        )

    @extend_schema(
        operation_id="activation",
        summary="Activate the app with a code from the supervisor",
        description=(
            "One answer (`invalid_activation_code`) for a wrong, expired, used, replaced or someone else's "
            "code. Failed attempts are limited per agent (5 an hour) and per client address: then 429 "
            "`throttled` with `Retry-After`."
        ),
        parameters=[RETRY_AFTER],
        request=InputSerializer,
        responses={
            200: MeOutput,
            **error_responses(
                *BODY_ERRORS,
                "invalid_activation_code",
                "permission_denied",
                "already_activated",
                "throttled",
            ),
        },
        examples=[
            OpenApiExample("Code", value={"code": "K7QW2-MX9PD"}, request_only=True),
            OpenApiExample("Activated", value=ME_EXAMPLE, response_only=True),
        ],
        tags=["agent"],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agent_activate(
            agent=self.agent,
            code=data.validated_data["code"],
            address=get_account_adapter(request).get_client_ip(request._request),
        )
        agent = agent_get_profile(user=request.user)
        return Response(MeOutput(agent, context={"agent": agent}).data)
