"""The one gate in front of the agent endpoints: activation and MFA."""

import pyotp
import pytest
import time_machine
from allauth.mfa.totp.internal.auth import TOTP

from tests.conftest import REAUTH_URL, TOTP_URL, AppClient, agent_with_totp
from tests.factories import PASSWORD, AgentFactory, UserFactory

pytestmark = pytest.mark.django_db

DEVICE = {"token": "fcm-token-1", "platform": "android"}


def test_me_works_before_activation_and_says_so(logged_in, new_agent):
    client = logged_in(new_agent)

    response = client.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json()["activated"] is False


def test_devices_are_allowed_before_activation(logged_in, new_agent):
    client = logged_in(new_agent)

    assert client.post("/api/v1/devices", DEVICE).status_code == 201


def test_an_agent_endpoint_refuses_the_unactivated_agent(logged_in, new_agent):
    client = logged_in(new_agent)

    response = client.get("/api/v1/notifications/unacknowledged-count")

    assert response.status_code == 403
    assert response.json()["code"] == "activation_required"


def test_an_agent_endpoint_admits_the_activated_agent(logged_in, agent):
    assert logged_in(agent).get("/api/v1/notifications/unacknowledged-count").status_code == 200


def test_mfa_org_agent_without_totp_is_asked_to_enrol(logged_in, mfa_agent):
    client = logged_in(mfa_agent)

    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["organization"]["mfa_required"] is True
    assert me.json()["mfa_enrolled"] is False
    response = client.get("/api/v1/notifications/unacknowledged-count")
    assert response.status_code == 403
    assert response.json()["code"] == "mfa_enrollment_required"


def test_a_device_registered_without_mfa_is_not_trusted_until_registered_with_it(logged_in, mfa_org):
    # API.md allows devices before enrolment; push goes to trusted devices only (notifications).
    agent = AgentFactory(organization=mfa_org)
    password_only = logged_in(agent)
    response = password_only.post("/api/v1/devices", DEVICE)
    assert response.status_code == 201
    assert response.json()["trusted"] is False

    secret = pyotp.random_base32()
    TOTP.activate(agent.user, secret)
    with_mfa = AppClient()
    with_mfa.login_with_totp(agent.user.email, secret)
    again = with_mfa.post("/api/v1/devices", DEVICE)

    assert again.status_code == 200
    assert again.json()["trusted"] is True


def test_devices_are_trusted_where_mfa_is_not_required(logged_in, agent):
    assert logged_in(agent).post("/api/v1/devices", DEVICE).json()["trusted"] is True


def test_mfa_enrolled_agent_who_logged_in_without_it_is_refused(logged_in, mfa_org):
    # Enrolled after this session began (e.g. on another device): this session never used MFA.
    agent = AgentFactory(organization=mfa_org)
    client = logged_in(agent)
    TOTP.activate(agent.user, pyotp.random_base32())

    response = client.get("/api/v1/notifications/unacknowledged-count")

    assert response.status_code == 403
    assert response.json()["code"] == "mfa_enrollment_required"


@pytest.mark.django_db(transaction=True)  # allauth announces the new factor on commit, as in production
def test_enrolling_in_this_session_satisfies_the_gate(logged_in, mfa_agent):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False):
        client = logged_in(mfa_agent)
        client.post(REAUTH_URL, {"password": PASSWORD})
        secret = client.get(TOTP_URL).json()["meta"]["secret"]
        assert client.post(TOTP_URL, {"code": pyotp.TOTP(secret).now()}).status_code == 200

        assert client.get("/api/v1/notifications/unacknowledged-count").status_code == 200


def test_logging_in_with_totp_satisfies_the_gate(mfa_org):
    agent, secret = agent_with_totp(mfa_org)

    client = AppClient()
    assert client.login_with_totp(agent.user.email, secret).status_code == 200

    assert client.get("/api/v1/notifications/unacknowledged-count").status_code == 200


def test_an_unactivated_mfa_agent_is_asked_for_mfa_first(logged_in, mfa_org):
    client = logged_in(AgentFactory(organization=mfa_org, activated_at=None))

    assert (
        client.get("/api/v1/notifications/unacknowledged-count").json()["code"] == "mfa_enrollment_required"
    )


def test_a_staff_user_without_an_agent_is_refused(app_client, supervisor):
    assert app_client.login(supervisor.email).status_code == 200

    response = app_client.get("/api/v1/me")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_a_user_without_agent_or_staff_is_refused(app_client):
    user = UserFactory()
    app_client.login(user.email)

    assert app_client.get("/api/v1/me").status_code == 403


def test_refusals_are_translated(logged_in, new_agent):
    client = logged_in(new_agent)
    client.language = "nl"

    response = client.post("/api/v1/activation", {"code": "AAAAA-AAAAA"})

    assert response.json()["code"] == "invalid_activation_code"
    assert "activeringscode" in response.json()["detail"].lower()


def test_refusals_fall_back_to_the_agents_language(logged_in, new_agent):
    new_agent.language = "nl"
    new_agent.save()
    client = logged_in(new_agent)

    response = client.post("/api/v1/activation", {"code": "AAAAA-AAAAA"})

    assert "activeringscode" in response.json()["detail"].lower()


def test_totp_secrets_are_encrypted_at_rest(mfa_agent):
    secret = pyotp.random_base32()
    TOTP.activate(mfa_agent.user, secret)

    from allauth.mfa.models import Authenticator

    stored = Authenticator.objects.get(user=mfa_agent.user).data["secret"]
    assert secret not in stored


def test_the_only_totp_cannot_be_removed_where_mfa_is_required(mfa_org):
    agent, secret = agent_with_totp(mfa_org)
    client = AppClient()
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False):
        client.login_with_totp(agent.user.email, secret)
        client.post(REAUTH_URL, {"password": PASSWORD})

        response = client.delete(TOTP_URL)

        assert response.status_code == 409
        assert response.json()["errors"][0]["code"] == "mfa_required_by_organization"
        assert client.get("/api/v1/notifications/unacknowledged-count").status_code == 200


def test_a_session_whose_totp_was_removed_no_longer_passes(mfa_org):
    from allauth.mfa.models import Authenticator

    agent, secret = agent_with_totp(mfa_org)
    client = AppClient()
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False):
        client.login_with_totp(agent.user.email, secret)
        Authenticator.objects.filter(user=agent.user).delete()  # a supervisor reset it

        response = client.get("/api/v1/notifications/unacknowledged-count")

    assert response.json()["code"] == "mfa_enrollment_required"


def test_an_unsupported_accept_language_falls_back_to_the_agents_language(logged_in, new_agent):
    new_agent.language = "nl"
    new_agent.save()
    client = logged_in(new_agent)
    client.language = "de-DE,de;q=0.9"

    response = client.post("/api/v1/activation", {"code": "AAAAA-AAAAA"})

    assert "activeringscode" in response.json()["detail"].lower()


def test_a_supported_accept_language_wins_over_the_agents(logged_in, new_agent):
    new_agent.language = "nl"
    new_agent.save()
    client = logged_in(new_agent)
    client.language = "en-GB,en;q=0.8"

    response = client.post("/api/v1/activation", {"code": "AAAAA-AAAAA"})

    assert "activation code" in response.json()["detail"].lower()
