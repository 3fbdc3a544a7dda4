from django.db.models import QuerySet

from em_agent.models import Agent
from timeoff.models import AbsenceRequest


def absence_request_list_for_agent(*, agent: Agent) -> QuerySet[AbsenceRequest]:
    """The agent's absence requests, newest first."""
    return AbsenceRequest.objects.filter(agent=agent).select_related("exception_code").order_by("-id")


def absence_request_get_for_agent(*, agent: Agent, id: int) -> AbsenceRequest | None:
    return AbsenceRequest.objects.filter(agent=agent, pk=id).select_related("exception_code").first()
