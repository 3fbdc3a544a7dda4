"""Supervisors in the admin: their own organisation only; activation codes issued and shown once."""

import re

import pytest
import time_machine
from django.contrib.sessions.models import Session
from django.test import Client

from activation import codes
from activation.models import ActivationCode
from activation.services import activation_code_issue
from tests.conftest import AppClient
from tests.factories import PASSWORD, AgentFactory, SupervisorFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def other_supervisor(other_org):
    return SupervisorFactory(organization=other_org, email="pat@fabrikam.test")


def test_a_supervisor_sees_only_its_own_agents(supervisor, agent, outsider):
    client = _admin_client(supervisor)

    listing = client.get("/admin/em_agent/agent/")

    assert listing.status_code == 200
    assert b"alice@contoso.test" in listing.content
    assert b"charlie@fabrikam.test" not in listing.content
    assert b"Fabrikam" not in listing.content  # not even as a list filter
    assert client.get(f"/admin/em_agent/agent/{agent.pk}/change/").status_code == 200
    assert client.get(f"/admin/em_agent/agent/{outsider.pk}/change/").status_code == 302  # "does not exist"
    assert client.post(f"/admin/em_agent/agent/{outsider.pk}/change/", {"name": "Hacked"}).status_code in (
        302,
        403,
        404,
    )
    outsider.refresh_from_db()
    assert outsider.name == "Charlie"


def test_a_supervisor_cannot_issue_codes_for_another_organisation(supervisor, outsider):
    client = _admin_client(supervisor)

    response = client.post(f"/admin/em_agent/agent/{outsider.pk}/issue-activation-code/")

    assert response.status_code == 404
    assert not ActivationCode.objects.exists()


def test_a_supervisor_sees_only_its_own_codes(supervisor, other_supervisor, new_agent, other_org):
    outsider = AgentFactory(organization=other_org, name="Charlie", activated_at=None)
    activation_code_issue(agent=new_agent, issued_by=supervisor)
    activation_code_issue(agent=outsider, issued_by=other_supervisor)

    listing = _admin_client(supervisor).get("/admin/activation/activationcode/")

    assert b"Nina" in listing.content
    assert b"Charlie" not in listing.content
    assert b"Fabrikam" not in listing.content


@pytest.mark.parametrize(
    "page", ["/admin/em_agent/team/", "/admin/em_agent/skill/", "/admin/notifications/device/"]
)
def test_no_changelist_names_another_organisation(supervisor, outsider, page):
    TeamFactory(organization=outsider.organization, name="Secret Team")

    content = _admin_client(supervisor).get(page).content

    assert b"Fabrikam" not in content and b"Secret Team" not in content


def test_the_agent_form_offers_only_own_teams_and_supervisors(supervisor, agent, other_supervisor):
    TeamFactory(organization=agent.organization, name="Own Team")
    TeamFactory(organization=other_supervisor.organization, name="Their Team")

    content = _admin_client(supervisor).get(f"/admin/em_agent/agent/{agent.pk}/change/").content

    assert b"Own Team" in content
    assert b"Their Team" not in content
    assert b"pat@fabrikam.test" not in content


def test_a_superuser_sees_all(agent, outsider):
    admin = UserFactory(is_staff=True, is_superuser=True)

    listing = _admin_client(admin).get("/admin/em_agent/agent/")

    assert b"alice@contoso.test" in listing.content and b"charlie@fabrikam.test" in listing.content


def test_a_supervisor_cannot_manage_users_or_other_organisations(supervisor, other_org):
    client = _admin_client(supervisor)

    assert client.get("/admin/em_agent/user/").status_code == 403
    assert client.get(f"/admin/em_agent/organization/{other_org.pk}/change/").status_code == 302


def test_the_button_issues_a_code_shown_once_that_works(supervisor, new_agent):
    client = _admin_client(supervisor)

    response = client.post(f"/admin/em_agent/agent/{new_agent.pk}/issue-activation-code/")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    code = re.search(rb'class="activation-code"[^>]*>([A-Z0-9-]+)<', response.content).group(1).decode()
    record = ActivationCode.objects.get()
    assert record.code_hash == codes.digest(code)
    assert record.issued_by == supervisor
    app = AppClient()
    app.login(new_agent.user.email)
    assert app.post("/api/v1/activation", {"code": code}).status_code == 200
    # The code list then shows when and from where it was redeemed, never the code.
    listing = client.get("/admin/activation/activationcode/").content
    assert b"127.0.0.1" in listing
    assert code.encode() not in listing


def test_the_change_page_has_the_button(supervisor, new_agent):
    page = _admin_client(supervisor).get(f"/admin/em_agent/agent/{new_agent.pk}/change/")

    assert f"/admin/em_agent/agent/{new_agent.pk}/issue-activation-code/".encode() in page.content


def test_the_action_issues_codes_for_the_selected_agents(supervisor, new_agent, org, agent):
    another = AgentFactory(organization=org, activated_at=None)
    response = _admin_client(supervisor).post(
        "/admin/em_agent/agent/",
        {"action": "issue_activation_codes", "_selected_action": [new_agent.pk, another.pk, agent.pk]},
    )

    assert response.status_code == 200
    assert len(re.findall(rb'class="activation-code"', response.content)) == 2
    assert b"already activated" in response.content  # Alice was skipped, and told
    assert set(ActivationCode.objects.values_list("agent", flat=True)) == {new_agent.pk, another.pk}


def test_the_action_cannot_reach_another_organisation(supervisor, outsider):
    _admin_client(supervisor).post(
        "/admin/em_agent/agent/", {"action": "issue_activation_codes", "_selected_action": [outsider.pk]}
    )

    assert not ActivationCode.objects.exists()


def test_deactivating_in_the_admin_ends_the_agents_sessions(
    supervisor, agent, logged_in, django_capture_on_commit_callbacks
):
    app = logged_in(agent)

    with django_capture_on_commit_callbacks(execute=True):
        _admin_client(supervisor).post(
            "/admin/em_agent/agent/", {"action": "deactivate_agents", "_selected_action": [agent.pk]}
        )

    assert not Session.objects.filter(session_key=app.token).exists()
    assert app.get("/api/v1/me").status_code == 401


def test_unticking_active_in_the_user_admin_ends_the_sessions(
    agent, logged_in, django_capture_on_commit_callbacks
):
    app = logged_in(agent)
    admin = _admin_client(UserFactory(is_staff=True, is_superuser=True))
    page = admin.get(f"/admin/em_agent/user/{agent.user.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(
        {
            "is_active": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "groups": [],
            "user_permissions": [],
        }
    )
    data.pop("is_active")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(f"/admin/em_agent/user/{agent.user.pk}/change/", data)

    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else response
    )
    agent.user.refresh_from_db()
    assert agent.user.is_active is False
    assert not Session.objects.filter(session_key=app.token).exists()


def test_the_admin_login_is_rate_limited(supervisor):
    client = Client()
    for _ in range(5):
        client.post("/accounts/login/", {"login": supervisor.email, "password": "wrong-password"})

    # Even the right password is refused now, with allauth's "too many failed attempts".
    response = client.post("/accounts/login/", {"login": supervisor.email, "password": PASSWORD})

    assert response.status_code in (200, 429)
    assert b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_the_admin_login_goes_through_allauth(supervisor):
    response = Client().get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_an_idle_admin_session_ends_after_60_minutes(supervisor):
    client = Client()
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False) as traveller:
        client.post("/accounts/login/", {"login": supervisor.email, "password": PASSWORD})
        assert client.get("/admin/").status_code == 200
        traveller.shift(59 * 60)
        assert client.get("/admin/").status_code == 200
        traveller.shift(61 * 60)

        response = client.get("/admin/")

    assert response.status_code == 302
    assert "login" in response["Location"]
    assert not Session.objects.exists()
