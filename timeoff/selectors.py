import datetime as dt
from collections.abc import Sequence

from django.db.models import Prefetch, Q, QuerySet

from em_agent.models import Agent, User
from timeoff.models import AbsenceRequest, TimeOffDay, TimeOffRequest, TimeOffStatus, TimeOffSubstatus


def absence_request_list_for_agent(*, agent: Agent) -> QuerySet[AbsenceRequest]:
    """The agent's absence requests, newest first."""
    return AbsenceRequest.objects.filter(agent=agent).select_related("exception_code").order_by("-id")


def absence_request_get_for_agent(*, agent: Agent, id: int) -> AbsenceRequest | None:
    return AbsenceRequest.objects.filter(agent=agent, pk=id).select_related("exception_code").first()


def supervisors_to_tell(agent: Agent) -> list[User]:
    """The agent's own supervisor; an agent without one (or whose supervisor left) reaches every
    supervisor of its organisation, so nothing an agent files goes unseen."""
    supervisor = agent.supervisor
    if (
        supervisor is not None
        and supervisor.is_supervisor
        and supervisor.organization_id == agent.organization_id
    ):
        return [supervisor]
    return list(User.objects.filter(organization_id=agent.organization_id, is_staff=True, is_active=True))


def _with_details(requests: QuerySet[TimeOffRequest]) -> QuerySet[TimeOffRequest]:
    return requests.select_related(
        "agent", "activity_code", "decided_by", "decided_by_rule"
    ).prefetch_related(Prefetch("days", queryset=TimeOffDay.objects.order_by("date")))


def time_off_request_list_for_agent(
    *, agent: Agent, month: dt.date, statuses: Sequence[str] = (), kinds: Sequence[str] = ()
) -> QuerySet[TimeOffRequest]:
    """The agent's requests with a day in the month (its first day given), newest first."""
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    requests = TimeOffRequest.objects.filter(agent=agent, start_date__lt=following, end_date__gte=month)
    if statuses:
        requests = requests.filter(status__in=statuses)
    if kinds:
        requests = requests.filter(kind__in=kinds)
    return _with_details(requests).order_by("-id")


def time_off_request_get_for_agent(*, agent: Agent, id: int, lock: bool = False) -> TimeOffRequest | None:
    if lock:
        # Only the request's own row (see schedules.decisions.decision_lock).
        return (
            TimeOffRequest.objects.select_for_update(of=("self",))
            .select_related("agent__organization", "activity_code")
            .filter(agent=agent, pk=id)
            .first()
        )
    return _with_details(TimeOffRequest.objects.filter(agent=agent, pk=id)).first()


def waitlist_position(request: TimeOffRequest) -> int | None:
    """The request's place (1: next) among the organisation's waitlisted requests that share one of
    its days: those ahead of it are the ones a freed place on its days goes to first."""
    if request.status != TimeOffStatus.PENDING or request.substatus != TimeOffSubstatus.WAITLISTED:
        return None
    ahead = (
        TimeOffRequest.objects.filter(
            agent__organization_id=request.agent.organization_id,
            status=TimeOffStatus.PENDING,
            substatus=TimeOffSubstatus.WAITLISTED,
            start_date__lte=request.end_date,
            end_date__gte=request.start_date,
        )
        .filter(
            Q(waitlisted_at__lt=request.waitlisted_at)
            | Q(waitlisted_at=request.waitlisted_at, pk__lt=request.pk)
        )
        .filter(days__date__in=[day.date for day in request.days.all()])
        .distinct()
        .count()
    )
    return ahead + 1
