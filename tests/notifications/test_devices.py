import pytest

from notifications.models import Device

pytestmark = pytest.mark.django_db

URL = "/api/v1/devices"
DEVICE = {"token": "fcm:token-123_abc", "platform": "ios"}


def test_register_a_new_device(logged_in, agent):
    response = logged_in(agent).post(URL, DEVICE)

    assert response.status_code == 201
    assert response.json()["platform"] == "ios"
    assert Device.objects.get().agent == agent


def test_registering_a_known_token_again_is_200(logged_in, agent):
    client = logged_in(agent)
    client.post(URL, DEVICE)

    response = client.post(URL, {**DEVICE, "platform": "ios"})

    assert response.status_code == 200
    assert Device.objects.count() == 1


def test_a_token_moves_to_the_latest_agent_that_registers_it(logged_in, agent, teammate):
    logged_in(agent).post(URL, DEVICE)

    response = logged_in(teammate).post(URL, DEVICE)

    assert response.status_code == 200
    assert Device.objects.get().agent == teammate


def test_unregister_stops_push_for_the_device(logged_in, agent):
    client = logged_in(agent)
    client.post(URL, DEVICE)

    response = client.delete(f"{URL}/{DEVICE['token']}")

    assert response.status_code == 204
    assert not Device.objects.exists()


def test_an_outsider_gets_404_for_anothers_device(logged_in, agent, outsider, teammate):
    logged_in(agent).post(URL, DEVICE)

    for other in (outsider, teammate):
        response = logged_in(other).delete(f"{URL}/{DEVICE['token']}")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
    assert Device.objects.get().agent == agent


def test_unknown_device_is_404(logged_in, agent):
    assert logged_in(agent).delete(f"{URL}/nope").status_code == 404


@pytest.mark.parametrize(
    "body, field",
    [
        ({"token": "t"}, "platform"),
        ({"platform": "android"}, "token"),
        ({"token": "t", "platform": "windows"}, "platform"),
        ({"token": "x" * 513, "platform": "android"}, "token"),
    ],
)
def test_invalid_input_is_a_validation_error(logged_in, agent, body, field):
    response = logged_in(agent).post(URL, body)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["fields"]


def test_devices_need_a_login(app_client):
    assert app_client.post(URL, DEVICE).status_code == 401
    assert app_client.delete(f"{URL}/x").status_code == 401


def test_the_device_list_is_the_agents_own_newest_first_and_paginated(logged_in, agent, outsider):
    logged_in(outsider).post(URL, {"token": "outsiders-phone", "platform": "ios"})
    client = logged_in(agent)
    for number in range(3):
        client.post(URL, {"token": f"phone-{number}", "platform": "android"})

    first = client.get(URL, {"page_size": 2}).json()
    second = client.client.get(first["next"], HTTP_X_SESSION_TOKEN=client.token).json()

    assert set(first) == {"results", "next"}
    assert [device["token"] for device in first["results"] + second["results"]] == [
        "phone-2",
        "phone-1",
        "phone-0",
    ]
    assert second["next"] is None


def test_device_times_are_in_the_agents_zone(logged_in, agent):
    agent.timezone = "America/New_York"
    agent.save()

    body = logged_in(agent).post(URL, DEVICE).json()

    assert body["created_at"].endswith(("-05:00", "-04:00"))


def test_an_agent_keeps_at_most_the_newest_devices(logged_in, agent, settings):
    settings.MAX_DEVICES_PER_AGENT = 3
    client = logged_in(agent)
    for number in range(5):
        client.post(URL, {"token": f"phone-{number}", "platform": "android"})

    assert set(Device.objects.values_list("token", flat=True)) == {"phone-2", "phone-3", "phone-4"}


def test_a_token_with_a_slash_is_refused(logged_in, agent):
    response = logged_in(agent).post(URL, {"token": "a/b", "platform": "ios"})

    assert response.status_code == 400
    assert "token" in response.json()["fields"]
