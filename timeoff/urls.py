from django.urls import path

from timeoff.apis import (
    AbsenceRequestDetailApi,
    AbsenceRequestListApi,
    TimeOffBalancesApi,
    TimeOffPreviewApi,
    TimeOffRequestCancelApi,
    TimeOffRequestDetailApi,
    TimeOffRequestListApi,
)
from timeoff.interval_apis import TimeOffIntervalRequestApi, TimeOffIntervalsApi

urlpatterns = [
    path("absence-requests", AbsenceRequestListApi.as_view(), name="absence-requests"),
    path(
        "absence-requests/<int:absence_id>", AbsenceRequestDetailApi.as_view(), name="absence-request-detail"
    ),
    path("time-off/requests", TimeOffRequestListApi.as_view(), name="time-off-requests"),
    # Before the id route: "preview" is not an id, but the order keeps it unambiguous to a reader.
    path("time-off/requests/preview", TimeOffPreviewApi.as_view(), name="time-off-preview"),
    path(
        "time-off/requests/<int:request_id>",
        TimeOffRequestDetailApi.as_view(),
        name="time-off-request-detail",
    ),
    path(
        "time-off/requests/<int:request_id>/cancel",
        TimeOffRequestCancelApi.as_view(),
        name="time-off-request-cancel",
    ),
    path("time-off/balances", TimeOffBalancesApi.as_view(), name="time-off-balances"),
    path("time-off/intervals", TimeOffIntervalsApi.as_view(), name="time-off-intervals"),
    path(
        "time-off/interval-requests", TimeOffIntervalRequestApi.as_view(), name="time-off-interval-requests"
    ),
]
