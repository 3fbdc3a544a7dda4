from django.urls import path

from schedules.apis import ActivityCodesApi, CalendarApi, ScheduleApi

urlpatterns = [
    path("schedule", ScheduleApi.as_view(), name="schedule"),
    path("schedule/calendar", CalendarApi.as_view(), name="schedule-calendar"),
    path("activity-codes", ActivityCodesApi.as_view(), name="activity-codes"),
]
