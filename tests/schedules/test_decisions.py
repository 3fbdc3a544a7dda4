"""The decision lifecycle (schedules.decisions) on its own: a Lifecycle whose apply callback is a fake
that records its calls, so what is shown is the lifecycle's part (claim, authorisation, verdict,
approve, deny, withdraw, lapse, reason, notifying), not the schedule change a request type makes.
ScheduleRequest serves as the Decision subclass (a model needs an app); its own lifecycle
(schedules.requests.SCHEDULE_REQUESTS) is tested through the API in test_requests.py."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.utils.translation import gettext_noop

from em_agent.exceptions import ApplicationError
from em_agent.messages import Reason
from notifications.kinds import kind_get, render
from notifications.models import Notification
from schedules.approval import Verdict
from schedules.decisions import (
    Lifecycle,
    decision_approve,
    decision_claim_pending,
    decision_deny,
    decision_follow_verdict,
    decision_withdraw,
    decisions_lapse,
)
from schedules.models import Activity, ApprovalRule, RequestStatus, RequestType, RuleAction, ScheduleRequest
from tests.conftest import run_together
from tests.factories import SupervisorFactory

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 12, 3)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False):
        yield


class FakeApply:
    """The apply callback: records (request id, actor, inside a transaction?) and, when told to,
    refuses as a request type's change would (a schedule that no longer fits)."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls: list[tuple[int, object, bool]] = []
        self.refuse = refuse

    def __call__(self, request, actor) -> None:
        self.calls.append((request.pk, actor, connection.in_atomic_block))
        if self.refuse:
            raise ApplicationError("schedule_changed", "The day changed.", status_code=409)
        request.comment = f"applied by {actor.email if actor else 'the engine'}"


def _lifecycle(apply: FakeApply, **kwargs) -> Lifecycle[ScheduleRequest]:
    return Lifecycle(
        model=ScheduleRequest,
        approved_kind="schedule_request_approved",
        denied_kind="schedule_request_denied",
        apply=apply,
        params=lambda request: {"request_id": request.pk, "date": request.date.isoformat()},
        applied_fields=("comment",),  # what the fake's apply records on the request
        **kwargs,
    )


@pytest.fixture
def pending(agent) -> ScheduleRequest:
    return ScheduleRequest.objects.create(agent=agent, action="add", date=DAY)


def _told(agent) -> list[tuple[str, dict]]:
    return [(n.kind, n.params) for n in Notification.objects.filter(user=agent.user).order_by("pk")]


def test_a_supervisors_approval_applies_in_the_decisions_transaction_records_and_tells(
    agent, supervisor, pending
):
    apply = FakeApply()
    decided = decision_approve(lifecycle=_lifecycle(apply), pk=pending.pk, actor=supervisor)

    assert apply.calls == [(pending.pk, supervisor, True)]
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by, pending.decided_by_rule) == (
        RequestStatus.APPROVED,
        supervisor,
        None,
    )
    assert pending.decided_at == dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
    assert pending.comment == f"applied by {supervisor.email}"  # the callback's fields saved with it
    assert pending.reason_text("en") == f"Approved by {supervisor.get_full_name() or supervisor.email}."
    assert decided.pk == pending.pk
    assert _told(agent) == [("schedule_request_approved", {"request_id": pending.pk, "date": "2026-12-03"})]
    assert not Activity.objects.exists()  # the lifecycle changes no schedule: the callback does


def test_an_apply_that_refuses_undoes_the_decision(agent, supervisor, pending):
    apply = FakeApply(refuse=True)
    with pytest.raises(ApplicationError) as refused:
        decision_approve(lifecycle=_lifecycle(apply), pk=pending.pk, actor=supervisor)
    assert refused.value.code == "schedule_changed"
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by, pending.comment) == (RequestStatus.PENDING, None, "")
    assert _told(agent) == []


def test_the_check_before_a_persons_approval_can_refuse_it(agent, supervisor, pending):
    def passed(request, now):
        raise ApplicationError("in_the_past", "Too late.", status_code=409)

    apply = FakeApply()
    with pytest.raises(ApplicationError):
        decision_approve(
            lifecycle=_lifecycle(apply, check_approvable=passed), pk=pending.pk, actor=supervisor
        )
    assert apply.calls == []
    assert ScheduleRequest.objects.get().status == RequestStatus.PENDING


@pytest.mark.parametrize("who", ["agent", "nobody", "other supervisor"])
def test_only_someone_who_may_decide_for_the_organisation_decides(who, agent, other_org, pending):
    actor = {
        "agent": agent.user,
        "nobody": None,
        "other supervisor": SupervisorFactory(organization=other_org, email="fred@fabrikam.test"),
    }[who]
    apply = FakeApply()
    for decide in (decision_approve, decision_deny):
        with pytest.raises(ApplicationError) as refused:
            decide(lifecycle=_lifecycle(apply), pk=pending.pk, actor=actor)
        assert (refused.value.code, refused.value.status_code) == ("permission_denied", 403)
    assert apply.calls == []
    assert ScheduleRequest.objects.get().status == RequestStatus.PENDING


def test_the_organisation_and_recipients_are_the_types_to_say(
    agent, teammate, supervisor, other_org, pending
):
    """A swap is decided by the organisation of both agents and told to both: the lifecycle asks."""
    other_supervisor = SupervisorFactory(organization=other_org, email="fred@fabrikam.test")
    lifecycle = _lifecycle(
        FakeApply(), organization=lambda request: other_org, recipients=lambda request: [agent, teammate]
    )
    with pytest.raises(ApplicationError):
        decision_deny(lifecycle=lifecycle, pk=pending.pk, actor=supervisor)
    decision_deny(lifecycle=lifecycle, pk=pending.pk, actor=other_supervisor, reason="Full")
    assert [kind for kind, _params in _told(agent)] == ["schedule_request_denied"]
    assert _told(teammate) == [
        ("schedule_request_denied", {"request_id": pending.pk, "date": "2026-12-03", "reason": "Full"})
    ]


def test_a_decided_request_cannot_be_decided_again(supervisor, pending):
    apply = FakeApply()
    decision_deny(lifecycle=_lifecycle(apply), pk=pending.pk, actor=supervisor, reason="No")
    with pytest.raises(ApplicationError) as refused:
        decision_approve(lifecycle=_lifecycle(apply), pk=pending.pk, actor=supervisor)
    assert (refused.value.code, refused.value.status_code) == ("not_pending", 409)
    assert apply.calls == []


def test_the_engines_verdicts_approve_decline_or_leave_it_to_a_supervisor_with_its_reason(agent, org):
    agent.language = "nl"
    agent.save()
    rule = ApprovalRule.objects.create(organization=org, request_type=RequestType.SCHEDULE)
    apply = FakeApply()
    lifecycle = _lifecycle(apply)
    approved, declined, left = (
        ScheduleRequest.objects.create(agent=agent, action="add", date=DAY) for _ in range(3)
    )

    decision_follow_verdict(
        lifecycle=lifecycle,
        decision=approved,
        verdict=Verdict(RuleAction.AUTO_APPROVE, rule, Reason(gettext_noop("Approved automatically."))),
    )
    decision_follow_verdict(
        lifecycle=lifecycle,
        decision=declined,
        verdict=Verdict(RuleAction.AUTO_DECLINE, rule, Reason(gettext_noop("A supervisor decides."))),
    )
    decision_follow_verdict(
        lifecycle=lifecycle,
        decision=left,
        verdict=Verdict(RuleAction.MANUAL, rule, Reason(gettext_noop("A supervisor decides."))),
    )

    assert apply.calls == [(approved.pk, None, True)]
    for request in (approved, declined, left):
        request.refresh_from_db()
    assert (approved.status, approved.decided_by_rule, approved.decided_by) == (
        RequestStatus.APPROVED,
        rule,
        None,
    )
    assert (declined.status, declined.decided_by_rule) == (RequestStatus.DENIED, rule)
    assert (left.status, left.decided_by_rule, left.decided_at) == (RequestStatus.PENDING, None, None)
    assert left.reason_text("en") == "A supervisor decides."
    denied = Notification.objects.get(user=agent.user, kind="schedule_request_denied")
    # Kept untranslated, so that each reader gets it in their language (the app asks in any).
    assert denied.params["reason"] == {"msgid": "A supervisor decides.", "params": {}}
    for language in ("nl", "en"):
        _title, body = render(
            kind_get("schedule_request_denied"), denied.params, language=language, zone=agent.zone
        )
        assert body.endswith(declined.reason_text(language))


def test_only_a_pending_request_is_withdrawn(agent, supervisor, pending):
    lifecycle = _lifecycle(FakeApply())
    decision_withdraw(lifecycle=lifecycle, decision=pending, by=agent.user)
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == (RequestStatus.WITHDRAWN, agent.user)
    with pytest.raises(ApplicationError) as refused:
        decision_withdraw(lifecycle=lifecycle, decision=pending, by=agent.user)
    assert refused.value.code == "not_pending"
    assert _told(agent) == []  # the agent did it: nothing to tell


def test_lapsing_denies_what_is_still_pending_and_skips_what_was_decided(agent, supervisor):
    lifecycle = _lifecycle(FakeApply())
    waiting, decided = (ScheduleRequest.objects.create(agent=agent, action="add", date=DAY) for _ in range(2))
    decision_approve(lifecycle=lifecycle, pk=decided.pk, actor=supervisor)

    reason = Reason(gettext_noop("The requested time passed before a supervisor decided."))
    assert decisions_lapse(lifecycle=lifecycle, pending=[waiting.pk, decided.pk, 10**9], reason=reason) == 1
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by) == (RequestStatus.DENIED, None)
    assert waiting.reason_text("en") == "The requested time passed before a supervisor decided."
    with pytest.raises(ApplicationError):
        decision_claim_pending(lifecycle=lifecycle, pk=waiting.pk)


@pytest.mark.django_db(transaction=True)
def test_two_deciders_at_once_apply_it_once(postgres, agent, supervisor, pending):
    other = SupervisorFactory(organization=agent.organization, email="second.supervisor@contoso.test")
    apply = FakeApply()
    lifecycle = _lifecycle(apply)

    def approve(actor):
        def call():
            try:
                decision_approve(lifecycle=lifecycle, pk=pending.pk, actor=actor)
                return "approved"
            except ApplicationError as exc:
                return exc.code

        return call

    assert sorted(run_together([approve(supervisor), approve(other)])) == ["approved", "not_pending"]
    assert len(apply.calls) == 1
    assert Notification.objects.filter(user=agent.user).count() == 1
