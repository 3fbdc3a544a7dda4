from django.utils import timezone, translation
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    OpenApiExample,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response

from em_agent.api.docs import (
    BODY_ERRORS,
    PAGINATION,
    PAGINATION_RULES,
    error_responses,
    operation_extensions,
    paginated,
)
from em_agent.api.inputs import BodyInput
from em_agent.api.pagination import CursorPagination
from em_agent.api.permissions import IsAgent, mfa_satisfied
from em_agent.api.views import AgentAPIView
from notifications import kinds
from notifications.models import Notification, Platform
from notifications.selectors import (
    device_get_for_agent,
    device_list_for_agent,
    email_preferences_for_user,
    notification_get_for_user,
    notification_list_for_user,
    notification_unacknowledged_count,
)
from notifications.services import (
    device_register,
    device_unregister,
    email_preferences_set,
    notification_acknowledge,
    notification_delete,
)


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
    class InputSerializer(BodyInput):
        token = serializers.RegexField(
            r"^[A-Za-z0-9_:.\-]+$",
            max_length=512,
            trim_whitespace=False,
            help_text="The device's FCM registration token.",
        )
        platform = serializers.ChoiceField(choices=Platform.choices)

    @extend_schema(
        operation_id="devices_list",
        summary="This agent's registered devices, newest first",
        parameters=PAGINATION,
        responses={
            200: paginated(DeviceOutput, "DevicePage"),
            **error_responses("validation_error", "permission_denied"),
        },
        extensions=operation_extensions(field_rules=PAGINATION_RULES),
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
            **error_responses(*BODY_ERRORS, "permission_denied"),
        },
        extensions=operation_extensions(
            links={
                status_code: {
                    "UnregisterDevice": {
                        "operationId": "devices_unregister",
                        "parameters": {"token": "$response.body#/token"},
                    }
                }
                for status_code in (200, 201)
            }
        ),
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


class NotificationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=kinds.KIND_CHOICES)
    title = serializers.CharField(help_text="In the reader's language.")
    body = serializers.CharField(help_text="In the reader's language; dates in the agent's zone.")
    created_at = serializers.DateTimeField(help_text="In the agent's time zone.")
    acknowledged = serializers.BooleanField()
    # The metaclass takes declared fields out of the class: this does not hide Serializer.data.
    data = serializers.DictField(  # type: ignore[assignment]
        help_text="Ids the app needs, e.g. `swap_id` for a swap offer."
    )
    actions = serializers.ListField(
        child=serializers.CharField(), help_text="e.g. `accept_swap`, `decline_swap`; empty once it expired."
    )
    expires_at = serializers.DateTimeField(allow_null=True, help_text="For actionable kinds.")

    def to_representation(self, notification: Notification) -> dict:
        definition = kinds.kind_get(notification.kind)
        title, body = kinds.render(
            definition, notification.params, language=translation.get_language(), zone=self.context["zone"]
        )
        live = notification.expires_at is None or notification.expires_at > self.context["now"]
        return {
            "id": notification.pk,
            "kind": notification.kind,
            "title": title,
            "body": body,
            "created_at": serializers.DateTimeField().to_representation(notification.created_at),
            "acknowledged": notification.acknowledged_at is not None,
            "data": kinds.data_for(definition, notification.params),
            "actions": list(definition.actions) if live else [],
            "expires_at": (
                serializers.DateTimeField().to_representation(notification.expires_at)
                if notification.expires_at
                else None
            ),
        }


NOTIFICATION_EXAMPLE = {
    "id": 41,
    "kind": "swap_offer",
    "title": "Shift swap offer",
    "body": "Bram Bakker offers to swap shifts with you on Tuesday 1 December.",
    "created_at": "2026-11-28T14:05:12+01:00",
    "acknowledged": False,
    "data": {"swap_id": 17, "date": "2026-12-01"},
    "actions": ["accept_swap", "decline_swap"],
    "expires_at": "2026-12-01T07:00:00+01:00",
}


class NotificationListApi(AgentAPIView):
    """The inbox: the last 7 days, not deleted, newest first."""

    @extend_schema(
        operation_id="notifications_list",
        summary="The inbox",
        parameters=PAGINATION,
        responses={
            200: paginated(NotificationOutput, "NotificationPage"),
            **error_responses("validation_error", "activation_required", "mfa_enrollment_required"),
        },
        extensions=operation_extensions(
            field_rules=PAGINATION_RULES,
            links={
                200: {
                    "AcknowledgeNotification": {
                        "operationId": "notifications_acknowledge",
                        "parameters": {"notification_id": "$response.body#/results/0/id"},
                    },
                    "DeleteNotification": {
                        "operationId": "notifications_delete",
                        "parameters": {"notification_id": "$response.body#/results/0/id"},
                    },
                }
            },
        ),
        examples=[
            OpenApiExample(
                "Inbox", value={"results": [NOTIFICATION_EXAMPLE], "next": None}, response_only=True
            )
        ],
        tags=["notifications"],
    )
    def get(self, request):
        paginator = CursorPagination()
        page = paginator.paginate_queryset(notification_list_for_user(user=request.user), request, view=self)
        context = {"zone": self.agent.zone, "now": timezone.now()}
        return paginator.get_paginated_response(NotificationOutput(page, many=True, context=context).data)


class UnacknowledgedCountApi(AgentAPIView):
    """The bell. Passive: the app polls it on a timer, so it does not keep the session alive."""

    passive_activity = True

    class CountOutput(serializers.Serializer):
        count = serializers.IntegerField()

    @extend_schema(
        operation_id="notifications_unacknowledged_count",
        summary="Unacknowledged notifications (passive: does not extend the session)",
        responses={200: CountOutput, **error_responses("activation_required", "mfa_enrollment_required")},
        examples=[OpenApiExample("Three unread", value={"count": 3}, response_only=True)],
        tags=["notifications"],
    )
    def get(self, request):
        return Response({"count": notification_unacknowledged_count(user=request.user)})


class NotificationAcknowledgeApi(AgentAPIView):
    """Marks one notification read."""

    @extend_schema(
        operation_id="notifications_acknowledge",
        summary="Acknowledge (mark read)",
        request=None,
        responses={
            200: NotificationOutput,
            **error_responses("activation_required", "mfa_enrollment_required", "not_found"),
        },
        extensions=operation_extensions(
            links={
                200: {
                    "DeleteNotification": {
                        "operationId": "notifications_delete",
                        "parameters": {"notification_id": "$response.body#/id"},
                    }
                }
            }
        ),
        examples=[
            OpenApiExample("Read", value={**NOTIFICATION_EXAMPLE, "acknowledged": True}, response_only=True)
        ],
        tags=["notifications"],
    )
    def post(self, request, notification_id: int):
        notification = notification_get_for_user(user=request.user, notification_id=notification_id)
        notification = notification_acknowledge(notification=notification)
        context = {"zone": self.agent.zone, "now": timezone.now()}
        return Response(NotificationOutput(notification, context=context).data)


class NotificationDetailApi(AgentAPIView):
    """One notification."""

    @extend_schema(
        operation_id="notifications_delete",
        summary="Delete a read notification",
        responses={
            204: None,
            **error_responses(
                "activation_required", "mfa_enrollment_required", "not_found", "not_acknowledged"
            ),
        },
        tags=["notifications"],
    )
    def delete(self, request, notification_id: int):
        notification = notification_get_for_user(user=request.user, notification_id=notification_id)
        notification_delete(notification=notification)
        return Response(status=status.HTTP_204_NO_CONTENT)


# The kinds an agent receives, and so may have emailed or not (supervisors' kinds are not theirs).
AGENT_KINDS = [name for name, kind in kinds.KINDS.items() if kind.audience == "agent"]


@extend_schema_field(
    {
        "type": "object",
        "properties": {name: {"type": "boolean"} for name in AGENT_KINDS},
        "additionalProperties": False,
    }
)
class EmailFlagsField(serializers.DictField):
    """Kind → email on or off, for the kinds an agent receives and no others."""

    child = serializers.BooleanField()

    def to_internal_value(self, data):
        flags = super().to_internal_value(data)
        unknown = sorted(set(flags) - set(AGENT_KINDS))
        if unknown:
            raise serializers.ValidationError(_("Unknown kinds: %(kinds)s") % {"kinds": ", ".join(unknown)})
        return flags


class PreferencesApi(AgentAPIView):
    """Email per kind (push always stays on)."""

    @extend_schema_serializer(component_name="NotificationPreferences")
    class PreferencesSerializer(BodyInput):
        email = EmailFlagsField(
            help_text="Kind → whether it is also sent by email. PUT may name only the kinds it changes."
        )

    _EXAMPLE = {"email": {"schedule_adjusted": True, "swap_offer": False}}

    @extend_schema(
        operation_id="notifications_preferences",
        summary="Email preferences per kind",
        responses={
            200: PreferencesSerializer,
            **error_responses("activation_required", "mfa_enrollment_required"),
        },
        examples=[OpenApiExample("Preferences", value=_EXAMPLE, response_only=True)],
        tags=["notifications"],
    )
    def get(self, request):
        return Response({"email": email_preferences_for_user(user=request.user)})

    @extend_schema(
        operation_id="notifications_preferences_update",
        summary="Turn email on or off per kind",
        request=PreferencesSerializer,
        responses={
            200: PreferencesSerializer,
            **error_responses(*BODY_ERRORS, "activation_required", "mfa_enrollment_required"),
        },
        examples=[
            OpenApiExample("No swap emails", value={"email": {"swap_offer": False}}, request_only=True)
        ],
        tags=["notifications"],
    )
    def put(self, request):
        data = self.PreferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email_preferences_set(user=request.user, email=data.validated_data["email"])
        return Response({"email": email_preferences_for_user(user=request.user)})
