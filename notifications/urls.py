from django.urls import path

from notifications.apis import (
    DeviceDetailApi,
    DeviceListApi,
    NotificationAcknowledgeApi,
    NotificationDetailApi,
    NotificationListApi,
    PreferencesApi,
    UnacknowledgedCountApi,
)

urlpatterns = [
    path("devices", DeviceListApi.as_view(), name="devices"),
    path("devices/<str:token>", DeviceDetailApi.as_view(), name="device-detail"),
    path("notifications", NotificationListApi.as_view(), name="notifications"),
    path(
        "notifications/unacknowledged-count",
        UnacknowledgedCountApi.as_view(),
        name="notifications-unacknowledged-count",
    ),
    path("notifications/preferences", PreferencesApi.as_view(), name="notifications-preferences"),
    path("notifications/<int:notification_id>", NotificationDetailApi.as_view(), name="notification-detail"),
    path(
        "notifications/<int:notification_id>/acknowledge",
        NotificationAcknowledgeApi.as_view(),
        name="notification-acknowledge",
    ),
]
