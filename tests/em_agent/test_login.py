"""The whole login as the app does it, through the real allauth headless URLs."""

import re

import pyotp
import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.core import mail

from tests.conftest import MFA_URL, REAUTH_URL, SESSION_URL, TOTP_URL, AppClient
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_password_login_gives_a_token_that_works(app_client, agent):
    response = app_client.login(agent.user.email)

    assert response.status_code == 200
    assert response.json()["meta"]["session_token"]
    me = app_client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["email"] == "alice@contoso.test"


def test_wrong_password_is_refused(app_client, agent):
    response = app_client.login(agent.user.email, "not-the-password")

    assert response.status_code == 400
    assert [error["code"] for error in response.json()["errors"]] == ["email_password_mismatch"]
    assert app_client.token is None


def test_missing_or_unknown_token_is_401_not_403(app_client, agent):
    assert app_client.get("/api/v1/me").status_code == 401
    app_client.token = "made-up-token"
    response = app_client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_logout_kills_the_token(logged_in, agent):
    client = logged_in(agent)
    token = client.token

    assert client.delete(SESSION_URL).status_code == 401  # allauth: 401 = logged out now

    client.token = token
    response = client.get("/api/v1/me")
    assert response.status_code == 401


def _enrol_totp(client: AppClient) -> str:
    """Enrolment through allauth's endpoints: reauthenticate, read the secret, confirm with a code."""
    assert client.post(REAUTH_URL, {"password": PASSWORD}).status_code == 200
    setup = client.get(TOTP_URL)
    assert setup.status_code == 404  # not enrolled yet: allauth answers 404 with the new secret
    meta = setup.json()["meta"]
    secret = meta["secret"]
    assert meta["totp_url"].startswith("otpauth://totp/")
    response = client.post(TOTP_URL, {"code": pyotp.TOTP(secret).now()})
    assert response.status_code == 200, response.content
    return secret


def test_enrol_then_log_in_with_password_and_totp(logged_in, mfa_agent):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        client = logged_in(mfa_agent)
        secret = _enrol_totp(client)
        assert Authenticator.objects.filter(user=mfa_agent.user, type="totp").exists()

        traveller.shift(90)  # a fresh 30-second step, so the code is not the one used to enrol
        fresh = AppClient()
        first = fresh.login(mfa_agent.user.email)
        assert first.status_code == 401
        flows = first.json()["data"]["flows"]
        assert any(flow["id"] == "mfa_authenticate" and flow.get("is_pending") for flow in flows)
        assert fresh.get("/api/v1/me").status_code == 401  # half logged in is not logged in

        second = fresh.post(MFA_URL, {"code": pyotp.TOTP(secret).now()})
        assert second.status_code == 200, second.content
        me = fresh.get("/api/v1/me")
        assert me.status_code == 200
        assert me.json()["mfa_enrolled"] is True


def test_a_totp_code_works_only_once(logged_in, mfa_agent):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        secret = _enrol_totp(logged_in(mfa_agent))
        traveller.shift(90)
        code = pyotp.TOTP(secret).now()

        first = AppClient()
        first.login(mfa_agent.user.email)
        assert first.post(MFA_URL, {"code": code}).status_code == 200

        second = AppClient()
        second.login(mfa_agent.user.email)
        replay = second.post(MFA_URL, {"code": code})
        assert replay.status_code == 400
        assert second.get("/api/v1/me").status_code == 401


def test_totp_tolerates_one_step_of_clock_drift_not_two(logged_in, mfa_agent):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        secret = _enrol_totp(logged_in(mfa_agent))
        traveller.shift(300)
        totp = pyotp.TOTP(secret)
        import time

        now = time.time()
        previous_step = totp.at(now - 30)
        two_steps_back = totp.at(now - 60)

        late = AppClient()
        late.login(mfa_agent.user.email)
        assert late.post(MFA_URL, {"code": two_steps_back}).status_code == 400
        assert late.post(MFA_URL, {"code": previous_step}).status_code == 200


def test_password_reset_email_sets_a_first_password(app_client, new_agent):
    new_agent.user.set_unusable_password()
    new_agent.user.save()

    response = app_client.post("/_allauth/app/v1/auth/password/request", {"email": new_agent.user.email})
    assert response.status_code == 200
    assert len(mail.outbox) == 1
    key = re.search(r"/accounts/password/reset/key/([^/\s]+)/", mail.outbox[0].body).group(1)

    reset = app_client.post(
        "/_allauth/app/v1/auth/password/reset", {"key": key, "password": "a-new-long-passphrase"}
    )
    # ACCOUNT_LOGIN_ON_PASSWORD_RESET is off: 401, the reset is done and the app logs in now.
    assert reset.status_code == 401, reset.content
    assert reset.json()["data"]["flows"]
    assert "session_token" not in reset.json().get("meta", {})
    assert AppClient().login(new_agent.user.email, "a-new-long-passphrase").status_code == 200


def test_password_reset_email_is_in_the_agents_language(app_client, new_agent):
    new_agent.language = "nl"
    new_agent.save()

    app_client.post("/_allauth/app/v1/auth/password/request", {"email": new_agent.user.email})

    assert len(mail.outbox) == 1
    assert "wachtwoord" in (mail.outbox[0].subject + mail.outbox[0].body).lower()


def test_deactivated_user_cannot_log_in(app_client, agent):
    agent.user.is_active = False
    agent.user.save()

    response = app_client.login(agent.user.email)

    # allauth's answer for an inactive account (to the right password only): not logged in, no token.
    assert response.status_code == 401
    assert response.json()["meta"] == {"is_authenticated": False}
    assert response.json()["data"]["flows"] == [{"id": "login"}]
    assert app_client.token is None


def test_app_login_is_rate_limited_after_repeated_failures(app_client, agent):
    for _ in range(5):
        assert app_client.login(agent.user.email, "wrong-password").status_code == 400

    response = app_client.login(agent.user.email)

    assert response.status_code == 429
    assert [error["code"] for error in response.json()["errors"]] == ["too_many_login_attempts"]
    assert int(response["Retry-After"]) > 0
    assert app_client.token is None


def test_mfa_codes_are_rate_limited(logged_in, mfa_agent):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        secret = _enrol_totp(logged_in(mfa_agent))
        traveller.shift(90)
        client = AppClient()
        client.login(mfa_agent.user.email)
        for _ in range(5):
            assert client.post(MFA_URL, {"code": "000000"}).status_code == 400

        # allauth's login_failed limit (5 per 15 minutes per user, settings): now even the right
        # code is refused, with 429 like the password's limit (em_agent.adapters).
        response = client.post(MFA_URL, {"code": pyotp.TOTP(secret).now()})
        assert response.status_code == 429
        assert [error["code"] for error in response.json()["errors"]] == ["too_many_login_attempts"]
        assert client.get("/api/v1/me").status_code == 401


def test_the_same_address_in_another_case_is_the_same_account(agent):
    from django.db import IntegrityError, transaction

    from em_agent.models import User

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="ALICE@contoso.test")


def test_login_ignores_the_case_of_the_email(app_client, agent):
    assert app_client.login("Alice@Contoso.TEST").status_code == 200


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/_allauth/app/v1/account/email", {"email": "mallory@evil.test"}),
        ("put", "/_allauth/app/v1/account/email", {"email": "mallory@evil.test", "primary": True}),
        ("get", "/_allauth/app/v1/account/email", None),
    ],
)
def test_an_agent_cannot_change_its_email_from_a_session(logged_in, agent, method, path, body):
    client = logged_in(agent)

    response = getattr(client, method)(path, body) if body is not None else client.get(path)

    assert response.status_code == 404
    agent.user.refresh_from_db()
    assert agent.user.email == "alice@contoso.test"


def test_the_browser_email_page_is_closed(agent):
    from django.test import Client

    browser = Client()
    browser.force_login(agent.user)

    assert (
        browser.post("/accounts/email/", {"email": "mallory@evil.test", "action_add": ""}).status_code == 404
    )


def test_the_code_that_confirmed_enrolment_cannot_log_in(logged_in, mfa_agent):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False):
        client = logged_in(mfa_agent)
        assert client.post(REAUTH_URL, {"password": PASSWORD}).status_code == 200
        secret = client.get(TOTP_URL).json()["meta"]["secret"]
        code = pyotp.TOTP(secret).now()
        assert client.post(TOTP_URL, {"code": code}).status_code == 200

        fresh = AppClient()
        fresh.login(mfa_agent.user.email)
        response = fresh.post(MFA_URL, {"code": code})

        assert response.status_code == 400
        assert fresh.get("/api/v1/me").status_code == 401


def test_a_reset_for_an_unknown_address_sends_nothing(app_client):
    response = app_client.post("/_allauth/app/v1/auth/password/request", {"email": "nobody@contoso.test"})

    assert response.status_code == 200  # no enumeration
    assert mail.outbox == []


def _documented_429(path: str) -> dict:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    reference = schema["paths"][path]["post"]["responses"]["429"]["$ref"]
    return schema["components"]["responses"][reference.rsplit("/", 1)[-1]]


@pytest.mark.parametrize(
    "path",
    ["/_allauth/app/v1/auth/login", "/_allauth/app/v1/auth/2fa/authenticate", REAUTH_URL],
)
def test_the_login_steps_document_their_429(path):
    documented = _documented_429(path)

    assert "Retry-After" in documented["headers"]


def test_a_limited_login_answers_as_its_schema_says(app_client, agent):
    import jsonschema

    for _ in range(5):
        app_client.login(agent.user.email, "wrong-password")

    response = app_client.login(agent.user.email)

    documented = _documented_429("/_allauth/app/v1/auth/login")["content"]["application/json"]["schema"]
    assert response.status_code == 429
    jsonschema.validate(response.json(), documented)
    assert int(response["Retry-After"]) > 0


def test_logins_per_address_and_minute_are_a_setting(settings, app_client, agent, teammate):
    import jsonschema

    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "2/m/ip"}
    assert app_client.login(agent.user.email).status_code == 200
    assert AppClient().login(teammate.user.email).status_code == 200

    response = AppClient().login(agent.user.email)

    documented = _documented_429("/_allauth/app/v1/auth/login")["content"]["application/json"]["schema"]
    assert response.status_code == 429
    jsonschema.validate(response.json(), documented)


def test_a_shift_logging_in_behind_one_address_is_not_turned_away(settings):
    # allauth's default is 30 a minute; a contact centre's shift starts behind one NAT address.
    assert settings.ACCOUNT_RATE_LIMITS["login"] == f"{settings.LOGIN_MAX_PER_ADDRESS_PER_MINUTE}/m/ip"
    assert settings.LOGIN_MAX_PER_ADDRESS_PER_MINUTE >= 300
