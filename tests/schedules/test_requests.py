import datetime as dt

import pytest
import time_machine

from em_agent.exceptions import ApplicationError
from notifications.models import Notification
from schedules.models import (
    Activity,
    ApprovalRule,
    BlackoutPeriod,
    RequestStatus,
    RequestType,
    RuleAction,
    ScheduleChange,
    ScheduleRequest,
)
from schedules.requests import schedule_request_approve, schedule_request_deny
from tests.conftest import run_together
from tests.schedules.factories import ActivityCodeFactory, local, shift

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 12, 3)  # a Thursday; "now" is Tuesday 2026-12-01 09:00 in Amsterdam


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False):
        yield


@pytest.fixture
def training(org):
    return ActivityCodeFactory(
        organization=org, code="TRAIN", name="Training", category="training", open_for_requests=True
    )


@pytest.fixture
def day(agent, training):
    shift(agent, DAY, ("PHONE", "09:00", "12:00"), ("LUNCH", "12:00", "12:30"), ("PHONE", "12:30", "17:00"))
    return DAY


def _rule(org, code=None, **kwargs):
    return ApprovalRule.objects.create(
        organization=org, request_type=RequestType.SCHEDULE, activity_code=code, **kwargs
    )


def _add(client, start="2026-12-03T17:00:00+01:00", end="2026-12-03T18:00:00+01:00", code="TRAIN", **extra):
    return client.post(
        "/api/v1/schedule/requests",
        {
            "action": "add",
            "activity_code": code,
            "start": start,
            "end": end,
            "comment": "Product training",
            **extra,
        },
    )


def _kinds(agent):
    return sorted(Notification.objects.filter(user=agent.user).values_list("kind", flat=True))


def _day_codes(agent, date=DAY):
    return [
        (a.activity_code.code, a.start.astimezone(agent.zone).strftime("%H:%M"))
        for a in Activity.objects.filter(agent=agent, day__date=date)
        .select_related("activity_code")
        .order_by("start")
    ]


def test_an_auto_approved_request_has_changed_the_schedule_when_it_answers(agent, day, training, logged_in):
    _rule(agent.organization, training, action=RuleAction.AUTO_APPROVE)
    client = logged_in(agent)
    Notification.objects.all().delete()

    response = _add(client)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "approved"
    assert body["status_reason"] == "Approved automatically."
    assert body["start"] == "2026-12-03T17:00:00+01:00"
    assert ("TRAIN", "17:00") in _day_codes(agent)
    assert _kinds(agent) == ["schedule_adjusted", "schedule_request_approved"]
    request = ScheduleRequest.objects.get()
    assert request.change is not None and request.decided_by_rule is not None


def test_without_a_rule_a_supervisor_decides_and_approval_applies_it(
    agent, day, training, supervisor, logged_in
):
    client = logged_in(agent)
    body = _add(client).json()
    assert body["status"] == "pending"
    assert ("TRAIN", "17:00") not in _day_codes(agent)

    schedule_request_approve(request_id=body["id"], actor=supervisor)

    assert ("TRAIN", "17:00") in _day_codes(agent)
    detail = client.get(f"/api/v1/schedule/requests/{body['id']}").json()
    assert detail["status"] == "approved"
    assert detail["status_reason"] == "Approved by Sam Jansen."
    assert ScheduleRequest.objects.get().decided_by == supervisor


def test_a_supervisor_denies_with_a_reason_the_agent_reads(agent, day, training, supervisor, logged_in):
    client = logged_in(agent)
    request_id = _add(client).json()["id"]

    schedule_request_deny(request_id=request_id, actor=supervisor, reason="Peak hour, sorry.")

    assert client.get(f"/api/v1/schedule/requests/{request_id}").json()["status"] == "denied"
    denied = Notification.objects.get(user=agent.user, kind="schedule_request_denied")
    assert denied.params["reason"] == "Peak hour, sorry."
    assert ("TRAIN", "17:00") not in _day_codes(agent)


def test_a_rule_declines_automatically_with_its_reason(agent, day, training, logged_in):
    _rule(
        agent.organization,
        training,
        action=RuleAction.AUTO_APPROVE,
        min_lead_hours=72,
        when_conditions_fail=RuleAction.AUTO_DECLINE,
    )

    body = _add(logged_in(agent)).json()

    assert body["status"] == "denied"
    assert body["status_reason"] == "Declined automatically: requests need 72 hours' notice."
    assert "schedule_request_denied" in _kinds(agent)


def test_a_failed_condition_can_send_it_to_a_supervisor_instead(agent, teammate, day, training, logged_in):
    shift(teammate, DAY, ("PHONE", "09:00", "17:00"))
    _rule(agent.organization, training, action=RuleAction.AUTO_APPROVE, max_per_day=1)
    assert _add(logged_in(teammate)).json()["status"] == "approved"

    body = _add(logged_in(agent)).json()

    assert body["status"] == "pending"
    assert body["status_reason"] == "Sent to a supervisor: the day already has the maximum of 1 requests."


def test_a_blackout_date_declines(agent, day, training, logged_in):
    _rule(agent.organization, training, action=RuleAction.AUTO_APPROVE)
    BlackoutPeriod.objects.create(
        organization=agent.organization, start_date=DAY, end_date=DAY, reason="Black Friday week"
    )

    body = _add(logged_in(agent)).json()

    assert body["status"] == "denied"
    assert "Black Friday week" in body["status_reason"]


def test_a_code_specific_rule_wins_over_the_general_one(agent, day, training, logged_in):
    _rule(agent.organization, None, action=RuleAction.AUTO_DECLINE, priority=1)
    _rule(agent.organization, training, action=RuleAction.AUTO_APPROVE, priority=50)
    assert _add(logged_in(agent)).json()["status"] == "approved"


def test_edit_keeps_the_activity_and_cancel_removes_it(agent, day, training, supervisor, logged_in):
    _rule(agent.organization, None, action=RuleAction.AUTO_APPROVE)
    client = logged_in(agent)
    morning = Activity.objects.filter(agent=agent, day__date=DAY).order_by("start").first()

    edited = client.post(
        "/api/v1/schedule/requests",
        {
            "action": "edit",
            "activity_id": morning.pk,
            "activity_code": "TRAIN",
            "start": "2026-12-03T09:00:00+01:00",
            "end": "2026-12-03T11:00:00+01:00",
        },
    ).json()
    # The WFM planned the morning: even under an approve-everything rule a supervisor decides.
    assert edited["status"] == "pending", edited
    assert edited["status_reason"] == "Changes to activities planned for you need a supervisor."
    schedule_request_approve(request_id=edited["id"], actor=supervisor)
    assert Activity.objects.get(pk=morning.pk).activity_code.code == "TRAIN"

    cancelled = client.post(
        "/api/v1/schedule/requests", {"action": "cancel", "activity_id": morning.pk}
    ).json()
    assert cancelled["status"] == "approved"  # it came from the agent's own request
    assert not Activity.objects.filter(pk=morning.pk).exists()
    assert _day_codes(agent) == [("LUNCH", "12:00"), ("PHONE", "12:30")]


def test_turning_work_into_training_is_judged_by_the_work_codes_rule_too(agent, day, training, logged_in):
    _rule(agent.organization, training, action=RuleAction.AUTO_APPROVE)
    phone = Activity.objects.filter(agent=agent, day__date=DAY).order_by("start").first()

    edited = (
        logged_in(agent)
        .post(
            "/api/v1/schedule/requests",
            {
                "action": "edit",
                "activity_id": phone.pk,
                "activity_code": "TRAIN",
                "start": "2026-12-03T09:00:00+01:00",
                "end": "2026-12-03T12:00:00+01:00",
            },
        )
        .json()
    )

    assert edited["status"] == "pending"
    assert Activity.objects.get(pk=phone.pk).activity_code.code == "PHONE"


def test_the_stricter_of_two_codes_rules_wins(agent, day, training, logged_in):
    phone = Activity.objects.filter(agent=agent, day__date=DAY).order_by("start").first()
    _rule(agent.organization, training, action=RuleAction.AUTO_APPROVE)
    _rule(agent.organization, phone.activity_code, action=RuleAction.AUTO_DECLINE)

    edited = (
        logged_in(agent)
        .post(
            "/api/v1/schedule/requests",
            {
                "action": "edit",
                "activity_id": phone.pk,
                "activity_code": "TRAIN",
                "start": "2026-12-03T09:00:00+01:00",
                "end": "2026-12-03T12:00:00+01:00",
            },
        )
        .json()
    )

    assert edited["status"] == "denied"


@pytest.mark.parametrize(
    "payload, status_code, code, field",
    [
        # Overlaps the morning's phone block.
        ({"start": "2026-12-03T11:00:00+01:00", "end": "2026-12-03T13:00:00+01:00"}, 409, "overlap", None),
        (
            {"start": "2026-11-30T17:00:00+01:00", "end": "2026-11-30T18:00:00+01:00"},
            400,
            "in_the_past",
            "start",
        ),
        (
            {"start": "2026-12-04T17:00:00+01:00", "end": "2026-12-04T18:00:00+01:00"},
            409,
            "day_not_published",
            None,
        ),
        ({"code": "PHONE"}, 400, "validation_error", "activity_code"),
        ({"code": "NOPE"}, 400, "validation_error", "activity_code"),
        ({"start": "2026-12-03T17:00:00", "end": "2026-12-03T18:00:00"}, 400, "validation_error", "start"),
        ({"end": "2026-12-03T16:00:00+01:00"}, 400, "validation_error", "end"),
        ({"comment": "x" * 501}, 400, "validation_error", "comment"),
    ],
)
def test_invalid_requests(agent, day, training, logged_in, payload, status_code, code, field):
    shift(agent, dt.date(2026, 12, 4), ("PHONE", "09:00", "17:00"), published=False)
    response = _add(logged_in(agent), **payload)
    assert response.status_code == status_code, response.content
    assert response.json()["code"] == code
    if field:
        assert field in response.json()["fields"]
    assert not ScheduleRequest.objects.exists()


def test_another_agents_activity_and_request_are_not_found(
    agent, outsider, teammate, day, training, logged_in
):
    shift(teammate, DAY, ("PHONE", "09:00", "17:00"))
    theirs = Activity.objects.filter(agent=teammate).first()
    client = logged_in(agent)
    response = client.post("/api/v1/schedule/requests", {"action": "cancel", "activity_id": theirs.pk})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"

    mine = _add(client).json()["id"]
    stranger = logged_in(outsider)
    assert stranger.get(f"/api/v1/schedule/requests/{mine}").status_code == 404
    assert stranger.delete(f"/api/v1/schedule/requests/{mine}").status_code == 404
    assert stranger.get("/api/v1/schedule/requests").json()["results"] == []
    assert ScheduleRequest.objects.get().status == RequestStatus.PENDING


def test_withdraw_a_pending_request_once(agent, day, training, logged_in):
    client = logged_in(agent)
    request_id = _add(client).json()["id"]

    assert client.delete(f"/api/v1/schedule/requests/{request_id}").status_code == 204
    again = client.delete(f"/api/v1/schedule/requests/{request_id}")
    assert again.status_code == 409
    assert again.json()["code"] == "not_pending"
    assert client.get("/api/v1/schedule/requests?status=withdrawn").json()["results"][0]["id"] == request_id
    assert client.get("/api/v1/schedule/requests?status=pending").json()["results"] == []
    assert client.get("/api/v1/schedule/requests?status=maybe").status_code == 400


def test_pending_requests_per_agent_are_bounded(agent, day, training, logged_in, monkeypatch):
    monkeypatch.setattr("schedules.requests.MAX_PENDING_PER_AGENT", 2)
    client = logged_in(agent)
    assert _add(client).status_code == 201
    assert _add(client, start="2026-12-03T18:00:00+01:00", end="2026-12-03T19:00:00+01:00").status_code == 201
    third = _add(client, start="2026-12-03T19:00:00+01:00", end="2026-12-03T20:00:00+01:00")
    assert third.status_code == 409
    assert third.json()["code"] == "too_many_pending_requests"


def test_approving_a_request_whose_activity_is_gone_is_refused(agent, day, training, supervisor, logged_in):
    client = logged_in(agent)
    morning = Activity.objects.filter(agent=agent, day__date=DAY).order_by("start").first()
    request_id = client.post(
        "/api/v1/schedule/requests", {"action": "cancel", "activity_id": morning.pk}
    ).json()["id"]
    shift(agent, DAY, ("PHONE", "10:00", "17:00"))  # the WFM replaced the day meanwhile

    with pytest.raises(ApplicationError) as refused:
        schedule_request_approve(request_id=request_id, actor=supervisor)
    assert refused.value.code == "schedule_changed"
    assert ScheduleRequest.objects.get().status == RequestStatus.PENDING


@pytest.mark.django_db(transaction=True)
def test_two_supervisors_approving_at_once_apply_it_once(
    postgres, agent, day, training, supervisor, logged_in
):
    other = type(supervisor).objects.create_user(
        "sue@contoso.test", organization=agent.organization, is_staff=True
    )
    request_id = _add(logged_in(agent)).json()["id"]
    changes_before = ScheduleChange.objects.count()

    def approve(actor):
        def call():
            try:
                schedule_request_approve(request_id=request_id, actor=actor)
                return "approved"
            except ApplicationError as error:
                return error.code

        return call

    results = run_together([approve(supervisor), approve(other)])

    assert sorted(results) == ["approved", "not_pending"]
    assert ScheduleChange.objects.count() == changes_before + 1
    assert Activity.objects.filter(agent=agent, activity_code=training).count() == 1
    assert Notification.objects.filter(user=agent.user, kind="schedule_request_approved").count() == 1


def test_a_pending_cancel_keeps_its_activity_through_another_change_that_day(
    agent, day, training, supervisor, logged_in
):
    _rule(agent.organization, training, action=RuleAction.AUTO_APPROVE)
    client = logged_in(agent)
    afternoon = Activity.objects.filter(agent=agent, day__date=DAY).order_by("start").last()
    cancel = client.post(
        "/api/v1/schedule/requests", {"action": "cancel", "activity_id": afternoon.pk}
    ).json()
    assert cancel["status"] == "pending"

    assert _add(client).json()["status"] == "approved"  # training after the shift, same day

    assert client.get(f"/api/v1/schedule/requests/{cancel['id']}").json()["activity_id"] == afternoon.pk
    schedule_request_approve(request_id=cancel["id"], actor=supervisor)
    assert not Activity.objects.filter(pk=afternoon.pk).exists()


def test_an_approved_edit_still_names_its_activity(agent, day, training, supervisor, logged_in):
    client = logged_in(agent)
    morning = Activity.objects.filter(agent=agent, day__date=DAY).order_by("start").first()
    edit = client.post(
        "/api/v1/schedule/requests",
        {
            "action": "edit",
            "activity_id": morning.pk,
            "activity_code": "TRAIN",
            "start": "2026-12-03T09:00:00+01:00",
            "end": "2026-12-03T10:00:00+01:00",
        },
    ).json()

    schedule_request_approve(request_id=edit["id"], actor=supervisor)

    assert client.get(f"/api/v1/schedule/requests/{edit['id']}").json()["activity_id"] == morning.pk


@pytest.mark.parametrize(
    "start",
    [
        "2026-12-03T25:00:00+01:00",
        "2026-12-32T17:00:00+01:00",
        "2026-12-03T17:00:00+25:00",
        "2026-12-03T17:00:00" + " " * 60,
    ],
)
def test_malformed_or_naive_times_are_400(agent, day, training, logged_in, start):
    response = _add(logged_in(agent), start=start)
    assert response.status_code == 400
    assert "start" in response.json()["fields"]


def test_a_rules_reason_is_read_in_the_readers_language(agent, day, training, logged_in):
    _rule(
        agent.organization,
        training,
        action=RuleAction.AUTO_APPROVE,
        min_lead_hours=72,
        when_conditions_fail=RuleAction.AUTO_DECLINE,
    )
    client = logged_in(agent)
    request_id = _add(client).json()["id"]

    english = client.get(f"/api/v1/schedule/requests/{request_id}").json()["status_reason"]
    dutch = client.get(f"/api/v1/schedule/requests/{request_id}", HTTP_ACCEPT_LANGUAGE="nl").json()[
        "status_reason"
    ]

    assert english == "Declined automatically: requests need 72 hours' notice."
    assert dutch == "Automatisch afgewezen: aanvragen moeten 72 uur van tevoren worden ingediend."


def test_an_iex_organisation_takes_no_schedule_requests(logged_in):
    from em_agent.models import Organization
    from tests.factories import AgentFactory

    iex = Organization.objects.create(
        name="Fabrikam", slug="fab", wfm_system="iex", default_timezone="America/New_York"
    )
    frank = AgentFactory(organization=iex)
    shift(frank, DAY, ("PHONE", "09:00", "17:00"))
    phone = Activity.objects.get(agent=frank)

    response = logged_in(frank).post(
        "/api/v1/schedule/requests", {"action": "cancel", "activity_id": phone.pk}
    )

    assert response.status_code == 409
    assert response.json()["code"] == "not_available_for_wfm_system"


def test_one_pending_request_per_activity(agent, day, logged_in):
    client = logged_in(agent)
    phone = Activity.objects.filter(agent=agent, day__date=DAY).order_by("start").first()
    assert (
        client.post("/api/v1/schedule/requests", {"action": "cancel", "activity_id": phone.pk}).status_code
        == 201
    )

    again = client.post("/api/v1/schedule/requests", {"action": "cancel", "activity_id": phone.pk})

    assert again.status_code == 409
    assert again.json()["code"] == "request_pending"


def test_an_activity_of_an_unpublished_day_is_not_found(agent, logged_in):
    shift(agent, DAY, ("PHONE", "09:00", "17:00"), published=False)
    hidden = Activity.objects.get(agent=agent)

    response = logged_in(agent).post(
        "/api/v1/schedule/requests", {"action": "cancel", "activity_id": hidden.pk}
    )

    assert response.status_code == 404


def test_an_edit_keeps_the_activity_note_and_the_comment_stays_on_the_request(
    agent, training, supervisor, logged_in
):
    from schedules.services import ActivitySpec, DayPlan, schedule_days_apply

    phone = ActivityCodeFactory(organization=agent.organization, code="PHONE")
    schedule_days_apply(
        plans=[
            DayPlan(
                agent=agent,
                date=DAY,
                published=True,
                activities=[
                    ActivitySpec(
                        activity_code_id=phone.pk,
                        start=local(agent, DAY, "09:00"),
                        end=local(agent, DAY, "12:00"),
                        note="Queue: Billing NL",
                    ),
                ],
            )
        ],
        source="wfm",
    )
    activity = Activity.objects.get(agent=agent)
    edit = (
        logged_in(agent)
        .post(
            "/api/v1/schedule/requests",
            {
                "action": "edit",
                "activity_id": activity.pk,
                "activity_code": "TRAIN",
                "start": "2026-12-03T09:00:00+01:00",
                "end": "2026-12-03T10:00:00+01:00",
                "comment": "New product",
            },
        )
        .json()
    )

    schedule_request_approve(request_id=edit["id"], actor=supervisor)

    activity.refresh_from_db()
    assert activity.note == "Queue: Billing NL"
    assert ScheduleRequest.objects.get().comment == "New product"


def test_a_codes_daily_maximum_counts_only_that_codes_requests(agent, teammate, day, training, logged_in):
    ActivityCodeFactory(organization=agent.organization, code="COACH", open_for_requests=True)
    shift(teammate, DAY, ("PHONE", "09:00", "17:00"))
    _rule(agent.organization, training, action=RuleAction.AUTO_APPROVE, max_per_day=1)
    assert _add(logged_in(teammate), code="COACH").json()["status"] == "pending"  # no rule for COACH

    assert _add(logged_in(agent)).json()["status"] == "approved"  # the first TRAIN of the day


def test_a_supervisor_cannot_approve_once_the_time_has_passed(agent, day, training, supervisor, logged_in):
    request_id = _add(logged_in(agent)).json()["id"]

    with time_machine.travel("2026-12-04 08:00:00 +00:00", tick=False):
        with pytest.raises(ApplicationError) as refused:
            schedule_request_approve(request_id=request_id, actor=supervisor)
    assert refused.value.code == "in_the_past"
    assert ScheduleRequest.objects.get().status == RequestStatus.PENDING


@pytest.mark.django_db(transaction=True)
def test_an_approval_and_another_writer_on_the_same_day_both_land(
    postgres, agent, day, training, supervisor, logged_in
):
    from schedules.services import (
        ActivitySpec,
        DayPlan,
        activity_specs,
        schedule_day_lock,
        schedule_days_apply,
    )

    meeting = ActivityCodeFactory(organization=agent.organization, code="MEET")
    client = logged_in(agent)
    for attempt, hour in enumerate((19, 20, 21)):
        request_id = _add(
            client, start=f"2026-12-03T{hour}:00:00+01:00", end=f"2026-12-03T{hour}:30:00+01:00"
        ).json()["id"]

        def approve(request_id=request_id):
            schedule_request_approve(request_id=request_id, actor=supervisor)

        def add_meeting(hour=hour):
            from django.db import transaction

            with transaction.atomic():
                schedule_day_lock(agent=agent, date=DAY)
                specs = activity_specs(Activity.objects.filter(agent=agent, day__date=DAY))
                specs.append(
                    ActivitySpec(
                        activity_code_id=meeting.pk,
                        start=local(agent, DAY, f"{hour}:30"),
                        end=local(agent, DAY, f"{hour}:45"),
                    )
                )
                schedule_days_apply(
                    plans=[DayPlan(agent=agent, date=DAY, activities=specs)], source="supervisor"
                )

        run_together([approve, add_meeting])

        codes = _day_codes(agent)
        assert ("TRAIN", f"{hour}:00") in codes, attempt
        assert ("MEET", f"{hour}:30") in codes, attempt


def test_a_request_left_undecided_past_its_time_lapses(agent, day, training, logged_in):
    from schedules.tasks import lapse_requests

    request_id = _add(logged_in(agent)).json()["id"]
    assert lapse_requests() == 0

    with time_machine.travel("2026-12-03 16:01:00 +00:00", tick=False):  # 17:01 in Amsterdam
        assert lapse_requests() == 1
        assert lapse_requests() == 0

    request = ScheduleRequest.objects.get(pk=request_id)
    assert request.status == RequestStatus.DENIED
    assert request.reason_text() == "The requested time passed before a supervisor decided."
    assert Notification.objects.filter(user=agent.user, kind="schedule_request_denied").count() == 1


def test_the_lapse_task_is_in_beat():
    from django_celery_beat.models import PeriodicTask

    assert PeriodicTask.objects.filter(task="schedules.lapse_requests", enabled=True).exists()


def test_an_approved_cancel_still_names_the_activity_it_removed(agent, day, supervisor, logged_in):
    client = logged_in(agent)
    phone = Activity.objects.filter(agent=agent, day__date=DAY).order_by("start").first()
    cancel = client.post("/api/v1/schedule/requests", {"action": "cancel", "activity_id": phone.pk}).json()

    schedule_request_approve(request_id=cancel["id"], actor=supervisor)

    assert client.get(f"/api/v1/schedule/requests/{cancel['id']}").json()["activity_id"] == phone.pk
