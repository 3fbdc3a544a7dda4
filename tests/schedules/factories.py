import datetime as dt

import factory

from schedules.models import ActivityCode
from schedules.services import ActivitySpec, DayPlan, schedule_days_apply


class ActivityCodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActivityCode
        django_get_or_create = ("organization", "code")

    code = factory.Sequence(lambda n: f"C{n}")
    name = factory.LazyAttribute(lambda code: code.code.title())
    category = "work"
    color = "#4A90D9"
    open_for_requests = False


def local(agent, date: dt.date, hhmm: str) -> dt.datetime:
    """A wall-clock time on a date in the agent's zone, as an aware datetime."""
    hour, minute = map(int, hhmm.split(":"))
    return dt.datetime.combine(date, dt.time(hour, minute), tzinfo=agent.zone)


def shift(
    agent, date: dt.date, *blocks: tuple[str, str, str], published: bool = True, note: str = "", **kwargs
):
    """Writes a day through the service: blocks of (code, "HH:MM", "HH:MM"); an end at or before the
    start runs into the next day."""
    specs = []
    for code, start, end in blocks:
        activity_code = ActivityCodeFactory(organization=agent.organization, code=code)
        begins = local(agent, date, start)
        ends = local(agent, date, end)
        if ends <= begins:
            ends = local(agent, date + dt.timedelta(days=1), end)
        specs.append(ActivitySpec(activity_code_id=activity_code.pk, start=begins, end=ends))
    return schedule_days_apply(
        plans=[DayPlan(agent=agent, date=date, activities=specs, published=published, note=note)],
        source="wfm",
        **kwargs,
    )
