"""Login, TOTP and password-reset guesses are limited per account and per client address, also
when they arrive all at once: an attempt is reserved before the password or code is checked, so
the tests count the checks that actually ran, not only the answers."""

import re
from unittest import mock

import pyotp
import pytest
import time_machine
from allauth.mfa.totp.internal.auth import TOTP
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core import mail
from django.test import Client

from em_agent.backends import AuthenticationBackend
from tests.conftest import LOGIN_URL, MFA_URL, REAUTH_URL, AppClient, agent_with_totp, run_together
from tests.factories import PASSWORD, AgentFactory

pytestmark = pytest.mark.django_db

# 10 seconds into a 15-minute window (windows are aligned on the clock): the burst stays in one.
START = "2026-12-01 09:00:10 +00:00"
WINDOW = 900
RESET_REQUEST_URL = "/_allauth/app/v1/auth/password/request"
RESET_URL = "/_allauth/app/v1/auth/password/reset"


def _login(client: AppClient, email: str, password: str, address: str = "203.0.113.1"):
    return client.post(LOGIN_URL, {"email": email, "password": password}, REMOTE_ADDR=address)


def _codes(response) -> list[str]:
    return [error["code"] for error in response.json().get("errors", [])]


def _assert_too_many(response) -> None:
    assert response.status_code == 429, response.content
    assert response.json()["status"] == 429
    assert _codes(response) == ["too_many_login_attempts"]
    assert response.json()["errors"][0]["message"]
    assert int(response["Retry-After"]) > 0


@pytest.fixture
def password_checks():
    """Every password evaluation goes through the one authentication backend: counts them."""
    with mock.patch.object(
        AuthenticationBackend, "authenticate", autospec=True, side_effect=AuthenticationBackend.authenticate
    ) as backend:
        yield backend


@pytest.fixture
def code_checks():
    with mock.patch.object(TOTP, "validate_code", autospec=True, side_effect=TOTP.validate_code) as validate:
        yield validate


@pytest.fixture
def allauth_login_rate(settings):
    # allauth's flood limit on login requests (30 a minute per address) answers a bare 429 before
    # any password is read, also when its cache lock is not free within a second (50 parallel
    # requests from one address); off here, so the failure limits are what these tests measure.
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": None}


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_for_one_account_check_at_most_the_limit(
    postgres, redis_cache, org, password_checks
):
    agent = AgentFactory(organization=org)
    with time_machine.travel(START, tick=False) as traveller:
        # From 50 addresses, as a botnet would: only the account's limit applies.
        guesses = [
            lambda i=i: _login(AppClient(), agent.user.email, "wrong-password", f"198.51.100.{i}")
            for i in range(50)
        ]
        answers = run_together(guesses)

        assert password_checks.call_count == 5
        mismatches = [answer for answer in answers if answer.status_code == 400]
        assert len(mismatches) == 5
        assert all(_codes(answer) == ["email_password_mismatch"] for answer in mismatches)
        refused = [answer for answer in answers if answer.status_code == 429]
        assert len(refused) == 45
        for answer in refused:
            _assert_too_many(answer)
        assert {int(answer["Retry-After"]) for answer in refused} == {WINDOW - 10}

        # The owner, with the right password, waits for the window's end like everyone else ...
        owner = AppClient()
        _assert_too_many(_login(owner, agent.user.email, PASSWORD, "192.0.2.7"))
        assert owner.token is None
        traveller.shift(WINDOW - 11)
        _assert_too_many(_login(owner, agent.user.email, PASSWORD, "192.0.2.7"))
        assert password_checks.call_count == 5

        # ... and no longer.
        traveller.shift(1)
        assert _login(owner, agent.user.email, PASSWORD, "192.0.2.7").status_code == 200
        assert owner.token


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_from_one_address_check_at_most_its_limit(
    postgres, redis_cache, org, settings, password_checks, allauth_login_rate
):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 8
    agents = [AgentFactory(organization=org) for _ in range(10)]
    with time_machine.travel(START, tick=False):
        # Spraying: five guesses at each of ten accounts, from one address. No account reaches
        # its own limit; the address does.
        guesses = [
            lambda agent=agent: _login(AppClient(), agent.user.email, "wrong-password", "198.51.100.9")
            for agent in agents
            for _ in range(5)
        ]
        answers = run_together(guesses)

        assert password_checks.call_count == 8
        assert [answer.status_code for answer in answers].count(400) == 8
        refused = [answer for answer in answers if answer.status_code == 429]
        assert len(refused) == 42
        for answer in refused:
            _assert_too_many(answer)

        # The address is refused, whoever logs in from it; the accounts still work from elsewhere,
        # because a refused attempt counted nowhere.
        _assert_too_many(_login(AppClient(), agents[0].user.email, PASSWORD, "198.51.100.9"))
        assert _login(AppClient(), agents[0].user.email, PASSWORD, "192.0.2.7").status_code == 200


def test_a_success_gives_its_attempt_back(org, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 6
    alice, bob = AgentFactory(organization=org), AgentFactory(organization=org)
    address = "198.51.100.9"
    with time_machine.travel(START, tick=False):
        for _ in range(4):
            assert _login(AppClient(), alice.user.email, "wrong-password", address).status_code == 400
        assert _login(AppClient(), alice.user.email, PASSWORD, address).status_code == 200

        # Four failures counted for Alice, not five: she has one more before the limit ...
        assert _login(AppClient(), alice.user.email, "wrong-password", address).status_code == 400
        _assert_too_many(_login(AppClient(), alice.user.email, "wrong-password", address))
        # ... and five for the address, not six: Bob, there too, has the sixth.
        assert _login(AppClient(), bob.user.email, "wrong-password", address).status_code == 400
        _assert_too_many(_login(AppClient(), bob.user.email, "wrong-password", address))


def test_a_completed_password_reset_ends_the_accounts_lockout_not_the_addresses(org, settings):
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 7
    alice, bob = AgentFactory(organization=org), AgentFactory(organization=org)
    address = "198.51.100.9"
    with time_machine.travel(START, tick=False):
        for _ in range(5):
            assert _login(AppClient(), alice.user.email, "wrong-password", address).status_code == 400
        _assert_too_many(_login(AppClient(), alice.user.email, PASSWORD, "192.0.2.7"))

        app = AppClient()
        assert app.post(RESET_REQUEST_URL, {"email": alice.user.email}).status_code == 200
        key = re.search(r"/accounts/password/reset/key/([^/\s]+)/", mail.outbox[-1].body).group(1)
        reset = app.post(RESET_URL, {"key": key, "password": "a-new-long-passphrase"})
        assert reset.status_code == 401, reset.content  # done; the app logs in now

        # The owner is in at once, without waiting for the window to end ...
        assert _login(AppClient(), alice.user.email, "a-new-long-passphrase", "192.0.2.7").status_code == 200
        # ... while the address's five failures still count: two more, then it waits.
        assert _login(AppClient(), bob.user.email, "wrong-password", address).status_code == 400
        assert _login(AppClient(), bob.user.email, "wrong-password", address).status_code == 400
        _assert_too_many(_login(AppClient(), bob.user.email, "wrong-password", address))


def test_unknown_accounts_are_limited_like_known_ones(password_checks):
    with time_machine.travel(START, tick=False):
        answers = [_login(AppClient(), "nobody@contoso.test", "guess") for _ in range(6)]

    assert [answer.status_code for answer in answers] == [400] * 5 + [429]
    assert password_checks.call_count == 5


def test_the_admin_login_page_counts_towards_the_same_limit(supervisor):
    browser = Client(REMOTE_ADDR="198.51.100.9")
    with time_machine.travel(START, tick=False):
        for _ in range(5):
            page = browser.post("/accounts/login/", {"login": supervisor.email, "password": "wrong-password"})
            assert page.status_code == 200
            assert b"not correct" in page.content

        _assert_too_many(_login(AppClient(), supervisor.email, PASSWORD, "192.0.2.7"))
        page = browser.post("/accounts/login/", {"login": supervisor.email, "password": PASSWORD})

    # allauth's page shows the limit on its form, and logs nobody in.
    assert page.status_code == 200
    assert b"Too many failed login attempts" in page.content
    assert "_auth_user_id" not in browser.session


def test_wrong_passwords_to_reauthenticate_count_towards_the_accounts_limit(
    logged_in, agent, password_checks
):
    with time_machine.travel(START, tick=False):
        client = logged_in(agent)
        for _ in range(5):
            assert client.post(REAUTH_URL, {"password": "wrong-password"}).status_code == 400

        _assert_too_many(client.post(REAUTH_URL, {"password": PASSWORD}))
        _assert_too_many(_login(AppClient(), agent.user.email, PASSWORD, "192.0.2.7"))

    assert password_checks.call_count == 1 + 5  # the login, then five reauthentications


def _pending_mfa_logins(agents_and_addresses) -> list[AppClient]:
    """Clients that gave the right password and wait for the TOTP step (sequentially: successes)."""
    clients = []
    for agent, address in agents_and_addresses:
        client = AppClient()
        first = _login(client, agent.user.email, PASSWORD, address)
        assert first.status_code == 401, first.content  # mfa_authenticate pending
        clients.append(client)
    return clients


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_totp_codes_for_one_account_check_at_most_the_limit(
    postgres, redis_cache, mfa_org, code_checks
):
    with time_machine.travel(START, tick=False):
        agent, secret = agent_with_totp(mfa_org)
        addresses = [f"198.51.100.{i}" for i in range(50)]
        clients = _pending_mfa_logins([(agent, address) for address in addresses])

        answers = run_together(
            [
                lambda client=client, address=address: client.post(
                    MFA_URL, {"code": "000000"}, REMOTE_ADDR=address
                )
                for client, address in zip(clients, addresses, strict=True)
            ]
        )

        # allauth's counter for this step reserves under a lock in the cache; one that cannot get
        # the lock in time is refused too, so at most (not exactly) the limit is checked.
        checked = code_checks.call_count
        assert 1 <= checked <= 5
        assert [answer.status_code for answer in answers].count(400) == checked
        for answer in answers:
            if answer.status_code == 400:
                assert _codes(answer) == ["incorrect_code"]
            else:
                _assert_too_many(answer)

        # Even the right code now waits; the password step is not what is limited.
        owner = AppClient()
        assert _login(owner, agent.user.email, PASSWORD, "192.0.2.7").status_code == 401
        _assert_too_many(owner.post(MFA_URL, {"code": pyotp.TOTP(secret).now()}, REMOTE_ADDR="192.0.2.7"))
        assert owner.get("/api/v1/me").status_code == 401
        assert code_checks.call_count == checked


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_totp_codes_from_one_address_check_at_most_its_limit(
    postgres, redis_cache, mfa_org, settings, code_checks, allauth_login_rate
):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login_failed": "5/900s/key,8/900s/ip"}
    address = "198.51.100.9"
    with time_machine.travel(START, tick=False):
        agents = [agent_with_totp(mfa_org)[0] for _ in range(10)]
        clients = _pending_mfa_logins([(agent, address) for agent in agents for _ in range(5)])

        answers = run_together(
            [
                lambda client=client: client.post(MFA_URL, {"code": "000000"}, REMOTE_ADDR=address)
                for client in clients
            ]
        )

    assert 1 <= code_checks.call_count <= 8
    assert [answer.status_code for answer in answers].count(400) == code_checks.call_count
    for answer in answers:
        if answer.status_code != 400:
            _assert_too_many(answer)


def test_a_right_totp_code_clears_the_accounts_count(logged_in, mfa_org, code_checks):
    agent, secret = agent_with_totp(mfa_org)
    with time_machine.travel(START, tick=False) as traveller:
        client = _pending_mfa_logins([(agent, "192.0.2.7")])[0]
        for _ in range(4):
            assert client.post(MFA_URL, {"code": "000000"}).status_code == 400
        assert client.post(MFA_URL, {"code": pyotp.TOTP(secret).now()}).status_code == 200

        # allauth forgets the account's failures on a success (more than giving one back): five
        # more wrong codes are checked before the limit.
        traveller.shift(30)
        again = _pending_mfa_logins([(agent, "192.0.2.7")])[0]
        statuses = [again.post(MFA_URL, {"code": "000000"}).status_code for _ in range(6)]

    assert statuses == [400] * 5 + [429]
    assert code_checks.call_count == 4 + 1 + 5


@pytest.mark.django_db(transaction=True)
def test_parallel_reset_requests_for_one_address_send_at_most_five_mails(postgres, redis_cache, agent):
    with time_machine.travel(START, tick=False):
        answers = run_together(
            [
                lambda i=i: AppClient().post(
                    RESET_REQUEST_URL, {"email": agent.user.email}, REMOTE_ADDR=f"198.51.100.{i}"
                )
                for i in range(50)
            ]
        )

    # allauth's reset_password limit (5 a minute per address asked for, 20 per client address)
    # is taken before the mail is sent.
    assert len(mail.outbox) <= 5
    assert [answer.status_code for answer in answers].count(200) == len(mail.outbox)
    assert {answer.status_code for answer in answers} == {200, 429}


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_reset_keys_from_one_address_check_at_most_twenty(postgres, redis_cache, agent):
    from allauth.account.utils import user_pk_to_url_str

    key = f"{user_pk_to_url_str(agent.user)}-wrong-token"
    with (
        mock.patch.object(
            PasswordResetTokenGenerator,
            "check_token",
            autospec=True,
            side_effect=PasswordResetTokenGenerator.check_token,
        ) as token_checks,
        time_machine.travel(START, tick=False),
    ):
        answers = run_together(
            [
                lambda: AppClient().post(
                    RESET_URL, {"key": key, "password": "a-new-long-passphrase"}, REMOTE_ADDR="198.51.100.9"
                )
                for _ in range(50)
            ]
        )

    # allauth's reset_password_from_key limit (20 a minute per address) is taken before the key
    # is read; a key is a signed token, so the limit is against floods rather than guessing.
    assert 1 <= token_checks.call_count <= 20
    assert [answer.status_code for answer in answers].count(400) == token_checks.call_count
    assert {answer.status_code for answer in answers} == {400, 429}
