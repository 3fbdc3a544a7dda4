"""Candidates of a large organisation: what SQL leaves out before the rules run (SwapCheck.narrow)
never changes the answer, the takers' sums counted in SQL are the ones the rules count in Python,
and the queries do not grow with the organisation."""

import datetime as dt
import random

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from schedules.models import Activity
from swaps.eligibility import SwapCheck, _takers_around, around_of, candidate_pool, shift_of
from swaps.models import SkillMatching, SwapKind, SwapSettings
from swaps.selectors import swap_candidates_for_agent
from tests.factories import AgentFactory, AgentSkillFactory, SkillFactory, TeamFactory
from tests.schedules.factories import ActivityCodeFactory, shift
from tests.swaps.test_eligibility import time_off
from tests.swaps.test_swaps import DAY, NOW

pytestmark = pytest.mark.django_db

ONE_DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def _activities(agent) -> list:
    days = sorted(set(Activity.objects.filter(agent=agent).values_list("day__date", flat=True)))
    return [a for date in days for a in shift_of(agent=agent, date=date).activities]


def test_the_takers_sums_in_sql_are_those_counted_in_python(org):
    ActivityCodeFactory(organization=org, code="LUNCH", paid=False)
    rng = random.Random(12)
    zones = ["Europe/Amsterdam", "America/New_York", "Asia/Tokyo"]
    agents = [AgentFactory(organization=org, timezone=zones[n % 3]) for n in range(9)]
    patterns = [
        [("WORK", "06:00", "10:00"), ("LUNCH", "10:00", "10:30"), ("WORK", "10:30", "14:30")],
        [("WORK", "09:00", "17:00")],
        [("WORK", "13:00", "17:00"), ("LUNCH", "17:00", "17:30"), ("WORK", "17:30", "21:30")],
        [("WORK", "20:00", "04:00")],  # into the next day
    ]
    for agent in agents:
        for offset in range(-9, 10):
            if rng.random() < 0.25:
                continue  # a day off
            shift(agent, DAY + offset * ONE_DAY, *rng.choice(patterns))
    requester = AgentFactory(organization=org)
    gets = []
    for offset, times in enumerate(
        [("07:00", "15:00"), ("14:00", "22:00"), ("21:00", "05:00"), ("10:00", "12:00")]
    ):
        shift(requester, DAY + offset * ONE_DAY, ("WORK", *times))
        gets.append(shift_of(agent=requester, date=DAY + offset * ONE_DAY))

    ids = [agent.pk for agent in agents]
    by_name = {agent.timezone: agent.zone for agent in agents}
    for shift_ in gets:
        in_sql = dict(_takers_around(Activity.objects.filter(agent_id__in=ids), gets=shift_, zones=by_name))
        in_python = {
            agent.pk: around_of(_activities(agent), gets=shift_, zone=agent.zone) for agent in agents
        }
        assert in_sql == in_python
    # Each of the rules' inputs took more than one value: the schedules exercise them.
    seen = [in_python[agent.pk] for agent in agents]
    assert {a.overlap for a in seen} == {True, False}
    assert {a.on_day for a in seen} == {True, False}
    assert len({a.week_seconds for a in seen}) > 3
    assert len({a.rest_from for a in seen}) > 3


@pytest.fixture
def crowd(org, agent):
    """Alice (Dutch 2, English 1, an early shift on DAY) and colleagues each fitting or breaking a
    rule SQL can tell, or one only Python can, in her team and another, in two zones."""
    team, other_team = TeamFactory(organization=org), TeamFactory(organization=org)
    agent.team = team
    agent.save()
    dutch, english, billing = (
        SkillFactory(organization=org, name=n) for n in ("Dutch", "English", "Billing")
    )
    AgentSkillFactory(agent=agent, skill=dutch, level=2)
    AgentSkillFactory(agent=agent, skill=english, level=1)
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    skills = {
        "same": [(dutch, 2), (english, 1)],
        "higher": [(dutch, 3), (english, 1)],
        "lower": [(dutch, 1), (english, 1)],
        "missing": [(dutch, 2)],
        "extra": [(dutch, 2), (english, 1), (billing, 1)],
    }
    days = {
        "works": [("LATE", "13:00", "21:00")],
        "long": [("LATE", "11:00", "21:00")],
        "night before": None,  # works DAY, and the night before until 02:00: rest
        "unpublished": [("LATE", "13:00", "21:00")],
        "free": [],
        "time off": [("LATE", "13:00", "21:00")],
    }
    made = []
    for n, (skill_name, day_name, own_team, zone) in enumerate(
        (s, d, t, z)
        for s in skills
        for d in days
        for t in (True, False)
        for z in ("Europe/Amsterdam", "Europe/London")
    ):
        colleague = AgentFactory(
            organization=org, team=team if own_team else other_team, timezone=zone, name=f"C{n:03d}"
        )
        for skill, level in skills[skill_name]:
            AgentSkillFactory(agent=colleague, skill=skill, level=level)
        if day_name == "night before":
            shift(colleague, DAY - ONE_DAY, ("LATE", "18:00", "02:00"))
            shift(colleague, DAY, ("LATE", "13:00", "21:00"))
        elif days[day_name]:
            shift(colleague, DAY, *days[day_name], published=day_name != "unpublished")
        if day_name == "time off":
            time_off(colleague, DAY)
        made.append(colleague)
    return made


def _exhaustive(agent, *, kind, include_ineligible):
    """Every colleague evaluated, as before SQL narrowed them."""
    rules = SwapSettings.for_organization(agent.organization)
    check = SwapCheck(
        rules=rules,
        requester=agent,
        offered=shift_of(agent=agent, date=DAY),
        kind=kind,
        their_date=DAY if kind == SwapKind.SWAP else None,
        now=NOW,
        count_offers=False,
    )
    results = check.evaluate(list(candidate_pool(requester=agent, rules=rules, include_other_teams=False)))
    return [r for r in results if r.eligible or (include_ineligible and r.agent.team_id == agent.team_id)]


def _answer(candidates):
    return [(c.agent.pk, c.eligible, [v.code for v in c.violations], c.shift) for c in candidates]


@pytest.mark.parametrize("matching", [SkillMatching.AT_LEAST, SkillMatching.SAME])
@pytest.mark.parametrize("kind", [SwapKind.SWAP, SwapKind.GIVE_AWAY])
@pytest.mark.parametrize("include_ineligible", [False, True])
def test_narrowing_in_sql_never_changes_the_answer(org, agent, crowd, matching, kind, include_ineligible):
    SwapSettings.objects.create(organization=org, skill_matching=matching, max_daily_hours=9)

    found = swap_candidates_for_agent(
        agent=agent, date=DAY, their_date=None, kind=kind, include_ineligible=include_ineligible
    )

    expected = _exhaustive(agent, kind=kind, include_ineligible=include_ineligible)
    assert _answer(found) == _answer(expected)
    assert any(c.eligible for c in found)
    if include_ineligible:
        assert any(not c.eligible for c in found)


def _count(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    assert response.json()
    return len(queries)


@pytest.mark.parametrize("query", ["kind=give_away", "include=ineligible", f"their_date={DAY + ONE_DAY}"])
def test_the_query_count_of_each_kind_of_call_is_the_same_for_10_and_300_colleagues(
    logged_in, org, agent, query
):
    team = TeamFactory(organization=org)
    agent.team = team
    agent.save()
    shift(agent, DAY, ("EARLY", "07:00", "15:00"))
    client = logged_in(agent)
    url = f"/api/v1/swaps/candidates?date={DAY}&{query}"
    counts = []
    for size in (10, 290):
        others = AgentFactory.create_batch(size, organization=org, team=team)
        for other in others[:3]:
            shift(other, DAY + ONE_DAY, ("LATE", "13:00", "21:00"))
        client.get(url)  # the session's first touch
        counts.append(_count(client, url))
    assert counts[0] == counts[1]
