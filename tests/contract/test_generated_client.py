"""A client no one here wrote: openapi-python-client generates one from the served schema, as the
mobile team generates theirs (Kotlin, Swift), and walks the app's main flow with it against the
live server. It fails when the generator cannot read the schema or the client cannot parse a real
answer (a field the schema calls required missing, a type or an enum that differs)."""

import datetime as dt
import importlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from tests.contract.data import contract_world
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture
def generated_client(live_server, tmp_path, monkeypatch):
    schema = httpx.get(f"{live_server.url}/api/schema/?format=json").json()
    (tmp_path / "schema.json").write_text(json.dumps(schema))
    (tmp_path / "config.json").write_text(json.dumps({"post_hooks": [], "project_name_override": "em"}))
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            "schema.json",
            "--config",
            "config.json",
            "--meta",
            "none",
            "--output-path",
            "em_agent_client",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The generator says so when it had to leave an operation or a model out.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("em_agent_client")
    for name in [module for module in sys.modules if module.startswith("em_agent_client")]:
        del sys.modules[name]


def _module(package, path: str):
    return importlib.import_module(f"{package.__name__}.{path}")


def test_the_generated_client_walks_the_main_flow(live_server, generated_client, agent):
    contract_world([agent])
    models = _module(generated_client, "models")
    client_module = _module(generated_client, "client")

    def api(path):
        return _module(generated_client, f"api.{path}")

    # Log in by HTTP, through allauth's app login (merged into the schema), as the app does.
    anonymous = client_module.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    login = api("login_allauth_headless.allauth_auth_login_post").sync(
        client=anonymous,
        body=models.AllauthLogin.from_dict({"email": agent.user.email, "password": PASSWORD}),
    )
    token = login.meta.session_token
    client = client_module.AuthenticatedClient(
        base_url=live_server.url,
        token=token,
        prefix="",
        auth_header_name="X-Session-Token",
        raise_on_unexpected_status=True,
    )

    me = api("agent.me").sync(client=client)
    assert me.email == agent.user.email and me.activated is True

    today = timezone.localdate(timezone=agent.zone)
    schedule = api("schedule.schedule_read").sync(
        client=client, start=today, end=today + dt.timedelta(days=30)
    )
    working = [day for day in schedule.days if day.activities]
    assert working and working[0].activities[0].activity_code.code == "PHONE"

    calendar = api("schedule.schedule_calendar").sync(client=client, month=today.strftime("%Y-%m"))
    assert calendar.month == today.strftime("%Y-%m") and calendar.days

    codes = api("schedule.activity_codes_list").sync(
        client=client, usage=models.ActivityCodesListUsage.SCHEDULE
    )
    assert [code.code for code in codes] == ["TRAINING"]

    cancel = models.CancelRequestInputRequest(
        action=models.CancelRequestInputActionEnum.CANCEL,
        activity_id=working[-1].activities[0].id,
        comment="Generated client",
    )
    created = api("schedule.schedule_requests_create").sync(client=client, body=cancel)
    assert created.status.value == "pending" and created.action.value == "cancel"
    assert api("schedule.schedule_requests_read").sync(client=client, request_id=created.id).id == created.id
    listed = api("schedule.schedule_requests_list").sync(
        client=client, status=[models.ScheduleRequestsListStatusItem.PENDING]
    )
    assert created.id in [item.id for item in listed.results]

    inbox = api("notifications.notifications_list").sync(client=client, page_size=10)
    # The contract world's approved time off told the agent too (tests/contract/data.py).
    assert inbox.results and {item.kind.value for item in inbox.results} == {
        "schedule_adjusted",
        "time_off_approved",
    }
    count = api("notifications.notifications_unacknowledged_count").sync(client=client)
    assert count.count == len(inbox.results)
