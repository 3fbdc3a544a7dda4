"""A decision on a schedule request is authorised in the service, not only by the admin's scoping:
only a supervisor of the request's organisation, or a superuser, may approve or deny it."""

import datetime as dt

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import translation

from em_agent.authorization import can_decide_for
from em_agent.exceptions import ApplicationError
from notifications.models import Delivery, Notification
from schedules.admin import ScheduleRequestAdmin
from schedules.models import Activity, RequestStatus, ScheduleChange, ScheduleRequest
from schedules.requests import schedule_request_approve, schedule_request_create, schedule_request_deny
from tests.factories import SupervisorFactory, UserFactory
from tests.schedules.factories import ActivityCodeFactory, local, shift

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 12, 3)  # a Thursday; "now" is Tuesday 2026-12-01 09:00 in Amsterdam
QUEUE = "/admin/schedules/schedulerequest/"
DECISIONS = {
    "approve": lambda **kw: schedule_request_approve(**kw),
    "deny": lambda **kw: schedule_request_deny(**kw, reason="Full day"),
}


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False):
        yield


@pytest.fixture
def pending(agent) -> ScheduleRequest:
    """Alice's request to add training after her shift: no approval rule, so a supervisor decides."""
    ActivityCodeFactory(
        organization=agent.organization, code="TRAIN", name="Training", open_for_requests=True
    )
    shift(agent, DAY, ("PHONE", "09:00", "12:00"), ("LUNCH", "12:00", "12:30"), ("PHONE", "12:30", "17:00"))
    request = schedule_request_create(
        agent=agent,
        action="add",
        activity_code="TRAIN",
        start=local(agent, DAY, "17:00"),
        end=local(agent, DAY, "18:00"),
        comment="Product training",
    )
    assert request.status == RequestStatus.PENDING
    return request


@pytest.fixture
def other_supervisor(other_org):
    """Fabrikam's supervisor: staff, active, but of another organisation."""
    return SupervisorFactory(organization=other_org, email="fred@fabrikam.test")


def _state(request: ScheduleRequest) -> dict:
    """What a decision would change: the request, Alice's day and journal, and what she is told."""
    request.refresh_from_db()
    agent = request.agent
    return {
        "request": (
            request.status,
            request.status_reason,
            request.status_reason_i18n,
            request.decided_by_id,
            request.decided_by_rule_id,
            request.decided_at,
            request.change_id,
        ),
        "activities": sorted(
            Activity.objects.filter(agent=agent, day__date=DAY).values_list("activity_code__code", "start")
        ),
        "changes": ScheduleChange.objects.filter(agent=agent).count(),
        "notifications": sorted(Notification.objects.filter(user=agent.user).values_list("pk", flat=True)),
        "deliveries": Delivery.objects.count(),
    }


def _refused(decision: str, request: ScheduleRequest, actor) -> ApplicationError:
    before = _state(request)
    with pytest.raises(ApplicationError) as refused:
        DECISIONS[decision](request_id=request.pk, actor=actor)
    assert refused.value.code == "permission_denied"
    assert refused.value.status_code == 403
    assert refused.value.detail == "You may not decide on requests of this organisation."
    assert _state(request) == before  # still pending, nothing applied, nobody told
    assert before["request"][0] == RequestStatus.PENDING
    return refused.value


@pytest.mark.parametrize("decision", DECISIONS)
def test_the_agent_cannot_decide_its_own_request(decision, agent, pending):
    _refused(decision, pending, agent.user)


@pytest.mark.parametrize("decision", DECISIONS)
def test_a_teammate_cannot_decide_a_colleagues_request(decision, teammate, pending):
    _refused(decision, pending, teammate.user)


@pytest.mark.parametrize("decision", DECISIONS)
def test_a_supervisor_of_another_organisation_cannot_decide(decision, other_supervisor, pending):
    _refused(decision, pending, other_supervisor)


@pytest.mark.parametrize("decision", DECISIONS)
def test_an_inactive_supervisor_of_the_organisation_cannot_decide(decision, org, pending):
    former = SupervisorFactory(organization=org, email="former@contoso.test", is_active=False)
    _refused(decision, pending, former)


@pytest.mark.parametrize("decision", DECISIONS)
def test_an_inactive_superuser_cannot_decide(decision, pending):
    former = UserFactory(email="root@example.test", is_staff=True, is_superuser=True, is_active=False)
    _refused(decision, pending, former)


@pytest.mark.parametrize("decision", DECISIONS)
def test_staff_of_no_organisation_cannot_decide(decision, pending):
    helpdesk = UserFactory(email="helpdesk@example.test", is_staff=True)
    _refused(decision, pending, helpdesk)


@pytest.mark.parametrize("decision", DECISIONS)
def test_naming_no_actor_does_not_pass_for_an_automatic_decision(decision, pending):
    _refused(decision, pending, None)


def test_the_refusal_is_in_the_actors_language(other_supervisor, pending):
    with translation.override("nl"), pytest.raises(ApplicationError) as refused:
        schedule_request_approve(request_id=pending.pk, actor=other_supervisor)
    assert refused.value.detail == "U mag niet beslissen over aanvragen van deze organisatie."


def test_a_refused_actor_does_not_learn_that_a_request_was_decided(supervisor, other_supervisor, pending):
    schedule_request_deny(request_id=pending.pk, actor=supervisor, reason="Full day")

    with pytest.raises(ApplicationError) as refused:
        schedule_request_approve(request_id=pending.pk, actor=other_supervisor)

    assert refused.value.code == "permission_denied"  # not "not_pending (Denied)"


def test_the_organisations_supervisor_approves(agent, supervisor, pending):
    approved = schedule_request_approve(request_id=pending.pk, actor=supervisor)

    assert approved.status == RequestStatus.APPROVED and approved.decided_by == supervisor
    assert Activity.objects.filter(agent=agent, day__date=DAY, activity_code__code="TRAIN").exists()
    assert Notification.objects.filter(user=agent.user, kind="schedule_request_approved").count() == 1


def test_the_organisations_supervisor_denies(agent, supervisor, pending):
    denied = schedule_request_deny(request_id=pending.pk, actor=supervisor, reason="Full day")

    assert denied.status == RequestStatus.DENIED and denied.decided_by == supervisor
    assert Notification.objects.filter(user=agent.user, kind="schedule_request_denied").count() == 1


@pytest.mark.parametrize("decision", DECISIONS)
def test_a_superuser_of_no_organisation_decides_anywhere(decision, other_org, pending):
    root = UserFactory(email="root@example.test", is_staff=True, is_superuser=True)

    decided = DECISIONS[decision](request_id=pending.pk, actor=root)

    assert decided.status != RequestStatus.PENDING and decided.decided_by == root
    assert can_decide_for(user=root, organization=other_org)


def test_the_admin_shows_the_services_refusal_instead_of_deciding(
    monkeypatch, other_supervisor, org, pending
):
    # The queue's scoping keeps another organisation's requests out of reach; were it ever to let
    # one through, the service is what still refuses, and the admin says so.
    monkeypatch.setattr(
        ScheduleRequestAdmin, "get_queryset", lambda self, request: ScheduleRequest.objects.all()
    )
    before = _state(pending)
    client = Client()
    client.force_login(other_supervisor)

    response = client.post(
        QUEUE, {"action": "approve_selected", "_selected_action": [pending.pk], "apply": "1", "reason": ""}
    )

    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "1 request was not decided: You may not decide on requests of this organisation."
    ]
    assert _state(pending) == before


def test_the_admin_refusal_in_dutch(monkeypatch, other_supervisor, pending):
    monkeypatch.setattr(
        ScheduleRequestAdmin, "get_queryset", lambda self, request: ScheduleRequest.objects.all()
    )
    client = Client()
    client.force_login(other_supervisor)

    response = client.post(
        QUEUE,
        {"action": "deny_selected", "_selected_action": [pending.pk], "apply": "1", "reason": "Vol"},
        HTTP_ACCEPT_LANGUAGE="nl",
    )

    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Over 1 verzoek is niet beslist: U mag niet beslissen over aanvragen van deze organisatie."
    ]
    pending.refresh_from_db()
    assert pending.status == RequestStatus.PENDING
