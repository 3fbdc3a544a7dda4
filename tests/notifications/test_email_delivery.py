"""Email through real SMTP (aiosmtpd on loopback), the outbox claims, retries and the sweeper."""

import datetime as dt

import pytest
import time_machine
from django.db import transaction

from notifications.delivery import LEASE, REDISPATCH_AFTER, deliveries_send, deliveries_sweep
from notifications.models import Channel, Delivery, DeliveryStatus
from notifications.services import notify
from tests.notifications.smtp_server import start_smtp_server


@pytest.fixture
def smtp(settings):
    controller, inbox = start_smtp_server()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    yield inbox
    controller.stop()


def _email_delivery(notification) -> Delivery:
    return notification.deliveries.get(channel=Channel.EMAIL)


@pytest.mark.django_db
def test_a_dutch_agent_gets_a_dutch_email_with_text_and_html(smtp, agent):
    agent.language = "nl"
    agent.save()
    notification = notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})[0]
    delivery = _email_delivery(notification)

    report = deliveries_send(ids=[delivery.pk])

    assert report.sent == 1
    [message] = smtp.messages
    assert message["To"] == "alice@contoso.test"
    assert message["Subject"] == "[EM Agent] Planning gewijzigd"
    assert message["X-EM-Notification"] == str(notification.pk)
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    assert "Uw planning voor donderdag 3 december is gewijzigd." in text
    assert "Uw planning voor donderdag 3 december is gewijzigd." in html
    assert "Open de EM Agent-app" in text
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT and delivery.sent_at is not None


@pytest.mark.django_db
def test_running_a_delivery_twice_sends_it_once(smtp, agent):
    delivery = _email_delivery(
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})[0]
    )

    deliveries_send(ids=[delivery.pk])
    again = deliveries_send(ids=[delivery.pk])

    assert again.sent == 0
    assert len(smtp.messages) == 1


@pytest.mark.django_db
def test_a_temporary_refusal_is_retried_with_backoff_then_sent(smtp, agent):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        delivery = _email_delivery(
            notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})[0]
        )
        smtp.refuse_with = "451 4.3.0 Try again later"
        deliveries_send(ids=[delivery.pk])
        delivery.refresh_from_db()
        assert delivery.status == DeliveryStatus.PENDING
        assert "451" in delivery.last_error
        assert (
            dt.timedelta(seconds=15)
            <= delivery.next_attempt_at - dt.datetime.now(dt.UTC)
            <= dt.timedelta(seconds=30)
        )
        assert deliveries_send(ids=[delivery.pk]).sent == 0  # not due yet

        smtp.refuse_with = None
        traveller.shift(31)
        assert deliveries_send(ids=[delivery.pk]).sent == 1

    assert len(smtp.messages) == 1


@pytest.mark.django_db
def test_a_permanent_refusal_fails_at_once(smtp, agent):
    delivery = _email_delivery(
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})[0]
    )
    smtp.refuse_with = "550 5.1.1 No such user"

    deliveries_send(ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert "550" in delivery.last_error


@pytest.mark.django_db
def test_after_the_last_attempt_a_delivery_is_failed_with_its_last_error(smtp, agent, settings):
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    smtp.refuse_with = "451 4.3.0 Try again later"
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        delivery = _email_delivery(
            notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})[0]
        )
        for _ in range(3):
            deliveries_send(ids=[delivery.pk])
            traveller.shift(3600)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3
    assert delivery.last_error.startswith("gave up after 3 attempts") and "451" in delivery.last_error


@pytest.mark.django_db
def test_the_mail_server_being_down_is_retried(agent, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 1  # nothing listens there
    delivery = _email_delivery(
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})[0]
    )

    deliveries_send(ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert "connect" in delivery.last_error


@pytest.mark.django_db(transaction=True)
def test_a_notification_in_a_transaction_that_rolls_back_is_never_delivered(smtp, agent):
    with pytest.raises(RuntimeError), transaction.atomic():
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})
        raise RuntimeError("the schedule change failed")

    assert not Delivery.objects.exists()
    assert smtp.messages == []


@pytest.mark.django_db(transaction=True)
def test_a_committed_notification_is_delivered_after_commit(smtp, agent):
    with transaction.atomic():
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})
        assert smtp.messages == []  # nothing leaves before the commit

    assert len(smtp.messages) == 1
    assert Delivery.objects.get(channel=Channel.EMAIL).status == DeliveryStatus.SENT


@pytest.mark.django_db
def test_the_sweeper_delivers_what_a_lost_enqueue_left_behind(smtp, agent):
    # In this test's transaction the on-commit enqueue never runs: as if the process died after commit.
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})
        assert deliveries_sweep() == 0  # fresh rows are left to their own task for a while
        traveller.shift(REDISPATCH_AFTER - dt.timedelta(seconds=1))
        assert deliveries_sweep() == 0  # maybe still queued behind a long fan-out
        traveller.shift(2)

        assert deliveries_sweep() == 2  # push and email handed out again

    assert len(smtp.messages) == 1
    assert deliveries_sweep() == 0


@pytest.mark.django_db
def test_the_sweeper_hands_a_queued_delivery_out_once_per_period(agent, monkeypatch):
    handed_out: list[int] = []
    monkeypatch.setattr("notifications.delivery.deliveries_dispatch", handed_out.extend)
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})
        traveller.shift(REDISPATCH_AFTER + dt.timedelta(seconds=1))
        deliveries_sweep()
        traveller.shift(60)
        deliveries_sweep()  # the next minute's sweep: the task it enqueued may simply be queued
        assert len(handed_out) == 2

        traveller.shift(REDISPATCH_AFTER)
        deliveries_sweep()

    assert len(handed_out) == 4


@pytest.mark.django_db
def test_the_sweeper_releases_a_claim_whose_worker_died(smtp, agent):
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False) as traveller:
        delivery = _email_delivery(
            notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})[0]
        )
        Delivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.SENDING, claimed_at=dt.datetime.now(dt.UTC), attempts=1
        )
        traveller.shift(LEASE - dt.timedelta(seconds=1))
        deliveries_sweep()
        assert smtp.messages == []  # still within its lease: maybe still running

        traveller.shift(2)
        deliveries_sweep()

    assert len(smtp.messages) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempts == 2


@pytest.mark.django_db
def test_running_every_delivery_task_twice_sends_nothing_twice(smtp, org):
    from tests.factories import AgentFactory

    agents = AgentFactory.create_batch(5, organization=org)
    notify(recipients=agents, kind="schedule_adjusted", params={"date": "2026-12-03"})
    ids = list(Delivery.objects.filter(channel=Channel.EMAIL).values_list("pk", flat=True))

    deliveries_send(ids=ids)
    deliveries_send(ids=ids)
    deliveries_sweep()

    assert sorted(message["To"] for message in smtp.messages) == sorted(agent.user.email for agent in agents)


@pytest.mark.django_db
def test_the_text_part_is_not_html_escaped(smtp, agent, teammate):
    teammate.name = "O'Brien & <Co>"
    notification = notify(
        recipients=[agent],
        kind="swap_accepted",
        params={"swap_id": 4, "by_name": teammate.name, "date": "2026-12-03"},
    )[0]

    deliveries_send(ids=[_email_delivery(notification).pk])

    text = smtp.messages[0].get_body(preferencelist=("plain",)).get_content()
    assert "O'Brien & <Co> accepted" in text


@pytest.mark.django_db
def test_a_delivery_that_loses_its_worker_every_time_ends_failed(smtp, agent, settings):
    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    delivery = _email_delivery(
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})[0]
    )
    long_ago = dt.datetime.now(dt.UTC) - LEASE - dt.timedelta(minutes=1)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.SENDING, claimed_at=long_ago, attempts=3
    )

    deliveries_sweep()

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert "worker was lost" in delivery.last_error
    assert smtp.messages == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_the_same_deliveries_send_each_once(postgres, smtp, org):
    from tests.conftest import run_together
    from tests.factories import AgentFactory

    agents = AgentFactory.create_batch(40, organization=org)
    notify(recipients=agents, kind="schedule_adjusted", params={"date": "2026-12-03"})  # sent on commit...
    Delivery.objects.update(status=DeliveryStatus.PENDING, attempts=0)  # ...so hand them out again
    smtp.messages.clear()
    ids = list(Delivery.objects.filter(channel=Channel.EMAIL).values_list("pk", flat=True))

    reports = run_together([lambda: deliveries_send(ids=ids) for _ in range(4)])

    assert sum(report.sent for report in reports) == 40
    assert sorted(message["To"] for message in smtp.messages) == sorted(agent.user.email for agent in agents)
