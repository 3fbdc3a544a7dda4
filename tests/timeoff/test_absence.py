"""IEX WFM Integrated absence requests: one day, whole or part, up to the horizon, emailed to the
supervisor at once, never approved here (API.md "Absence, IEX WFM Integrated organisations")."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from em_agent.models import WfmSystem
from notifications.delivery import deliveries_send
from notifications.models import Channel, Delivery, Notification
from tests.conftest import run_together
from tests.factories import AgentFactory, OrganizationFactory, SupervisorFactory
from tests.notifications.smtp_server import start_smtp_server
from tests.schedules.factories import ActivityCodeFactory
from timeoff.absences import absence_request_create
from timeoff.models import AbsenceRequest

pytestmark = pytest.mark.django_db

URL = "/api/v1/absence-requests"
# Thursday 3 December 2026, 09:00 in Amsterdam.
NOW = "2026-12-03 08:00:00 +00:00"


@pytest.fixture
def iex(db):
    return OrganizationFactory(name="Fabrikam", slug="fabrikam-iex", wfm_system=WfmSystem.IEX)


@pytest.fixture
def boss(iex):
    return SupervisorFactory(
        organization=iex, email="ines@fabrikam.test", first_name="Ines", last_name="Bakker"
    )


@pytest.fixture
def ivo(iex, boss):
    """An agent of the IEX organisation, in Amsterdam."""
    return AgentFactory(
        organization=iex,
        supervisor=boss,
        user__email="ivo@fabrikam.test",
        name="Ivo",
        timezone="Europe/Amsterdam",
    )


@pytest.fixture
def sick(iex):
    return ActivityCodeFactory(
        organization=iex, code="SICK", name="Sick", category="absence", open_for_absence=True
    )


@pytest.fixture
def doctor(iex):
    return ActivityCodeFactory(
        organization=iex, code="DOCTOR", name="Doctor", category="absence", open_for_absence=True
    )


@pytest.fixture
def client(logged_in, ivo, sick, doctor):
    return logged_in(ivo)


def _partial(date="2026-12-08", start="09:00", end="11:30", **extra):
    return {"date": date, "exception_code": "DOCTOR", "start_time": start, "end_time": end, **extra}


def _whole(date="2026-12-08", **extra):
    return {"date": date, "exception_code": "SICK", "full_day": True, **extra}


@time_machine.travel(NOW, tick=False)
def test_a_partial_day_is_submitted_in_the_agents_wall_clock(client, ivo):
    response = client.post(URL, _partial(comment="Dentist"))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "submitted"
    assert (body["date"], body["full_day"], body["start_time"], body["end_time"]) == (
        "2026-12-08",
        False,
        "09:00",
        "11:30",
    )
    assert body["exception_code"] == "DOCTOR"
    assert body["exception"]["name"] == "Doctor"
    assert body["comment"] == "Dentist"
    stored = AbsenceRequest.objects.get()
    assert stored.start == dt.datetime(2026, 12, 8, 8, 0, tzinfo=dt.UTC)  # 09:00 CET
    assert stored.end == dt.datetime(2026, 12, 8, 10, 30, tzinfo=dt.UTC)


@time_machine.travel(NOW, tick=False)
def test_a_whole_day_has_no_times_and_may_be_today(client):
    response = client.post(URL, _whole(date="2026-12-03"))

    assert response.status_code == 201, response.content
    assert (response.json()["full_day"], response.json()["start_time"], response.json()["end_time"]) == (
        True,
        None,
        None,
    )


@time_machine.travel(NOW, tick=False)
def test_whole_day_times_are_not_read(client):
    response = client.post(URL, _whole(start_time="09:00", end_time="08:00"))

    assert response.status_code == 201, response.content
    assert AbsenceRequest.objects.get().start is None


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "body, field",
    [
        ({"date": "2026-12-08", "exception_code": "DOCTOR"}, "start_time"),
        (_partial(start="11:00", end="10:00"), "end_time"),
        (_partial(start="10:00", end="10:00"), "end_time"),
        (_partial(start="9:00"), "start_time"),
        (_partial(end="24:00"), "end_time"),
        (_partial(full_day=False, start=None), "start_time"),
        ({**_whole(), "full_day": "true"}, "full_day"),
        ({**_whole(), "exception_code": "PHONE"}, "exception_code"),
        ({**_whole(), "exception_code": "NOPE"}, "exception_code"),
        ({**_whole(), "comment": "x" * 501}, "comment"),
        ({**_whole(), "date": "20261208"}, "date"),
    ],
)
def test_bad_input_is_refused_on_its_field(client, iex, body, field):
    ActivityCodeFactory(organization=iex, code="PHONE", open_for_absence=False)

    response = client.post(URL, body)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["fields"]
    assert not AbsenceRequest.objects.exists()


def test_an_inactive_exception_code_is_refused(client, sick):
    sick.active = False
    sick.save()

    response = client.post(URL, _whole(date="2030-01-01"))

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["exception_code"]


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "body, field",
    [
        (_whole(date="2026-12-02"), "date"),
        (_partial(date="2026-12-03", start="08:00", end="10:00"), "start_time"),  # 08:00 has passed
        (_partial(date="2026-12-03", start="09:00", end="10:00"), "start_time"),  # now is not later than now
    ],
)
def test_the_past_is_refused(client, body, field):
    response = client.post(URL, body)

    assert response.status_code == 400
    assert response.json()["code"] == "in_the_past"
    assert list(response.json()["fields"]) == [field]


@time_machine.travel(NOW, tick=False)
def test_later_today_is_fine(client):
    assert client.post(URL, _partial(date="2026-12-03", start="09:01", end="12:00")).status_code == 201


# 23:30 in New York on Thursday 3 December is already Friday 4 December in UTC: the horizon counts
# the agent's days, so the 28th day is 31 December, not 1 January.
@time_machine.travel("2026-12-04 04:30:00 +00:00", tick=False)
def test_the_28th_day_in_the_agents_zone_is_the_last(logged_in, iex, sick, boss):
    agent = AgentFactory(organization=iex, supervisor=boss, timezone="America/New_York")
    client = logged_in(agent)

    assert client.post(URL, _whole(date="2026-12-31")).status_code == 201
    refused = client.post(URL, _whole(date="2027-01-01"))

    assert refused.status_code == 400
    assert refused.json()["code"] == "beyond_horizon"
    assert refused.json()["fields"] == {"date": ["The last day you can request is Thursday 31 December."]}
    in_dutch = client.post(URL, _whole(date="2027-01-01"), HTTP_ACCEPT_LANGUAGE="nl")
    assert in_dutch.json()["fields"] == {
        "date": ["De laatste dag die u kunt aanvragen is donderdag 31 december."]
    }
    assert client.post(URL, _whole(date="2026-12-03")).status_code == 201  # still today there


@time_machine.travel(NOW, tick=False)
def test_the_horizon_is_the_organisations(client, iex):
    iex.absence_horizon_days = 7
    iex.save()

    assert client.post(URL, _whole(date="2026-12-10")).status_code == 201
    assert client.post(URL, _whole(date="2026-12-11")).json()["code"] == "beyond_horizon"


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    "first, second, overlaps",
    [
        (_partial(start="09:00", end="11:00"), _partial(start="10:30", end="12:00"), True),
        (_partial(start="09:00", end="11:00"), _partial(start="11:00", end="12:00"), False),
        (_partial(start="09:00", end="11:00"), _partial(start="07:00", end="09:00"), False),
        (_partial(start="09:00", end="11:00"), _partial(start="08:00", end="12:00"), True),
        (_whole(), _partial(), True),
        (_partial(), _whole(), True),
        (_whole(), _whole(), True),
        (_whole(), _whole(date="2026-12-09"), False),
    ],
)
def test_overlapping_requests_are_refused(client, first, second, overlaps):
    assert client.post(URL, first).status_code == 201

    response = client.post(URL, second)

    if overlaps:
        assert response.status_code == 400
        assert response.json()["code"] == "overlaps_existing_request"
    else:
        assert response.status_code == 201, response.content


@time_machine.travel(NOW, tick=False)
def test_another_agents_absence_is_no_overlap(client, logged_in, iex, boss):
    colleague = logged_in(AgentFactory(organization=iex, supervisor=boss))
    assert colleague.post(URL, _whole()).status_code == 201

    assert client.post(URL, _whole()).status_code == 201


# Sunday 29 March 2026 in Amsterdam: 02:00-03:00 does not exist. Sunday 25 October: 02:00-03:00 twice.
@time_machine.travel("2026-03-20 08:00:00 +00:00", tick=False)
def test_a_time_the_clocks_skip_is_refused(client):
    response = client.post(URL, _partial(date="2026-03-29", start="02:30", end="04:00"))

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["start_time"]


@time_machine.travel("2026-03-20 08:00:00 +00:00", tick=False)
def test_a_partial_day_across_the_spring_change_keeps_its_wall_clock(client):
    response = client.post(URL, _partial(date="2026-03-29", start="01:00", end="04:00"))

    assert response.status_code == 201
    stored = AbsenceRequest.objects.get()
    assert stored.end - stored.start == dt.timedelta(hours=2)  # what the clock really ran
    assert (response.json()["start_time"], response.json()["end_time"]) == ("01:00", "04:00")


@time_machine.travel("2026-10-20 08:00:00 +00:00", tick=False)
def test_a_time_the_clocks_repeat_is_its_first_occurrence(client):
    response = client.post(URL, _partial(date="2026-10-25", start="02:30", end="03:30"))

    assert response.status_code == 201
    stored = AbsenceRequest.objects.get()
    assert stored.start == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)  # 02:30 summer time
    assert stored.end - stored.start == dt.timedelta(hours=2)


@time_machine.travel(NOW, tick=False)
def test_the_list_is_the_agents_own_newest_first_and_paginated(client, logged_in, iex, boss):
    logged_in(AgentFactory(organization=iex, supervisor=boss)).post(URL, _whole())
    for day in (8, 9, 10):
        client.post(URL, _whole(date=f"2026-12-{day:02d}"))

    first = client.get(URL, {"page_size": 2}).json()
    second = client.client.get(first["next"], HTTP_X_SESSION_TOKEN=client.token).json()

    assert [item["date"] for item in first["results"] + second["results"]] == [
        "2026-12-10",
        "2026-12-09",
        "2026-12-08",
    ]
    assert second["next"] is None


@time_machine.travel(NOW, tick=False)
def test_one_request_is_read_by_its_owner_only(client, logged_in, iex, boss, outsider):
    created = client.post(URL, _whole()).json()

    assert client.get(f"{URL}/{created['id']}").json() == created
    colleague = logged_in(AgentFactory(organization=iex, supervisor=boss))
    assert colleague.get(f"{URL}/{created['id']}").json()["code"] == "not_found"
    assert colleague.get(URL).json()["results"] == []


@time_machine.travel(NOW, tick=False)
def test_a_cxone_organisation_has_no_absence_requests(logged_in, agent):
    client = logged_in(agent)

    for response in (client.get(URL), client.post(URL, {}), client.get(f"{URL}/1")):
        assert response.status_code == 409
        assert response.json()["code"] == "not_available_for_wfm_system"


@time_machine.travel(NOW, tick=False)
def test_the_supervisor_is_told_by_email_only(client, ivo, boss):
    client.post(URL, _partial(comment="Dentist"))

    [notification] = Notification.objects.all()
    assert notification.user == boss
    assert notification.kind == "absence_requested"
    channels = set(Delivery.objects.filter(notification=notification).values_list("channel", flat=True))
    assert channels == {Channel.EMAIL}
    assert not Notification.objects.filter(user=ivo.user).exists()


@time_machine.travel(NOW, tick=False)
def test_an_agent_without_a_supervisor_reaches_every_supervisor_of_its_organisation(
    logged_in, iex, sick, boss
):
    other = SupervisorFactory(organization=iex)
    SupervisorFactory(organization=OrganizationFactory(wfm_system=WfmSystem.IEX))  # another organisation's
    client = logged_in(AgentFactory(organization=iex, supervisor=None))

    client.post(URL, _whole())

    assert set(Notification.objects.values_list("user", flat=True)) == {boss.pk, other.pk}


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


@time_machine.travel(NOW, tick=False)
def test_a_dutch_supervisor_gets_the_email_in_dutch_over_smtp(smtp, client, boss):
    boss.language = "nl"
    boss.save()
    client.post(URL, _partial(comment="Tandarts"))

    deliveries_send(ids=list(Delivery.objects.values_list("pk", flat=True)))

    [message] = smtp.messages
    assert message["To"] == "ines@fabrikam.test"
    assert message["Subject"] == "[EM Agent] Afwezigheidsverzoek van Ivo"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert (
        "Ivo vraagt afwezigheid aan op dinsdag 8 december van 09:00 tot 11:30 (Europe/Amsterdam): "
        "Doctor (DOCTOR). Opmerking: Tandarts"
    ) in text
    assert "U ontvangt deze e-mail als supervisor in EM Agent." in text
    assert "Open de EM Agent-app" not in text


@time_machine.travel(NOW, tick=False)
def test_an_english_supervisor_reads_english_for_a_whole_day(smtp, client, boss):
    client.post(URL, _whole())

    deliveries_send(ids=list(Delivery.objects.values_list("pk", flat=True)))

    [message] = smtp.messages
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Ivo requests an absence for the whole of Tuesday 8 December: Sick (SICK)." in text


@pytest.mark.django_db(transaction=True)
def test_two_overlapping_requests_at_once_one_wins(postgres):
    iex = OrganizationFactory(wfm_system=WfmSystem.IEX)
    ActivityCodeFactory(organization=iex, code="SICK", open_for_absence=True)
    agent = AgentFactory(organization=iex, supervisor=SupervisorFactory(organization=iex))
    assert connection.vendor == "postgresql"

    def submit():
        try:
            return absence_request_create(
                agent=agent,
                date=timezone.localdate() + dt.timedelta(days=3),
                exception_code="SICK",
                full_day=True,
            ).pk
        except Exception as error:  # noqa: BLE001  (the loser's refusal is the point)
            return getattr(error, "code", repr(error))

    results = run_together([submit for _ in range(6)])

    assert sorted(map(str, results)).count("overlaps_existing_request") == 5
    assert AbsenceRequest.objects.count() == 1
