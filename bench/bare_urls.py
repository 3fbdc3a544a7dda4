"""The project's URLs plus `bench/bare/<agent_id>?start=&end=`: the schedule endpoint's two queries
and the same JSON, built from `.values()` in a plain Django view without authentication, the
session, DRF or the ETag. `bench/schedule_api.py` compares its throughput with the real endpoint's
on the same server."""

import datetime as dt
import zoneinfo

from django.http import HttpRequest, JsonResponse
from django.urls import path

from em_agent.urls import handler400, handler403, handler404, handler500
from em_agent.urls import urlpatterns as project_urls
from schedules.models import Activity, ScheduleDay


def bare_schedule(request: HttpRequest, agent_id: int) -> JsonResponse:
    start = dt.date.fromisoformat(request.GET["start"])
    end = dt.date.fromisoformat(request.GET["end"])
    days = {
        row["date"]: row
        for row in ScheduleDay.objects.filter(
            agent_id=agent_id, date__gte=start, date__lte=end, published=True
        ).values("date", "published", "note")
    }
    activities: dict[dt.date, list[dict]] = {}
    rows = (
        Activity.objects.filter(
            agent_id=agent_id, day__date__gte=start, day__date__lte=end, day__published=True
        )
        .order_by("start")
        # The agent's zone comes with the activities: there is no logged-in agent to take it from.
        .values(
            "id",
            "day__date",
            "start",
            "end",
            "note",
            "activity_code__code",
            "activity_code__name",
            "activity_code__category",
            "activity_code__color",
            "agent__timezone",
        )
    )
    for row in rows:
        zone = zoneinfo.ZoneInfo(row["agent__timezone"])
        activities.setdefault(row["day__date"], []).append(
            {
                "id": row["id"],
                "activity_code": {
                    "code": row["activity_code__code"],
                    "name": row["activity_code__name"],
                    "category": row["activity_code__category"],
                    "color": row["activity_code__color"],
                },
                "start": row["start"].astimezone(zone).isoformat(timespec="seconds"),
                "end": row["end"].astimezone(zone).isoformat(timespec="seconds"),
                "note": row["note"],
            }
        )
    result = []
    for offset in range((end - start).days + 1):
        date = start + dt.timedelta(days=offset)
        day = days.get(date)
        result.append(
            {
                "date": date.isoformat(),
                "published": day["published"] if day else False,
                "note": day["note"] if day else "",
                "activities": activities.get(date, []),
            }
        )
    return JsonResponse({"days": result})


urlpatterns = [path("bench/bare/<int:agent_id>", bare_schedule), *project_urls]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
