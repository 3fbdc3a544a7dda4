from django.urls import path

from timeoff.apis import AbsenceRequestDetailApi, AbsenceRequestListApi

urlpatterns = [
    path("absence-requests", AbsenceRequestListApi.as_view(), name="absence-requests"),
    path(
        "absence-requests/<int:absence_id>", AbsenceRequestDetailApi.as_view(), name="absence-request-detail"
    ),
]
