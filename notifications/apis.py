from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from em_agent.api.docs import ERROR_RESPONSES
from em_agent.api.pagination import CursorPagination
from em_agent.api.permissions import IsMfaSatisfiedAgent
from em_agent.api.views import AgentAPIView
from notifications.models import Platform
from notifications.selectors import device_get_for_agent, device_list_for_agent
from notifications.services import device_register, device_unregister


class DeviceOutput(serializers.Serializer):
    token = serializers.CharField()
    platform = serializers.ChoiceField(choices=Platform.choices)
    created_at = serializers.DateTimeField(help_text="In the agent's time zone.")


class DeviceListApi(AgentAPIView):
    # Allowed before activation (the app asks for push permission first), but not past the MFA gate:
    # a password alone must not be enough to receive someone's notifications.
    permission_classes = [IsMfaSatisfiedAgent]

    @extend_schema_serializer(component_name="DeviceInput")
    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=512, help_text="The device's FCM registration token.")
        platform = serializers.ChoiceField(choices=Platform.choices)

    @extend_schema(
        operation_id="devices_list",
        summary="This agent's registered devices, newest first",
        responses={200: DeviceOutput(many=True), **ERROR_RESPONSES(401, 403)},
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
        responses={201: DeviceOutput, 200: DeviceOutput, **ERROR_RESPONSES(400, 401, 403)},
        examples=[
            OpenApiExample(
                "Android",
                value={"token": "fcm-registration-token", "platform": "android"},
                request_only=True,
            )
        ],
        tags=["agent"],
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        device, created = device_register(agent=self.agent, **data.validated_data)
        return Response(
            DeviceOutput(device).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class DeviceDetailApi(AgentAPIView):
    permission_classes = [IsMfaSatisfiedAgent]

    @extend_schema(
        operation_id="devices_unregister",
        summary="Stop push to this device",
        responses={204: None, **ERROR_RESPONSES(401, 403, 404)},
        tags=["agent"],
    )
    def delete(self, request, token: str):
        device_unregister(device=device_get_for_agent(agent=self.agent, token=token))
        return Response(status=status.HTTP_204_NO_CONTENT)
