"""Every error under /api/ has the contract's body, including Django's own 404 and 500."""

import pytest
from django.test import Client
from django.urls import path

from em_agent.urls import urlpatterns as project_urlpatterns


def _boom(request):
    raise RuntimeError("a bug")


urlpatterns = [path("api/v1/boom", _boom), *project_urlpatterns]
handler404 = "em_agent.errors.page_not_found"
handler500 = "em_agent.errors.server_error"

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_a_json_404(app_client):
    response = app_client.get("/api/v1/no-such-thing")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "not_found", "detail": "Not found."}


def test_unknown_api_path_in_dutch(app_client):
    app_client.language = "nl"

    assert app_client.get("/api/v1/no-such-thing").json()["detail"] == "Niet gevonden."


def test_other_paths_keep_html_errors(app_client):
    response = app_client.get("/no-such-page")

    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]


@pytest.mark.urls(__name__)
def test_a_crash_under_api_is_a_json_500():
    client = Client(raise_request_exception=False)

    response = client.get("/api/v1/boom")

    assert response.status_code == 500
    assert response.json()["code"] == "server_error"


def test_malformed_json_is_a_validation_error(logged_in, new_agent):
    client = logged_in(new_agent)

    response = client.client.post(
        "/api/v1/activation", "{not json", content_type="application/json", HTTP_X_SESSION_TOKEN=client.token
    )

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_wrong_method_is_405_with_the_body(logged_in, agent):
    response = logged_in(agent).delete("/api/v1/me")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_unauthenticated_error_body(app_client):
    response = app_client.get("/api/v1/me")

    assert response.status_code == 401
    assert set(response.json()) == {"code", "detail"}
    assert response.json()["code"] == "not_authenticated"


def test_an_oversized_body_is_a_json_400(logged_in, new_agent, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client = logged_in(new_agent)

    response = client.client.post(
        "/api/v1/activation",
        '{"code": "' + "A" * 4096 + '"}',
        content_type="application/json",
        HTTP_X_SESSION_TOKEN=client.token,
    )

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "fields" in response.json()


def test_a_trailing_slash_is_still_the_contracts_404(logged_in, agent):
    response = logged_in(agent).get("/api/v1/me/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
