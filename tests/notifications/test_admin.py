import pytest
from django.test import Client

from notifications.models import Channel, Delivery, DeliveryStatus
from notifications.services import notify
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_supervisors_see_their_own_organisations_deliveries_only(supervisor, agent, outsider):
    notify(recipients=[agent, outsider], kind="schedule_adjusted", params={"date": "2026-12-03"})
    client = _admin(supervisor)

    deliveries = client.get("/admin/notifications/delivery/")
    notifications = client.get("/admin/notifications/notification/")

    assert deliveries.status_code == 200 and notifications.status_code == 200
    assert b"alice@contoso.test" in notifications.content
    assert b"charlie@fabrikam.test" not in notifications.content
    assert deliveries.context["cl"].result_count == 2  # Alice's push and email
    assert b"Fabrikam" not in deliveries.content


def test_filters_by_state_kind_and_channel(supervisor, agent):
    notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})
    Delivery.objects.filter(channel=Channel.EMAIL).update(status=DeliveryStatus.FAILED, last_error="550 nope")
    client = _admin(supervisor)

    failed = client.get("/admin/notifications/delivery/", {"status": "failed"})
    by_kind = client.get("/admin/notifications/delivery/", {"notification__kind": "swap_offer"})

    assert failed.context["cl"].result_count == 1
    assert b"550 nope" in failed.content
    assert by_kind.context["cl"].result_count == 0


def test_failed_deliveries_can_be_retried(supervisor, agent, django_capture_on_commit_callbacks):
    notify(recipients=[agent], kind="schedule_adjusted", params={"date": "2026-12-03"})
    failed = Delivery.objects.get(channel=Channel.EMAIL)
    Delivery.objects.filter(pk=failed.pk).update(status=DeliveryStatus.FAILED, attempts=8, last_error="x")

    with django_capture_on_commit_callbacks(execute=True):
        _admin(supervisor).post(
            "/admin/notifications/delivery/", {"action": "retry_failed", "_selected_action": [failed.pk]}
        )

    failed.refresh_from_db()
    # Handed out again at once (the console backend sends it in this test).
    assert failed.status == DeliveryStatus.SENT
    assert failed.attempts == 1


def test_a_superuser_sees_every_delivery(agent, outsider):
    notify(recipients=[agent, outsider], kind="schedule_adjusted", params={"date": "2026-12-03"})

    listing = _admin(UserFactory(is_staff=True, is_superuser=True)).get("/admin/notifications/delivery/")

    assert listing.context["cl"].result_count == 4


def test_a_supervisor_sees_the_notifications_sent_to_supervisors_of_its_organisation(supervisor, other_org):
    from tests.factories import SupervisorFactory

    theirs = SupervisorFactory(organization=other_org)
    params = {"request_id": 3, "agent_name": "Alice", "start_date": "2026-12-07", "end_date": "2026-12-08"}
    notify(recipients=[supervisor, theirs], kind="time_off_cancelled", params=params)

    listing = _admin(supervisor).get("/admin/notifications/notification/")

    assert listing.context["cl"].result_count == 1
    assert b"sam@contoso.test" in listing.content


def test_a_supervisor_cannot_retry_another_organisations_delivery(supervisor, outsider):
    notify(recipients=[outsider], kind="schedule_adjusted", params={"date": "2026-12-03"})
    theirs = Delivery.objects.get(channel=Channel.EMAIL)
    Delivery.objects.filter(pk=theirs.pk).update(status=DeliveryStatus.FAILED)

    _admin(supervisor).post(
        "/admin/notifications/delivery/", {"action": "retry_failed", "_selected_action": [theirs.pk]}
    )

    theirs.refresh_from_db()
    assert theirs.status == DeliveryStatus.FAILED
