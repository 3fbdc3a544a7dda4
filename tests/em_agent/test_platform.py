"""OpenAPI, health, production settings and the demo command."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from em_agent.models import Agent, Organization, User

ROOT = Path(__file__).resolve().parents[2]


def test_the_openapi_schema_validates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    text = (tmp_path / "schema.yaml").read_text()
    for route in (
        "/api/v1/me",
        "/api/v1/activation",
        "/api/v1/devices",
        "/api/v1/devices/{token}",
        "/_allauth/app/v1/auth/login",
        "/_allauth/app/v1/auth/2fa/authenticate",
        "/_allauth/app/v1/account/authenticators/totp",
    ):
        assert f"{route}:" in text
    assert "invalid_activation_code" in text  # error examples are part of the contract
    assert "X-Session-Token" in text


@pytest.mark.django_db
def test_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn" not in docs.content.lower()  # the sidecar serves the UI: the docs work offline


def test_liveness(client):
    response = client.get("/health/live")

    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_readiness_checks_database_cache_and_broker(client):
    response = client.get("/health/ready", HTTP_ACCEPT="application/json")

    assert response.status_code == 200, response.content
    body = response.json()
    names = " ".join(body).lower()
    for part in ("database", "cache", "broker"):
        assert part in names, body


@pytest.mark.django_db
def test_readiness_fails_when_the_broker_is_down(client, monkeypatch):
    from em_agent.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")  # nothing listens there

    response = client.get("/health/ready", HTTP_ACCEPT="application/json")

    assert response.status_code == 500


def test_production_settings_pass_the_deploy_check():
    env = {
        **os.environ,
        "PRODUCTION": "1",
        "SECRET_KEY": "x" * 30 + "-a-long-random-production-secret-key-0123456789",
        "ALLOWED_HOSTS": "agent.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    env["PRODUCTION"] = "1"
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_the_logins(capsys, settings, tmp_path):
    settings.WFM_DEMO_EXPORT_DIR = tmp_path
    call_command("seed_demo", "--password", "another-demo-pass")
    first = (User.objects.count(), Agent.objects.count(), Organization.objects.count())
    call_command("seed_demo", "--password", "another-demo-pass")
    printed = capsys.readouterr().out

    assert (User.objects.count(), Agent.objects.count(), Organization.objects.count()) == first
    assert set(Organization.objects.values_list("wfm_system", flat=True)) == {"cxone", "iex"}
    assert Organization.objects.filter(mfa_required=True, wfm_system="cxone").count() == 1
    for organization in Organization.objects.all():
        assert organization.staff.filter(is_staff=True).exists()
        agents = organization.agents.all()
        assert any(agent.activated_at for agent in agents)
        assert any(agent.activated_at is None for agent in agents)
    assert "anna@contoso.demo" in printed and "another-demo-pass" in printed
    assert User.objects.get(email="anna@contoso.demo").check_password("another-demo-pass")
    assert {agent.timezone for agent in Agent.objects.all()} - {"UTC"}


@pytest.mark.parametrize(
    "loader",
    [
        "import em_agent.wsgi",
        # A prefork child of the worker: what Celery does in each child once it has forked.
        "import django; django.setup(); from celery import signals; from em_agent.celery import app; "
        "signals.worker_process_init.send(sender=None)",
    ],
    ids=["web", "worker"],
)
def test_the_loaded_project_is_frozen_out_of_the_collectors_full_passes(loader):
    code = f"import gc; {loader}; print(gc.get_freeze_count())"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "em_agent.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    # The project's modules, the URLconf's views included: tens of thousands of objects.
    assert int(out.stdout.strip().splitlines()[-1]) > 50_000
