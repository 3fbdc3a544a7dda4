"""Properties every agent endpoint must have, checked over the whole list of routes.

Add each new endpoint to ENDPOINTS with the gate it sits behind:
- "agent": any logged-in agent (before activation and MFA: me, activation, devices);
- "active": activated, and MFA-satisfied where the organisation requires it (everything else).
"""

import pytest
from django.urls import get_resolver

from tests.conftest import AppClient
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    # (method, path, body, gate)
    ("get", "/api/v1/me", None, "agent"),
    ("post", "/api/v1/activation", {"code": "AAAAA-BBBBB"}, "agent"),
    ("get", "/api/v1/devices", None, "agent"),
    ("post", "/api/v1/devices", {"token": "t-1", "platform": "ios"}, "agent"),
    ("delete", "/api/v1/devices/t-1", None, "agent"),
    ("get", "/api/v1/notifications", None, "active"),
    ("get", "/api/v1/notifications/unacknowledged-count", None, "active"),
    ("post", "/api/v1/notifications/9999/acknowledge", None, "active"),
    ("delete", "/api/v1/notifications/9999", None, "active"),
    ("get", "/api/v1/notifications/preferences", None, "active"),
    ("put", "/api/v1/notifications/preferences", {"email": {"swap_offer": False}}, "active"),
    ("get", "/api/v1/schedule", None, "active"),
    ("get", "/api/v1/schedule/calendar", None, "active"),
    ("get", "/api/v1/activity-codes", None, "active"),
    ("get", "/api/v1/schedule/requests", None, "active"),
    ("post", "/api/v1/schedule/requests", {"action": "cancel", "activity_id": 9999}, "active"),
    ("get", "/api/v1/schedule/requests/9999", None, "active"),
    ("delete", "/api/v1/schedule/requests/9999", None, "active"),
    ("get", "/api/v1/schedule/feed-url", None, "active"),
    ("post", "/api/v1/schedule/feed-url", None, "active"),
    ("delete", "/api/v1/schedule/feed-url", None, "active"),
]
# Sample values in the paths above, and the route parameter each stands for.
_PARAMETERS = {
    "/t-1": "/<str:token>",
    "notifications/9999": "notifications/<int:notification_id>",
    "requests/9999": "requests/<int:request_id>",
}


def _call(client: AppClient, method: str, path: str, body):
    return getattr(client, method)(path, body) if body is not None else getattr(client, method)(path)


def test_every_api_route_is_listed_here():
    routes = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                routes.add(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns)
    api_routes = {route for route in routes if route.startswith("api/v1/")}
    listed = set()
    for _method, path, _body, _gate in ENDPOINTS:
        for sample, parameter in _PARAMETERS.items():
            path = path.replace(sample, parameter)
        listed.add(path.removeprefix("/"))
    assert api_routes <= listed, f"add to ENDPOINTS: {sorted(api_routes - listed)}"


@pytest.mark.parametrize("method, path, body, gate", ENDPOINTS)
def test_no_token_is_401(app_client, method, path, body, gate):
    response = _call(app_client, method, path, body)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize("method, path, body, gate", ENDPOINTS)
def test_a_staff_user_without_agent_is_403(app_client, supervisor, method, path, body, gate):
    app_client.login(supervisor.email)

    response = _call(app_client, method, path, body)

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize("method, path, body, gate", ENDPOINTS)
def test_the_unactivated_agent(logged_in, new_agent, method, path, body, gate):
    response = _call(logged_in(new_agent), method, path, body)

    if gate == "active":
        assert response.status_code == 403
        assert response.json()["code"] == "activation_required"
    else:
        assert response.status_code not in (401, 403), response.content


@pytest.mark.parametrize("method, path, body, gate", ENDPOINTS)
def test_the_agent_without_mfa_in_an_mfa_organisation(logged_in, mfa_org, method, path, body, gate):
    response = _call(logged_in(AgentFactory(organization=mfa_org)), method, path, body)

    if gate == "active":
        assert response.status_code == 403
        assert response.json()["code"] == "mfa_enrollment_required"
    else:
        assert response.status_code not in (401, 403), response.content


@pytest.mark.parametrize("method, path, body, gate", ENDPOINTS)
def test_errors_have_the_contract_body(logged_in, agent, method, path, body, gate):
    response = _call(logged_in(agent), method, path, body)

    if response.status_code >= 400:
        assert {"code", "detail"} <= set(response.json())
