import datetime as dt
import threading

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection

from activation import codes
from activation.models import ActivationCode, AttemptCounter
from activation.services import activation_code_issue
from em_agent.exceptions import ApplicationError
from em_agent.models import Agent
from tests.conftest import AppClient, run_together
from tests.factories import AgentFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/activation"


def test_the_happy_path(logged_in, new_agent, supervisor):
    issued = activation_code_issue(agent=new_agent, issued_by=supervisor)
    client = logged_in(new_agent)

    response = client.post(URL, {"code": issued.code}, REMOTE_ADDR="203.0.113.7")

    assert response.status_code == 200
    body = response.json()
    assert body["activated"] is True
    assert body["email"] == new_agent.user.email
    assert body["sync_pending"] is True  # skills and schedule come with the next nightly sync
    record = ActivationCode.objects.get()
    assert record.redeemed_at is not None
    assert record.redeemed_from == "203.0.113.7"
    assert record.issued_by == supervisor


def test_a_code_may_be_typed_loosely(logged_in, new_agent):
    issued = activation_code_issue(agent=new_agent)
    loose = " " + issued.code.lower().replace("-", " ") + " "

    assert logged_in(new_agent).post(URL, {"code": loose}).status_code == 200


def _assert_invalid(response):
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_activation_code"
    return body


def test_every_invalid_kind_gets_the_same_answer(logged_in, new_agent, teammate, org):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        expired = activation_code_issue(agent=new_agent, ttl_hours=1).code
        traveller.shift(3601)
        client = logged_in(new_agent)
        someone_elses = activation_code_issue(agent=AgentFactory(organization=org, activated_at=None)).code
        voided = activation_code_issue(agent=new_agent).code
        current = activation_code_issue(agent=new_agent).code  # voids the one before

        answers = [
            _assert_invalid(client.post(URL, {"code": code}))
            for code in ("ZZZZZ-ZZZZZ", expired, someone_elses, voided)
        ]

        assert all(answer == answers[0] for answer in answers)
        assert client.post(URL, {"code": current}).status_code == 200


def test_a_used_code_is_refused_like_any_other(logged_in, new_agent):
    issued = activation_code_issue(agent=new_agent)
    client = logged_in(new_agent)
    client.post(URL, {"code": issued.code})
    new_agent.activated_at = None
    new_agent.save()  # say a supervisor reset the activation

    _assert_invalid(client.post(URL, {"code": issued.code}))


def test_an_activated_agent_gets_409(logged_in, new_agent):
    client = logged_in(new_agent)
    assert client.post(URL, {"code": activation_code_issue(agent=new_agent).code}).status_code == 200

    response = client.post(URL, {"code": "ANY22-CODE3"})

    assert response.status_code == 409
    assert response.json()["code"] == "already_activated"


def test_missing_code_is_a_validation_error(logged_in, new_agent):
    response = logged_in(new_agent).post(URL, {})

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "code" in response.json()["fields"]


def test_activation_needs_a_login(app_client, new_agent):
    issued = activation_code_issue(agent=new_agent)

    assert app_client.post(URL, {"code": issued.code}).status_code == 401


def test_the_sixth_wrong_attempt_in_an_hour_gets_429(logged_in, new_agent):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        issued = activation_code_issue(agent=new_agent)
        client = logged_in(new_agent)
        for _ in range(5):
            _assert_invalid(client.post(URL, {"code": "WRONG-CODE2"}))
            traveller.shift(60)

        throttled = client.post(URL, {"code": issued.code})  # even the right code now waits

        assert throttled.status_code == 429
        assert throttled.json()["code"] == "throttled"
        assert 0 < int(throttled["Retry-After"]) <= 3600

        traveller.shift(3601)
        client = logged_in(new_agent)  # the old session timed out meanwhile
        assert client.post(URL, {"code": issued.code}).status_code == 200


def test_a_success_does_not_use_up_an_attempt(logged_in, new_agent, org, settings):
    settings.ACTIVATION_MAX_FAILURES_PER_ADDRESS = 5
    address = "198.51.100.9"
    client = logged_in(new_agent)
    for _ in range(4):
        _assert_invalid(client.post(URL, {"code": "WRONG-CODE2"}, REMOTE_ADDR=address))

    code = activation_code_issue(agent=new_agent).code
    assert client.post(URL, {"code": code}, REMOTE_ADDR=address).status_code == 200

    # The success gave its attempt back: four failures counted, for the agent and the address.
    assert AttemptCounter.objects.get(key=f"agent:{new_agent.pk}").count == 4
    assert AttemptCounter.objects.get(key=f"address:{address}").count == 4
    # So a colleague at the same address still has the fifth failure before the limit.
    colleague = logged_in(AgentFactory(organization=org, activated_at=None))
    _assert_invalid(colleague.post(URL, {"code": "WRONG-CODE2"}, REMOTE_ADDR=address))
    assert colleague.post(URL, {"code": "WRONG-CODE2"}, REMOTE_ADDR=address).status_code == 429


def test_attempts_are_limited_per_client_address(logged_in, org, settings):
    settings.ACTIVATION_MAX_FAILURES_PER_ADDRESS = 3
    agents = [AgentFactory(organization=org, activated_at=None) for _ in range(4)]
    for agent in agents[:3]:
        _assert_invalid(logged_in(agent).post(URL, {"code": "WRONG-CODE2"}, REMOTE_ADDR="198.51.100.9"))

    from_same_address = logged_in(agents[3]).post(URL, {"code": "WRONG-CODE2"}, REMOTE_ADDR="198.51.100.9")
    from_elsewhere = logged_in(agents[3]).post(URL, {"code": "WRONG-CODE2"}, REMOTE_ADDR="198.51.100.10")

    assert from_same_address.status_code == 429
    assert from_elsewhere.status_code == 400


def test_a_code_is_never_stored_in_clear(new_agent):
    issued = activation_code_issue(agent=new_agent)
    compact = codes.normalize(issued.code)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM activation_activationcode")
        row_text = " ".join(str(value) for value in cursor.fetchone())
    assert issued.code not in row_text and compact not in row_text
    assert ActivationCode.objects.get().code_hash == codes.digest(issued.code)


def test_codes_are_strong_readable_and_grouped():
    generated = {codes.generate() for _ in range(2000)}

    assert len(generated) == 2000
    assert codes.entropy_bits() >= 40
    for code in generated:
        first, second = code.split("-")
        assert len(first) == len(second) == 5
        assert not set(first + second) & set("01OIL")


def test_no_code_is_issued_for_an_activated_agent(agent):
    from em_agent.exceptions import ApplicationError

    with pytest.raises(ApplicationError) as refused:
        activation_code_issue(agent=agent)

    assert refused.value.code == "already_activated"
    assert not ActivationCode.objects.exists()


def test_a_new_code_voids_the_older_ones(new_agent):
    first = activation_code_issue(agent=new_agent)
    second = activation_code_issue(agent=new_agent)

    first.record.refresh_from_db()
    assert first.record.voided_at is not None
    assert second.record.voided_at is None


def test_codes_expire_after_72_hours_by_default(new_agent):
    issued = activation_code_issue(agent=new_agent)

    assert issued.record.expires_at - issued.record.issued_at == dt.timedelta(hours=72)


def test_the_command_prints_a_working_code(new_agent, capsys):
    call_command("issue_activation_code", new_agent.user.email, "--ttl-hours", "2")

    printed = capsys.readouterr().out.strip()
    record = ActivationCode.objects.get()
    assert record.code_hash == codes.digest(printed)
    assert record.expires_at - record.issued_at == dt.timedelta(hours=2)


@pytest.mark.django_db(transaction=True)
def test_two_requests_redeeming_one_code_give_exactly_one_success(postgres, org):
    agent = AgentFactory(organization=org, activated_at=None)
    issued = activation_code_issue(agent=agent)
    clients = []
    for _ in range(2):
        client = AppClient()
        assert client.login(agent.user.email).status_code == 200
        clients.append(client)
    statuses = [
        response.status_code
        for response in run_together([lambda c=c: c.post(URL, {"code": issued.code}) for c in clients])
    ]

    assert statuses.count(200) == 1, statuses
    assert sorted(statuses) in ([200, 400], [200, 409])


@pytest.mark.django_db(transaction=True)
def test_racing_redemptions_meet_inside_the_claim_and_only_one_wins(postgres, org, monkeypatch):
    """The threads are held at the door of the redemption itself (after the attempt counters), so
    they really race on the code row: a check-then-act redemption would let several through."""
    from activation import services

    agent = AgentFactory(organization=org, activated_at=None)
    issued = activation_code_issue(agent=agent)
    racers = 4  # under the per-agent attempt limit, so every racer reaches the claim
    barrier = threading.Barrier(racers, timeout=30)
    real_redeem = services._redeem

    def redeem_together(**kwargs):
        barrier.wait()
        return real_redeem(**kwargs)

    monkeypatch.setattr(services, "_redeem", redeem_together)

    def activate() -> str:
        try:
            services.agent_activate(agent=Agent.objects.get(pk=agent.pk), code=issued.code, address=None)
        except ApplicationError as error:
            return error.code
        return "activated"

    outcomes = run_together([activate] * racers)

    assert outcomes.count("activated") == 1
    assert set(outcomes) <= {"activated", "invalid_activation_code", "already_activated"}
    assert ActivationCode.objects.get().redeemed_at is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_guesses_cannot_exceed_the_limit(postgres, org):
    agent = AgentFactory(organization=org, activated_at=None)
    clients = [AppClient() for _ in range(12)]
    for client in clients:
        client.login(agent.user.email)
    statuses = [
        response.status_code
        for response in run_together([lambda c=c: c.post(URL, {"code": "WRONG-CODE2"}) for c in clients])
    ]

    assert statuses.count(400) == 5
    assert statuses.count(429) == 7


def test_throttled_retries_do_not_lock_out_colleagues_at_the_same_address(logged_in, org, settings):
    settings.ACTIVATION_MAX_FAILURES_PER_ADDRESS = 8
    stuck, colleague = (AgentFactory(organization=org, activated_at=None) for _ in range(2))
    stuck_client = logged_in(stuck)
    statuses = [
        stuck_client.post(URL, {"code": "WRONG-CODE2"}, REMOTE_ADDR="198.51.100.9").status_code
        for _ in range(12)
    ]
    assert statuses == [400] * 5 + [429] * 7

    code = activation_code_issue(agent=colleague).code
    response = logged_in(colleague).post(URL, {"code": code}, REMOTE_ADDR="198.51.100.9")

    assert response.status_code == 200
