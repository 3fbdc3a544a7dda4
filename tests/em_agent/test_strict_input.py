"""Bad input is refused as the contract says, before or by the views: sizes, nesting, encodings,
JSON types, query values and cursors; and no answer under /api/ or /_allauth/ may be cached."""

import json

import pytest

pytestmark = pytest.mark.django_db

REQUESTS = "/api/v1/schedule/requests"


def _raw_post(client, path: str, body: bytes):
    return client.client.generic(
        "POST", path, body, content_type="application/json", HTTP_X_SESSION_TOKEN=client.token or ""
    )


@pytest.mark.parametrize("path", [REQUESTS, "/_allauth/app/v1/auth/login"])
def test_a_body_over_the_limit_is_413(logged_in, agent, path):
    response = _raw_post(logged_in(agent), path, b'{"comment": "' + b"x" * (70 * 1024) + b'"}')

    assert response.status_code == 413
    body = response.json()
    code = body["code"] if path.startswith("/api/") else body["errors"][0]["code"]
    assert code == "request_too_large"


def test_deep_nesting_is_400_not_500(logged_in, agent):
    response = _raw_post(logged_in(agent), REQUESTS, b"[" * 20_000 + b"]" * 20_000)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["fields"]) == ["body"]


def test_brackets_inside_strings_do_not_count_as_nesting(logged_in, agent):
    body = json.dumps({"action": "cancel", "activity_id": 999999, "comment": "[" * 100}).encode()

    assert _raw_post(logged_in(agent), REQUESTS, body).status_code == 404  # no such activity


def test_a_body_that_is_not_utf8_is_400(logged_in, agent):
    response = _raw_post(logged_in(agent), REQUESTS, b'{"action": "cancel", "comment": "\xff\xfe"}')

    assert response.status_code == 400
    assert response.json()["fields"] == {"body": ["The request body is not UTF-8."]}


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/devices/ab%00cd",
        "/api/v1/devices/ab\x00cd",
        "/api/v1/notifications?cursor=a%00",
        "/api/v1/notifications?x%00=1",
    ],
)
def test_a_nul_in_the_address_is_400_not_500(logged_in, agent, path):
    # On PostgreSQL a lookup by a string with NUL fails in the driver (a 500 before this guard).
    response = logged_in(agent).delete(path) if "devices" in path else logged_in(agent).get(path)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_a_nul_in_a_body_string_is_400_and_the_schema_says_so(logged_in, agent):
    from drf_spectacular.generators import SchemaGenerator

    response = logged_in(agent).post(REQUESTS, {"action": "cancel", "activity_id": 1, "comment": "a\x00b"})

    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["comment"]
    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    assert schemas["CancelRequestInputRequest"]["properties"]["comment"]["pattern"] == "^[^\\x00]*$"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"token": 12345, "platform": "android"}, "token"),
        ({"token": "abc", "platform": 1}, "platform"),
        ({"token": " abc", "platform": "android"}, "token"),
    ],
)
def test_wrong_json_types_are_refused_not_coerced(logged_in, agent, body, field):
    response = logged_in(agent).post("/api/v1/devices", body)

    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]


def test_a_request_body_shape_follows_its_action(logged_in, agent):
    client = logged_in(agent)

    edit_without_activity = client.post(REQUESTS, {"action": "edit", "start": "2030-01-01T09:00:00+01:00"})
    unknown_action = client.post(REQUESTS, {"action": "swap"})
    string_id = client.post(REQUESTS, {"action": "cancel", "activity_id": "12"})

    assert set(edit_without_activity.json()["fields"]) == {"activity_id", "activity_code", "end"}
    assert unknown_action.json()["fields"] == {"action": ["Must be one of: add, edit, cancel."]}
    assert string_id.json()["fields"] == {"activity_id": ["Must be a whole number."]}


def test_unknown_preference_kinds_and_non_booleans_are_refused(logged_in, agent):
    client = logged_in(agent)

    unknown = client.put("/api/v1/notifications/preferences", {"email": {"made_up": False}})
    not_boolean = client.put("/api/v1/notifications/preferences", {"email": {"swap_offer": "false"}})

    assert unknown.status_code == not_boolean.status_code == 400
    assert list(unknown.json()["fields"]) == ["email"]
    assert list(not_boolean.json()["fields"]) == ["email.swap_offer"]


@pytest.mark.parametrize(
    "path, field",
    [
        ("/api/v1/activity-codes?usage=", "usage"),
        ("/api/v1/schedule?start=", "start"),
        ("/api/v1/schedule?start=2026-12-01&start=2026-12-02", "start"),
        ("/api/v1/schedule?start=20261201", "start"),
        ("/api/v1/schedule/calendar?month=", "month"),
        ("/api/v1/schedule/calendar?month=2026-13", "month"),
        ("/api/v1/schedule/calendar?month=\uff12\uff10\uff12\uff16-12", "month"),
        ("/api/v1/schedule/requests?status=", "status"),
        ("/api/v1/schedule/requests?status=pending,", "status"),
        ("/api/v1/schedule/requests?status=lost", "status"),
        ("/api/v1/notifications?page_size=null", "page_size"),
        ("/api/v1/notifications?page_size=0", "page_size"),
        ("/api/v1/notifications?page_size=201", "page_size"),
        ("/api/v1/notifications?cursor=", "cursor"),
        ("/api/v1/notifications?cursor=%F3%86%9F", "cursor"),
        ("/api/v1/notifications?cursor=cD1hYmM=", "cursor"),  # p=abc: a position that is no id
        ("/api/v1/schedule/requests?cursor=bm9wZQ", "cursor"),
    ],
)
def test_bad_query_values_are_400_with_the_field(logged_in, agent, path, field):
    response = logged_in(agent).get(path)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["fields"]) == [field]


def test_a_next_link_still_pages(logged_in, agent):
    from notifications.services import notify

    for day in range(1, 4):
        notify(recipients=[agent], kind="schedule_adjusted", params={"date": f"2026-12-0{day}"})
    client = logged_in(agent)

    first = client.get("/api/v1/notifications?page_size=2").json()
    second = client.get(first["next"]).json()

    assert len(first["results"]) == 2 and len(second["results"]) == 1


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/v1/me"),
        ("get", "/api/v1/schedule"),
        ("get", "/api/v1/notifications/unacknowledged-count"),
    ],
)
def test_authenticated_answers_are_never_stored(logged_in, agent, method, path):
    response = getattr(logged_in(agent), method)(path)

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


def test_the_login_answer_is_never_stored(app_client, agent):
    assert app_client.login(agent.user.email)["Cache-Control"] == "no-store"
