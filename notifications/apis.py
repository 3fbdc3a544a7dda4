from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from em_agent.api.docs import error_responses
from em_agent.api.pagination import CursorPagination
from em_agent.api.permissions import IsAgent, mfa_satisfied
from em_agent.api.views import AgentAPIView
from notifications.models import Platform
from notifications.selectors import device_get_for_agent, device_list_for_agent
from notifications.services import device_register, device_unregister


class DeviceOutput(serializers.Serializer):
    token = serializers.CharField()
    platform = serializers.ChoiceField(choices=Platform.choices)
    trusted = serializers.BooleanField(
        help_text="Registered from a session that met the organisation's MFA policy; only trusted devices get push."
    )
    created_at = serializers.DateTimeField(help_text="In the agent's time zone.")


DEVICE_EXAMPLE = {
    "token": "fcm-registration-token",
    "platform": "android",
    "trusted": True,
    "created_at": "2026-12-01T09:00:00+01:00",
}


class DeviceListApi(AgentAPIView):
    """The agent's push addresses. Allowed before activation and MFA enrolment (the app registers
    right after login); a device registered without the organisation's MFA is not trusted and gets no
    push until the app registers it again from a session that used MFA."""

    permission_classes = [IsAgent]

    @extend_schema_serializer(component_name="DeviceInput")
    class InputSerializer(serializers.Serializer):
        token = serializers.RegexField(
            r"^[A-Za-z0-9_:.\-]+$", max_length=512, help_text="The device's FCM registration token."
        )
        platform = serializers.ChoiceField(choices=Platform.choices)

    @extend_schema(
        operation_id="devices_list",
        summary="This agent's registered devices, newest first",
        responses={200: DeviceOutput(many=True), **error_responses("permission_denied")},
        tags=["agent"],
    )
    def get(self, request):
        paginator = CursorPagination()
        page = paginator.paginate_queryset(device_list_for_agent(agent=self.agent), request, view=self)
        return paginator.get_paginated_response(DeviceOutput(page, many=True).data)

    @extend_schema(
        operation_id="devices_register",
        summary="Register this device for push notifications",
        request=InputSerializer,
        description=(
            "201 for a new token, 200 for a known one; a token moves to the latest agent that registers "
            "it. Allowed before activation and MFA enrolment; see `trusted`."
        ),
        responses={
            201: DeviceOutput,
            200: DeviceOutput,
            **error_responses("validation_error", "permission_denied"),
        },
        examples=[
            OpenApiExample(
                "Android",
                value={"token": "fcm-registration-token", "platform": "android"},
                request_only=True,
            ),
            OpenApiExample(
                "Registered", value=DEVICE_EXAMPLE, response_only=True, status_codes=["201", "200"]
            ),
        ],
        tags=["agent"],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        device, created = device_register(
            agent=self.agent, trusted=mfa_satisfied(request=request), **data.validated_data
        )
        return Response(
            DeviceOutput(device).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DeviceDetailApi(AgentAPIView):
    """One of the agent's devices."""

    permission_classes = [IsAgent]

    @extend_schema(
        operation_id="devices_unregister",
        summary="Stop push to this device",
        responses={204: None, **error_responses("permission_denied", "not_found")},
        tags=["agent"],
    )
    def delete(self, request, token: str):
        device_unregister(device=device_get_for_agent(agent=self.agent, token=token))
        return Response(status=status.HTTP_204_NO_CONTENT)
