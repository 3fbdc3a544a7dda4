"""The project's URLs plus `bench/bare/<agent_id>?start=&end=&zone=`: the schedule endpoint's work
without its framework. `bench/schedule_api.py` compares its throughput with the real endpoint's on
the same server.

The baseline must do exactly the work it is compared with (the same queries, bounds and rows, the
same body), or the ratio flatters or wrongs the endpoint: so it calls the endpoint's own selector,
`schedule_days_for_agent`, and encodes its answer as `json_with_etag` does. What it leaves out is
what the ratio is about: the session, authentication and the gate, DRF and its query serializer,
the ETag. The agent's zone comes in the URL: the endpoint has it from the logged-in agent, loaded by
the authentication with the user, which is part of what the bare view leaves out."""

import datetime as dt
import json

from django.http import HttpRequest, HttpResponse
from django.urls import path

from em_agent.models import Agent
from em_agent.urls import handler400, handler403, handler404, handler500
from em_agent.urls import urlpatterns as project_urls
from schedules.selectors import schedule_days_for_agent


def bare_schedule(request: HttpRequest, agent_id: int) -> HttpResponse:
    agent = Agent(pk=agent_id, timezone=request.GET["zone"])
    days = schedule_days_for_agent(
        agent=agent,
        start=dt.date.fromisoformat(request.GET["start"]),
        end=dt.date.fromisoformat(request.GET["end"]),
    )
    body = json.dumps({"days": days}, ensure_ascii=False, separators=(",", ":")).encode()
    return HttpResponse(body, content_type="application/json")


urlpatterns = [path("bench/bare/<int:agent_id>", bare_schedule), *project_urls]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
