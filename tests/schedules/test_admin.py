"""Supervisors' schedule work in the admin: the request queue, decisions one by one and in bulk,
and editing a day through the schedule service."""

import datetime as dt

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client

from notifications.models import Notification
from schedules.feed import calendar_feed_get_or_create
from schedules.models import (
    Activity,
    ActivitySource,
    ApprovalRule,
    BlackoutPeriod,
    RequestStatus,
    ScheduleChange,
    ScheduleDay,
    ScheduleRequest,
)
from schedules.requests import schedule_request_approve, schedule_request_create, schedule_request_deny
from schedules.services import ActivitySpec, DayPlan, schedule_days_apply
from tests.factories import SupervisorFactory, UserFactory
from tests.schedules.factories import ActivityCodeFactory, local, shift

pytestmark = pytest.mark.django_db
DAY = dt.date(2026, 12, 3)  # a Thursday; "now" is Tuesday 2026-12-01 09:00 in Amsterdam
QUEUE = "/admin/schedules/schedulerequest/"
DAYS = "/admin/schedules/scheduleday/"


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False):
        yield


def _admin(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _workday(agent) -> None:
    ActivityCodeFactory(
        organization=agent.organization, code="TRAIN", name="Training", open_for_requests=True
    )
    shift(agent, DAY, ("PHONE", "09:00", "12:00"), ("LUNCH", "12:00", "12:30"), ("PHONE", "12:30", "17:00"))


def _request(agent, start: str = "17:00", end: str = "18:00") -> ScheduleRequest:
    """Pending: no approval rule, so a supervisor decides."""
    return schedule_request_create(
        agent=agent,
        action="add",
        activity_code="TRAIN",
        start=local(agent, DAY, start),
        end=local(agent, DAY, end),
        comment="Product training",
    )


def _kinds(agent) -> list[str]:
    return sorted(Notification.objects.filter(user=agent.user).values_list("kind", flat=True))


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _day_codes(agent) -> list[tuple[str, str, str]]:
    return [
        (
            a.activity_code.code,
            a.start.astimezone(agent.zone).strftime("%H:%M"),
            a.end.astimezone(agent.zone).strftime("%H:%M"),
        )
        for a in Activity.objects.filter(agent=agent, day__date=DAY).select_related("activity_code")
    ]


def _decide(client: Client, action: str, requests, reason: str | None):
    """The action from the queue, then (with a reason) the intermediate page's submit."""
    ids = [r.pk for r in requests]
    data: dict = {"action": action, "_selected_action": ids}
    if reason is not None:
        data |= {"apply": "1", "reason": reason}
    return client.post(QUEUE, data)


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_shows_the_organisations_pending_requests_at_once(supervisor, agent, teammate, outsider):
    for someone in (agent, teammate, outsider):
        _workday(someone)
    pending = _request(agent)
    decided = _request(teammate)
    schedule_request_deny(request_id=decided.pk, actor=supervisor, reason="Full day")
    _request(outsider)
    client = _admin(supervisor)

    queue = client.get(QUEUE)
    everything = client.get(QUEUE, {"status": "all"})

    assert queue.status_code == 200
    assert [r.pk for r in queue.context["cl"].result_list] == [pending.pk]
    assert "17:00–18:00" in queue.content.decode()  # in Alice's zone (16:00 UTC)
    assert b"TRAIN" in queue.content
    assert {r.pk for r in everything.context["cl"].result_list} == {pending.pk, decided.pk}
    assert b"Charlie" not in everything.content and b"Fabrikam" not in everything.content


def test_the_approve_action_asks_for_a_reason_on_its_own_page(supervisor, agent):
    _workday(agent)
    request = _request(agent)

    page = _decide(_admin(supervisor), "approve_selected", [request], reason=None)

    assert page.status_code == 200
    assert b'name="reason"' in page.content and b"Product training" in page.content
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING


def test_bulk_approve_applies_the_changes_and_tells_the_agents(supervisor, agent, teammate):
    _workday(agent)
    _workday(teammate)
    requests = [_request(agent), _request(teammate)]
    notified_before = _kinds(agent)

    response = _decide(_admin(supervisor), "approve_selected", requests, reason="Enjoy the training")

    assert response.status_code == 302
    assert _messages(response) == ["2 requests approved."]
    for request, someone in zip(requests, (agent, teammate), strict=True):
        request.refresh_from_db()
        assert request.status == RequestStatus.APPROVED
        assert request.status_reason == "Enjoy the training"
        assert request.decided_by == supervisor
        assert ("TRAIN", "17:00", "18:00") in _day_codes(someone)
    assert _kinds(agent).count("schedule_request_approved") == 1
    assert _kinds(agent).count("schedule_adjusted") == notified_before.count("schedule_adjusted") + 1


def test_bulk_deny_needs_a_reason_and_tells_the_agent(supervisor, agent):
    _workday(agent)
    request = _request(agent)
    client = _admin(supervisor)

    refused = _decide(client, "deny_selected", [request], reason="  ")
    request.refresh_from_db()
    assert refused.status_code == 200
    assert b"This field is required." in refused.content
    assert request.status == RequestStatus.PENDING

    response = _decide(client, "deny_selected", [request], reason="Training is full")

    request.refresh_from_db()
    assert _messages(response) == ["1 request denied."]
    assert request.status == RequestStatus.DENIED
    assert request.status_reason == "Training is full"
    denied = Notification.objects.get(user=agent.user, kind="schedule_request_denied")
    assert denied.params["reason"] == "Training is full"
    assert ("TRAIN", "17:00", "18:00") not in _day_codes(agent)


def test_an_already_decided_request_in_the_selection_is_reported_not_applied_twice(supervisor, agent):
    _workday(agent)
    first = _request(agent)
    second = _request(agent, "08:00", "09:00")
    colleague = SupervisorFactory(organization=agent.organization)
    schedule_request_approve(request_id=first.pk, actor=colleague)

    response = _decide(_admin(supervisor), "approve_selected", [first, second], reason="")

    assert _messages(response) == [
        "1 request approved.",
        "1 request was not pending any more: it had been decided or withdrawn.",
    ]
    first.refresh_from_db()
    assert first.decided_by == colleague
    assert _day_codes(agent).count(("TRAIN", "17:00", "18:00")) == 1
    assert _kinds(agent).count("schedule_request_approved") == 2
    assert ScheduleChange.objects.filter(agent=agent, source=ActivitySource.REQUEST).count() == 2


def test_a_request_that_no_longer_fits_is_reported_and_stays_pending(supervisor, agent):
    _workday(agent)
    request = _request(agent)
    shift(agent, DAY, ("PHONE", "09:00", "18:00"))  # the WFM has filled the evening since

    response = _decide(_admin(supervisor), "approve_selected", [request], reason="")

    [message] = _messages(response)
    assert message.startswith("The request of Alice for Dec. 3, 2026 no longer fits the schedule: ")
    request.refresh_from_db()
    assert request.status == RequestStatus.PENDING
    assert "schedule_request_approved" not in _kinds(agent)


def test_the_request_page_shows_the_agents_day_beside_it(supervisor, agent):
    _workday(agent)
    ScheduleDay.objects.filter(agent=agent, date=DAY).update(note="<script>alert(1)</script>")
    request = _request(agent)

    page = _admin(supervisor).get(f"{QUEUE}{request.pk}/change/")

    content = page.content.decode()
    assert page.status_code == 200
    for cell in ("PHONE", "09:00–12:00", "LUNCH", "12:00–12:30", "12:30–17:00", "17:00–18:00", "requested"):
        assert f"<td>{cell}</td>" in content or f"<strong>{cell}</strong>" in content
    assert "Europe/Amsterdam" in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content and "<script>alert(1)" not in content
    # Decided from the page through the same actions; the request itself is not a form to edit.
    assert 'name="action" value="approve_selected"' in content
    assert 'name="action" value="deny_selected"' in content
    assert 'name="_save"' not in content


def test_the_approve_button_of_the_request_page_leads_to_the_reason_page(supervisor, agent):
    _workday(agent)
    request = _request(agent)

    page = _admin(supervisor).post(QUEUE, {"action": "approve_selected", "_selected_action": [request.pk]})

    assert page.status_code == 200
    assert b'name="apply"' in page.content
    content = page.content.decode()
    assert f'name="_selected_action" value="{request.pk}"' in content  # the reason page keeps the selection
    assert f"<td>{agent.name}</td>" in content


def test_a_supervisor_cannot_reach_another_organisations_requests_or_days(supervisor, outsider):
    _workday(outsider)
    theirs = _request(outsider)
    their_day = ScheduleDay.objects.get(agent=outsider, date=DAY)
    client = _admin(supervisor)

    assert client.get(f"{QUEUE}{theirs.pk}/change/").status_code == 302  # "does not exist"
    assert client.get(f"{DAYS}{their_day.pk}/change/").status_code == 302
    response = _decide(client, "deny_selected", [theirs], reason="Nope")

    theirs.refresh_from_db()
    assert theirs.status == RequestStatus.PENDING
    assert "schedule_request_denied" not in _kinds(outsider)
    assert _messages(response)[-1] == "No request was selected."


def test_a_supervisor_cannot_edit_a_request_as_a_form(supervisor, agent):
    _workday(agent)
    request = _request(agent)

    response = _admin(supervisor).post(f"{QUEUE}{request.pk}/change/", {"status": "approved"})

    request.refresh_from_db()
    assert response.status_code == 403
    assert request.status == RequestStatus.PENDING


# --- editing a day ---------------------------------------------------------------------------------


def _day_form(day: ScheduleDay, rows: list[dict], **day_fields) -> dict:
    """The change form as the browser posts it: the day's fields and one row per activity."""
    data = {
        "published": "on" if day.published else "",
        "note": day.note,
        "activities-TOTAL_FORMS": str(len(rows)),
        "activities-INITIAL_FORMS": str(sum(1 for row in rows if row.get("id"))),
        "activities-MIN_NUM_FORMS": "0",
        "activities-MAX_NUM_FORMS": "1000",
        **day_fields,
    }
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"activities-{index}-{key}"] = value
        if row.get("id"):
            data[f"activities-{index}-day"] = str(day.pk)
    if not data["published"]:
        del data["published"]
    return data


def _rows(day: ScheduleDay) -> list[dict]:
    zone = day.agent.zone
    return [
        {
            "id": str(a.pk),
            "activity_code": str(a.activity_code_id),
            "local_start": a.start.astimezone(zone).strftime("%H:%M"),
            "local_end": a.end.astimezone(zone).strftime("%H:%M"),
            "note": a.note,
        }
        for a in day.activities.order_by("start")
    ]


def test_editing_a_day_goes_through_the_service(supervisor, agent):
    _workday(agent)
    day = ScheduleDay.objects.get(agent=agent, date=DAY)
    morning = day.activities.order_by("start").first()
    training = ActivityCodeFactory(organization=agent.organization, code="TRAIN")
    rows = _rows(day)
    rows[2]["local_end"] = "16:00"
    rows.append(
        {"activity_code": str(training.pk), "local_start": "16:00", "local_end": "17:00", "note": "Q&A"}
    )
    adjusted_before = _kinds(agent).count("schedule_adjusted")

    response = _admin(supervisor).post(
        f"{DAYS}{day.pk}/change/", _day_form(day, rows, note="Team meeting at four")
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    assert _day_codes(agent) == [
        ("PHONE", "09:00", "12:00"),
        ("LUNCH", "12:00", "12:30"),
        ("PHONE", "12:30", "16:00"),
        ("TRAIN", "16:00", "17:00"),
    ]
    change = ScheduleChange.objects.filter(agent=agent, date=DAY).first()
    assert change.source == ActivitySource.SUPERVISOR and change.actor == supervisor
    assert _kinds(agent).count("schedule_adjusted") == adjusted_before + 1
    day.refresh_from_db()
    assert day.note == "Team meeting at four"
    # Untouched rows keep their identity and origin; what the supervisor wrote is the supervisor's.
    kept = Activity.objects.get(pk=morning.pk)
    assert kept.source == ActivitySource.WFM
    assert Activity.objects.get(agent=agent, activity_code=training).source == ActivitySource.SUPERVISOR


def test_an_overlapping_edit_shows_the_error_and_changes_nothing(supervisor, agent):
    _workday(agent)
    day = ScheduleDay.objects.get(agent=agent, date=DAY)
    training = ActivityCodeFactory(organization=agent.organization, code="TRAIN")
    rows = _rows(day) + [
        {"activity_code": str(training.pk), "local_start": "11:00", "local_end": "13:00", "note": ""}
    ]
    before = (_day_codes(agent), ScheduleChange.objects.count(), Notification.objects.count())

    response = _admin(supervisor).post(f"{DAYS}{day.pk}/change/", _day_form(day, rows, note="Changed"))

    assert response.status_code == 200
    assert "Activities cannot overlap" in response.content.decode()
    assert 'value="11:00"' in response.content.decode()  # the input is kept
    assert (_day_codes(agent), ScheduleChange.objects.count(), Notification.objects.count()) == before
    day.refresh_from_db()
    assert day.note == ""


def test_an_edit_running_into_the_previous_nights_shift_is_refused_after_the_write(supervisor, agent):
    """Found only when the service writes (the other day's activity): rolled back, shown on the page."""
    _workday(agent)
    shift(agent, DAY - dt.timedelta(days=1), ("NIGHT", "22:00", "06:00"))
    day = ScheduleDay.objects.get(agent=agent, date=DAY)
    rows = _rows(day)
    rows[0]["local_start"] = "05:00"
    before = (_day_codes(agent), ScheduleChange.objects.count(), Notification.objects.count())

    response = _admin(supervisor).post(f"{DAYS}{day.pk}/change/", _day_form(day, rows, note="Early"))

    assert response.status_code == 200
    assert "overlapping" in response.content.decode()
    assert (_day_codes(agent), ScheduleChange.objects.count(), Notification.objects.count()) == before
    day.refresh_from_db()
    assert day.note == ""


def test_a_supervisor_adds_a_day_in_the_agents_zone_night_shift_included(supervisor, agent):
    night = ActivityCodeFactory(organization=agent.organization, code="NIGHT")
    day = ScheduleDay(agent=agent, date=DAY, published=True)
    rows = [{"activity_code": str(night.pk), "local_start": "22:00", "local_end": "06:00", "note": ""}]

    response = _admin(supervisor).post(
        f"{DAYS}add/", _day_form(day, rows, agent=str(agent.pk), date=DAY.isoformat())
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    activity = Activity.objects.get(agent=agent)
    assert activity.start == dt.datetime(2026, 12, 3, 21, 0, tzinfo=dt.UTC)  # 22:00 in Amsterdam
    assert activity.end == dt.datetime(2026, 12, 4, 5, 0, tzinfo=dt.UTC)
    assert activity.day.date == DAY and activity.day.published
    assert ScheduleChange.objects.get(agent=agent).actor == supervisor
    assert _kinds(agent) == ["schedule_adjusted"]


def test_a_supervisor_adds_an_empty_day_to_fill_in_later(supervisor, agent):
    day = ScheduleDay(agent=agent, date=DAY)

    response = _admin(supervisor).post(
        f"{DAYS}add/", _day_form(day, [], agent=str(agent.pk), date=DAY.isoformat())
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    created = ScheduleDay.objects.get(agent=agent, date=DAY)
    assert not created.published and not created.activities.exists()
    assert _kinds(agent) == []  # nothing to tell


def test_a_time_the_clocks_skip_is_refused(supervisor, agent):
    phone = ActivityCodeFactory(organization=agent.organization, code="PHONE")
    day = ScheduleDay(agent=agent, date=dt.date(2027, 3, 28))
    rows = [{"activity_code": str(phone.pk), "local_start": "02:30", "local_end": "06:00", "note": ""}]

    response = _admin(supervisor).post(
        f"{DAYS}add/", _day_form(day, rows, agent=str(agent.pk), date="2027-03-28")
    )

    assert response.status_code == 200
    assert "does not exist" in response.content.decode()
    assert not ScheduleDay.objects.exists()


def test_an_untouched_activity_in_the_hour_the_clocks_repeat_keeps_its_instant(supervisor, agent):
    phone = ActivityCodeFactory(organization=agent.organization, code="PHONE")
    date = dt.date(2027, 10, 31)  # Amsterdam: 03:00 summer time becomes 02:00 winter time
    second_half_past_two = dt.datetime(2027, 10, 31, 1, 30, tzinfo=dt.UTC)  # 02:30 winter time
    schedule_days_apply(
        plans=[
            DayPlan(
                agent=agent,
                date=date,
                activities=[
                    ActivitySpec(
                        activity_code_id=phone.pk,
                        start=second_half_past_two,
                        end=second_half_past_two + dt.timedelta(hours=2),
                    )
                ],
            )
        ],
        source="wfm",
    )
    day = ScheduleDay.objects.get(agent=agent, date=date)

    response = _admin(supervisor).post(f"{DAYS}{day.pk}/change/", _day_form(day, _rows(day), note="Late"))

    assert response.status_code == 302
    assert Activity.objects.get(agent=agent).start == second_half_past_two
    day.refresh_from_db()
    assert day.note == "Late"


def test_the_day_page_offers_only_the_organisations_codes(supervisor, agent, outsider):
    _workday(agent)
    ActivityCodeFactory(organization=outsider.organization, code="SECRET", name="Their code")
    day = ScheduleDay.objects.get(agent=agent, date=DAY)

    page = _admin(supervisor).get(f"{DAYS}{day.pk}/change/")

    assert page.status_code == 200
    assert b"PHONE" in page.content and b"TRAIN" in page.content
    assert b"SECRET" not in page.content
    assert 'value="12:30"' in page.content.decode()  # wall-clock times in the agent's zone


def test_a_code_of_another_organisation_is_refused(supervisor, agent, outsider):
    _workday(agent)
    theirs = ActivityCodeFactory(organization=outsider.organization, code="SECRET")
    day = ScheduleDay.objects.get(agent=agent, date=DAY)
    rows = _rows(day) + [{"activity_code": str(theirs.pk), "local_start": "18:00", "local_end": "19:00"}]

    response = _admin(supervisor).post(f"{DAYS}{day.pk}/change/", _day_form(day, rows))

    assert response.status_code == 200
    assert not Activity.objects.filter(activity_code=theirs).exists()


# --- configuration and the journal -----------------------------------------------------------------


@pytest.mark.parametrize(
    "page",
    [
        "activitycode",
        "approvalrule",
        "blackoutperiod",
        "schedulechange",
        "scheduleday",
        "schedulerequest",
        "calendarfeed",
    ],
)
def test_no_schedule_page_names_another_organisation(supervisor, agent, outsider, page):
    _workday(outsider)
    _request(outsider)
    ApprovalRule.objects.create(organization=outsider.organization, request_type="schedule")
    BlackoutPeriod.objects.create(
        organization=outsider.organization, start_date=DAY, end_date=DAY, reason="Charlie's peak"
    )
    calendar_feed_get_or_create(agent=outsider)
    query = {"status": "all"} if page == "schedulerequest" else {}

    response = _admin(supervisor).get(f"/admin/schedules/{page}/", query)

    assert response.status_code == 200
    assert b"Fabrikam" not in response.content and b"Charlie" not in response.content
    assert response.context["cl"].result_count == 0


def test_a_supervisor_adds_a_rule_for_its_own_organisation(supervisor, org, outsider):
    client = _admin(supervisor)
    form = client.get("/admin/schedules/approvalrule/add/")
    assert f'<option value="{org.pk}" selected>'.encode() in form.content

    response = client.post(
        "/admin/schedules/approvalrule/add/",
        {
            "organization": org.pk,
            "request_type": "schedule",
            "action": "auto_approve",
            "when_conditions_fail": "manual",
            "priority": 100,
            "active": "on",
        },
    )
    stolen = client.post(
        "/admin/schedules/approvalrule/add/",
        {
            "organization": outsider.organization.pk,
            "request_type": "schedule",
            "action": "auto_decline",
            "when_conditions_fail": "manual",
            "priority": 1,
        },
    )

    assert response.status_code == 302
    assert stolen.status_code == 200  # not a valid choice
    assert list(ApprovalRule.objects.values_list("organization", "action")) == [(org.pk, "auto_approve")]


def test_the_journal_is_read_only(supervisor, agent):
    _workday(agent)
    shift(agent, DAY, ("PHONE", "09:00", "17:00"))  # the WFM's day is journalled once it changes
    change = ScheduleChange.objects.get(agent=agent)
    client = _admin(supervisor)

    assert client.get("/admin/schedules/schedulechange/").context["cl"].result_count == 1
    assert client.get(f"/admin/schedules/schedulechange/{change.pk}/change/").status_code == 200
    assert client.get("/admin/schedules/schedulechange/add/").status_code == 403
    assert (
        client.post(f"/admin/schedules/schedulechange/{change.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert ScheduleChange.objects.filter(pk=change.pk).exists()


def test_a_blackout_period_cannot_end_before_it_starts(supervisor, org):
    response = _admin(supervisor).post(
        "/admin/schedules/blackoutperiod/add/",
        {"organization": org.pk, "start_date": "2026-12-24", "end_date": "2026-12-20", "reason": "Peak"},
    )

    assert response.status_code == 200
    assert b"The end date cannot be before the start date." in response.content
    assert not BlackoutPeriod.objects.exists()


def test_a_rule_cannot_name_another_organisations_code(org, outsider):
    theirs = ActivityCodeFactory(organization=outsider.organization, code="SECRET")
    superuser = UserFactory(is_staff=True, is_superuser=True)

    response = _admin(superuser).post(
        "/admin/schedules/approvalrule/add/",
        {
            "organization": org.pk,
            "request_type": "schedule",
            "activity_code": theirs.pk,
            "action": "auto_approve",
            "when_conditions_fail": "manual",
            "priority": 100,
        },
    )

    assert response.status_code == 200
    assert b"The activity code belongs to another organisation." in response.content
    assert not ApprovalRule.objects.exists()
