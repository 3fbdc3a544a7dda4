"""Properties every agent endpoint must have, checked over every route under /api/v1/.

The routes come from the URL resolver, each with the methods its view answers, the gate its permission class sets
(`IsAgent`: any logged-in agent, so me, activation and devices work before activation and MFA; `IsActiveAgent`:
activated and MFA-satisfied, everything else) and a body from the schema's first example. A new endpoint needs
nothing here, unless its path names an object: then OWNED_OBJECTS needs a factory that makes one for an owner, so
that another agent of the same organisation and one of another organisation are shown to get 404 for it.
"""

import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.views import APIView

from em_agent.api.permissions import IsActiveAgent, IsAgent
from em_agent.models import Agent, Organization, WfmSystem
from notifications.models import Device, Notification
from notifications.services import notify
from schedules.models import RequestAction, ScheduleRequest
from swaps.models import Swap, SwapRecipient
from tests.conftest import AppClient
from tests.factories import AgentFactory
from tests.schedules.factories import ActivityCodeFactory
from timeoff.models import AbsenceRequest, TimeOffDay, TimeOffRequest

pytestmark = pytest.mark.django_db

GATES = {IsAgent: "agent", IsActiveAgent: "active"}
_PARAMETER = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")
_SAMPLE_BY_CONVERTER = {"int": "999999", "str": "no-such-token"}


@dataclass(frozen=True)
class Route:
    pattern: str  # as the resolver has it: "api/v1/notifications/<int:notification_id>"
    view: type[APIView]

    @property
    def schema_path(self) -> str:
        return "/" + _PARAMETER.sub(r"{\g<name>}", self.pattern)

    def path(self, value: str | None = None) -> str:
        """The route with every parameter filled: by `value`, or by a sample no object has."""

        def fill(match: re.Match) -> str:
            return value if value is not None else _SAMPLE_BY_CONVERTER[match["converter"] or "str"]

        return "/" + _PARAMETER.sub(fill, self.pattern)

    @property
    def names_an_object(self) -> bool:
        return bool(_PARAMETER.search(self.pattern))

    @property
    def methods(self) -> list[str]:
        return [
            method
            for method in self.view.http_method_names
            if method not in ("options", "head") and hasattr(self.view, method)
        ]

    @property
    def gate(self) -> str | None:
        gates = {GATES.get(permission) for permission in self.view.permission_classes}
        return gates.pop() if len(gates) == 1 else None


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def _api_routes() -> list[Route]:
    return [
        Route(pattern=route, view=callback.cls)
        for route, callback in _walk(get_resolver().url_patterns)
        if route.startswith("api/v1/")
    ]


@functools.cache
def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _example_body(route: Route, method: str) -> dict | None:
    operation = _schema()["paths"].get(route.schema_path, {}).get(method, {})
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    examples = content.get("examples", {})
    return next(iter(examples.values()))["value"] if examples else {}


ROUTES = _api_routes()
CALLS = [
    pytest.param(route, method, id=f"{method.upper()} {route.pattern}")
    for route in ROUTES
    for method in route.methods
]
OBJECT_CALLS = [call for call in CALLS if call.values[0].names_an_object]


def _call(client: AppClient, route: Route, method: str, path: str | None = None):
    path = path or route.path()
    body = _example_body(route, method)
    return getattr(client, method)(path, body) if body is not None else getattr(client, method)(path)


# --- what owns the object a route names: route pattern -> a factory making one for the owner, giving the value
# that stands in its path.


def _a_device(owner: Agent) -> str:
    return Device.objects.create(
        agent=owner, token=f"phone-of-{owner.pk}", platform="ios", trusted=True
    ).token


def _a_notification(owner: Agent) -> str:
    return str(notify(recipients=[owner], kind="schedule_adjusted", params={"date": "2026-12-03"})[0].pk)


def _an_acknowledged_notification(owner: Agent) -> str:
    notification_id = _a_notification(owner)
    Notification.objects.filter(pk=notification_id).update(acknowledged_at=timezone.now())
    return notification_id


def _a_schedule_request(owner: Agent) -> str:
    request = ScheduleRequest.objects.create(
        agent=owner, action=RequestAction.CANCEL, date=timezone.localdate() + dt.timedelta(days=7)
    )
    return str(request.pk)


def _an_absence_request(owner: Agent) -> str:
    # Every persona's organisation an IEX one: in a CXone one the route answers 409 before any lookup,
    # and the outsider's answer must be the scoping's 404.
    Organization.objects.update(wfm_system=WfmSystem.IEX)
    code = ActivityCodeFactory(organization=owner.organization, code="SICK", open_for_absence=True)
    request = AbsenceRequest.objects.create(
        agent=owner, date=timezone.localdate() + dt.timedelta(days=7), exception_code=code, full_day=True
    )
    return str(request.pk)


def _a_swap(owner: Agent) -> str:
    # Offered to a third colleague, not on the board: the teammate has no part in it.
    starts = timezone.now() + dt.timedelta(days=7)
    shift = {"date": starts.date().isoformat(), "published": True, "activities": []}
    swap = Swap.objects.create(
        organization=owner.organization,
        requester=owner,
        date=starts.date(),
        their_date=starts.date(),
        expires_at=starts - dt.timedelta(hours=2),
        offered_shift=shift,
        offered_start=starts,
        offered_end=starts + dt.timedelta(hours=8),
    )
    SwapRecipient.objects.create(swap=swap, agent=AgentFactory(organization=owner.organization))
    return str(swap.pk)


def _a_time_off_request(owner: Agent) -> str:
    Organization.objects.update(wfm_system=WfmSystem.CXONE)  # the routes answer 409 in IEX
    code = ActivityCodeFactory(organization=owner.organization, code="VAC", open_for_time_off=True)
    start = timezone.now() + dt.timedelta(days=7)
    request = TimeOffRequest.objects.create(
        agent=owner,
        kind="partial_day",
        activity_code=code,
        start_date=start.date(),
        end_date=start.date(),
        start=start,
        end=start + dt.timedelta(hours=2),
        minutes=120,
    )
    TimeOffDay.objects.create(
        request=request,
        agent=owner,
        organization=owner.organization,
        date=start.date(),
        start=start,
        end=start + dt.timedelta(hours=2),
        minutes=120,
    )
    return str(request.pk)


OWNED_OBJECTS: dict[str, Callable[[Agent], str]] = {
    "api/v1/absence-requests/<int:absence_id>": _an_absence_request,
    "api/v1/devices/<str:token>": _a_device,
    "api/v1/notifications/<int:notification_id>": _an_acknowledged_notification,
    "api/v1/notifications/<int:notification_id>/acknowledge": _a_notification,
    "api/v1/schedule/requests/<int:request_id>": _a_schedule_request,
    "api/v1/time-off/requests/<int:request_id>": _a_time_off_request,
    "api/v1/time-off/requests/<int:request_id>/cancel": _a_time_off_request,
    "api/v1/swaps/<int:swap_id>": _a_swap,
    "api/v1/swaps/<int:swap_id>/accept": _a_swap,
    "api/v1/swaps/<int:swap_id>/cancel": _a_swap,
    "api/v1/swaps/<int:swap_id>/decline": _a_swap,
}


def test_the_routes_are_found():
    """Guards the discovery itself: were the walk to find nothing, every test below would pass on nothing."""
    patterns = {route.pattern for route in ROUTES}

    assert {"api/v1/me", "api/v1/schedule", "api/v1/notifications/<int:notification_id>"} <= patterns
    assert len(CALLS) >= 20


@pytest.mark.parametrize("route, method", CALLS)
def test_every_call_sits_behind_one_of_the_two_gates(route, method):
    assert route.gate is not None, (
        f"{route.view.__name__}: permission_classes must be [IsAgent] or [IsActiveAgent], "
        f"not {route.view.permission_classes}"
    )


@pytest.mark.parametrize("route, method", CALLS)
def test_every_call_is_in_the_schema(route, method):
    """An operation the schema lacks is one the contract fuzz and the app's generated client never see."""
    assert method in _schema()["paths"].get(route.schema_path, {}), f"{method} {route.schema_path}"


def test_every_route_naming_an_object_has_an_owner_factory():
    missing = sorted({route.pattern for route in ROUTES if route.names_an_object} - set(OWNED_OBJECTS))

    assert not missing, f"add to OWNED_OBJECTS a factory for: {missing}"


@pytest.mark.parametrize("route, method", CALLS)
def test_no_token_is_401(app_client, route, method):
    response = _call(app_client, route, method)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("route, method", CALLS)
def test_a_staff_user_without_agent_is_403(app_client, supervisor, route, method):
    app_client.login(supervisor.email)

    response = _call(app_client, route, method)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("route, method", CALLS)
def test_the_unactivated_agent(logged_in, new_agent, route, method):
    response = _call(logged_in(new_agent), route, method)

    if route.gate == "active":
        assert response.status_code == 403
        assert response.json()["code"] == "activation_required"
    else:
        assert response.status_code not in (401, 403), response.content


@pytest.mark.parametrize("route, method", CALLS)
def test_the_agent_without_mfa_in_an_mfa_organisation(logged_in, mfa_org, route, method):
    response = _call(logged_in(AgentFactory(organization=mfa_org)), route, method)

    if route.gate == "active":
        assert response.status_code == 403
        assert response.json()["code"] == "mfa_enrollment_required"
    else:
        assert response.status_code not in (401, 403), response.content


@pytest.mark.parametrize("route, method", CALLS)
def test_errors_have_the_contract_body(logged_in, agent, route, method):
    response = _call(logged_in(agent), route, method)

    if response.status_code >= 400:
        assert {"code", "detail"} <= set(response.json())


@pytest.mark.parametrize("route, method", OBJECT_CALLS)
def test_anothers_object_is_404_and_the_owners_is_found(logged_in, agent, teammate, outsider, route, method):
    make = OWNED_OBJECTS.get(route.pattern)
    if make is None:
        pytest.fail(f"add to OWNED_OBJECTS a factory for {route.pattern}")
    path = route.path(make(agent))

    for other in (teammate, outsider):
        response = _call(logged_in(other), route, method, path)
        assert response.status_code == 404, (other, response.content)
        assert response.json()["code"] == "not_found"

    # The owner reaches it: the object the factory made is one the route finds, so the 404s above are the scoping's.
    response = _call(logged_in(agent), route, method, path)
    assert response.status_code != 404, response.content
