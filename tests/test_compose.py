"""The production shape: docker-compose.yml and the Dockerfile, checked without a Docker engine.

docker-compose.yml is validated against the Compose Specification's JSON schema, vendored in
tests/data/compose-spec.json (the copy that the check-jsonschema package on PyPI ships as its
`vendor.compose-spec` schema; the compose-spec project's, Apache-2.0), so the test needs no network.
To refresh it: `pip download --no-deps check-jsonschema` and copy
check_jsonschema/builtin_schemas/vendor/compose-spec.json out of the wheel.
"""

import copy
import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.urls import resolve
from jsonschema.validators import validator_for

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SCHEMA_FILE = Path(__file__).resolve().parent / "data" / "compose-spec.json"

APP_SERVICES = ("migrate", "web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict:
    # safe_load resolves the `<<: *app` merge keys, as Compose does.
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_FILE.read_text())
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_errors(validator, document) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _final_stage() -> list[tuple[str, str]]:
    instructions = _dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _command(value) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value)


def test_compose_file_is_valid_against_the_compose_specification(compose, validator):
    assert _schema_errors(validator, compose) == []


def test_the_schema_does_reject_a_broken_compose_file(compose, validator):
    broken = copy.deepcopy(compose)
    broken["services"]["web"]["no_such_option"] = True
    broken["services"]["worker"]["depends_on"]["migrate"]["condition"] = "service_finished"
    errors = _schema_errors(validator, broken)
    assert any("no_such_option" in error for error in errors), errors
    assert any("service_finished" in error for error in errors), errors


def test_no_obsolete_version_key(compose):
    assert "version" not in compose


def test_the_services_of_the_production_shape(compose):
    services = compose["services"]
    assert {"postgres", "redis", *APP_SERVICES} <= services.keys()
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7")
    mail_catchers = [name for name, service in services.items() if "mailpit" in service.get("image", "")]
    assert mail_catchers, "no mail catcher service"
    assert compose["x-env"]["EMAIL_URL"] == f"smtp://{mail_catchers[0]}:1025"
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"


def test_app_services_run_one_image_build_with_one_environment(compose):
    services = compose["services"]
    builds = {json.dumps(services[name].get("build"), sort_keys=True) for name in APP_SERVICES}
    images = {services[name].get("image") for name in APP_SERVICES}
    assert builds == {json.dumps(".")}, builds
    assert len(images) == 1 and None not in images, images
    for name in APP_SERVICES:
        assert services[name]["environment"] == compose["x-env"], name
    env = compose["x-env"]
    assert env["PRODUCTION"] == "1"
    assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert env["REDIS_URL"].startswith("redis://redis:6379/")
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "the key must come from the shell, never a default"


def test_web_waits_for_migrations_and_checks_liveness(compose):
    services = compose["services"]
    assert _command(services["migrate"]["command"])[-3:] == ["manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
    web = services["web"]
    assert "8000:8000" in web["ports"]
    probe = " ".join(_command(web["healthcheck"]["test"]))
    assert "http://127.0.0.1:8000/health/live" in probe
    assert resolve("/health/live").url_name == "health-live"
    assert "127.0.0.1" in compose["x-env"]["ALLOWED_HOSTS"].split(",")
    # Static files come from the image (WhiteNoise), not from a volume that could go stale.
    assert "volumes" not in web
    assert "whitenoise.middleware.WhiteNoiseMiddleware" in settings.MIDDLEWARE


def test_celery_worker_and_beat(compose):
    services = compose["services"]
    worker = _command(services["worker"]["command"])
    beat = _command(services["beat"]["command"])
    assert worker[:4] == ["celery", "-A", "em_agent", "worker"]
    assert beat[:4] == ["celery", "-A", "em_agent", "beat"]
    assert beat[beat.index("--scheduler") + 1] == settings.CELERY_BEAT_SCHEDULER


def test_dockerfile_cmd_starts_gunicorn_as_a_non_root_user():
    instructions = _dockerfile_instructions()
    assert instructions[0][0] == "FROM" and instructions[0][1].startswith("python:3.11-slim")
    final = _final_stage()
    cmds = [arguments for keyword, arguments in final if keyword == "CMD"]
    assert cmds, "the final stage has no CMD"
    cmd = json.loads(cmds[-1])  # exec form, so gunicorn is PID 1 and gets the stop signal
    assert cmd[0] == "gunicorn"
    assert settings.WSGI_APPLICATION.replace(".application", ":application") in cmd
    assert cmd[cmd.index("--bind") + 1] == "0.0.0.0:8000"
    assert cmd[cmd.index("--access-logfile") + 1] == "-"
    assert ("EXPOSE", "8000") in final
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    run_lines = " ".join(arguments for keyword, arguments in _dockerfile_instructions() if keyword == "RUN")
    assert "compilemessages" in run_lines and "collectstatic --noinput" in run_lines
    assert "pip install ." in run_lines


def test_docker_compose_config_accepts_the_file():
    """The real tool's parser too (Debian's docker-compose reads the file without an engine)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env={**os.environ, "SECRET_KEY": "compose-config-check"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_to_start_without_a_secret_key():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
