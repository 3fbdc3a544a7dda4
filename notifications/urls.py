from django.urls import path

from notifications.apis import DeviceDetailApi, DeviceListApi

urlpatterns = [
    path("devices", DeviceListApi.as_view(), name="devices"),
    path("devices/<str:token>", DeviceDetailApi.as_view(), name="device-detail"),
]
