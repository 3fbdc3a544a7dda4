from django.urls import path

from schedules.apis import (
    ActivityCodesApi,
    CalendarApi,
    ScheduleApi,
    ScheduleRequestDetailApi,
    ScheduleRequestListApi,
)
from schedules.feed_apis import FeedUrlApi

urlpatterns = [
    path("schedule", ScheduleApi.as_view(), name="schedule"),
    path("schedule/calendar", CalendarApi.as_view(), name="schedule-calendar"),
    path("activity-codes", ActivityCodesApi.as_view(), name="activity-codes"),
    path("schedule/requests", ScheduleRequestListApi.as_view(), name="schedule-requests"),
    path(
        "schedule/requests/<int:request_id>",
        ScheduleRequestDetailApi.as_view(),
        name="schedule-request-detail",
    ),
    path("schedule/feed-url", FeedUrlApi.as_view(), name="schedule-feed-url"),
]
