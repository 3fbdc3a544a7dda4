"""The contract gate: schemathesis over every operation under /api/v1/, every phase (examples,
coverage, fuzzing, stateful), all checks, against the live test server, logged in by HTTP as three
agents: Alice (the one it fuzzes as), Bob of her organisation and Charlie of another, who must never
see each other's objects (schemathesis' object-level check replays reads as each peer).

Bounded for CI by a fixed seed and example count (EM_FUZZ_SEED, EM_FUZZ_EXAMPLES change them);
`make fuzz` runs the longer profile. Settings shared with a run by hand are in `schemathesis.toml`.
"""

import json
import os
import tomllib
from pathlib import Path

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from em_agent.models import WfmSystem
from tests.contract.data import contract_world
from tests.factories import PASSWORD, AgentFactory, OrganizationFactory, SupervisorFactory

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("EM_FUZZ_SEED", "20261203"))
EXAMPLES = int(os.environ.get("EM_FUZZ_EXAMPLES", "12"))
STATEFUL_STEPS = int(os.environ.get("EM_FUZZ_STATEFUL_STEPS", "30"))
PHASES = ("examples", "coverage", "fuzzing", "stateful")
# Alice's organisation and Charlie's, in zones of their own.
_ZONES = ("Europe/Amsterdam", "America/New_York")

pytestmark = pytest.mark.django_db(transaction=True)


def _wfc_users(path: Path, agents: dict) -> None:
    """Web Fuzzing Commons users: each logs in through allauth's app login and sends its token."""
    login = {
        "verb": "POST",
        "endpoint": "/_allauth/app/v1/auth/login",
        "contentType": "application/json",
        "token": {
            "extractFrom": "body",
            "extractSelector": "/meta/session_token",
            "sendIn": "header",
            "sendName": "X-Session-Token",
        },
    }
    users = [
        {
            "name": name,
            "loginEndpointAuth": {
                **login,
                "payloadUserPwd": {
                    "username": agent.user.email,
                    "usernameField": "email",
                    "password": PASSWORD,
                    "passwordField": "password",
                },
            },
        }
        for name, agent in agents.items()
    ]
    path.write_text(json.dumps({"auth": users}))


def _config(base_url: str, wfc_file: Path, peers: list[str]) -> SchemathesisConfig:
    with open(ROOT / "schemathesis.toml", "rb") as project:
        data = tomllib.load(project)
    data.update(
        {
            "seed": SEED,
            "base-url": base_url,
            "max-failures": 50,
            "generation": {"max-examples": EXAMPLES},
            "phases": {
                **{phase: {"enabled": True} for phase in PHASES},
                "stateful": {"enabled": True, "max-steps": STATEFUL_STEPS},
            },
            "auth": {"wfc": {"path": str(wfc_file), "peers": peers}},
        }
    )
    return SchemathesisConfig.from_dict(data, base_dir=str(ROOT))


def _failures(stream) -> tuple[list[str], set[str], dict[str, Status]]:
    """Every failed check (with the request that reproduces it), every check that ran, and how each
    phase ended."""
    failures: list[str] = []
    checks_run: set[str] = set()
    phases: dict[str, Status] = {}
    for event in stream:
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            for nodes in event.recorder.checks.values():
                for node in nodes:
                    checks_run.add(node.name)
                    if node.status == Status.FAILURE and node.failure_info is not None:
                        failure = node.failure_info.failure
                        failures.append(
                            f"{failure.operation}: {failure.title}: {failure.message}\n"
                            f"    {node.failure_info.code_sample}"
                        )
                    elif node.status == Status.ERROR:
                        failures.append(f"{event.recorder.label}: the check {node.name} crashed")
        elif isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    return sorted(set(failures)), checks_run, phases


# The organisations' WFM system decides which operations exist (em_agent.policies): the fuzz runs as
# CXone agents over every operation (those IEX alone has answer them 409), then as IEX agents over
# the paths only IEX has.
SYSTEMS = {WfmSystem.CXONE: (), WfmSystem.IEX: ("/api/v1/absence-requests",)}


@pytest.mark.parametrize("system", SYSTEMS)
def test_the_contract_holds_under_fuzzing(live_server, system, tmp_path):
    home, elsewhere = (OrganizationFactory(wfm_system=system, default_timezone=zone) for zone in _ZONES)
    supervisor = SupervisorFactory(organization=home)
    alice = AgentFactory(organization=home, supervisor=supervisor, name="Alice")
    bob = AgentFactory(organization=home, supervisor=supervisor, name="Bob")
    charlie = AgentFactory(
        organization=elsewhere, supervisor=SupervisorFactory(organization=elsewhere), name="Charlie"
    )
    contract_world([alice, bob, charlie])
    AgentFactory(organization=home)  # a colleague with nothing of Alice's
    peers = {"alice": alice, "bob": bob, "charlie": charlie}
    _wfc_users(tmp_path / "users.json", peers)
    config = _config(live_server.url, tmp_path / "users.json", list(peers))
    # The app's API only: allauth's own endpoints are allauth's to fuzz (they are in the schema so
    # that the app's client has its login).
    served = httpx.get(f"{live_server.url}/api/schema/?format=json").json()
    prefixes = SYSTEMS[system] or ("/api/v1/",)
    served["paths"] = {path: item for path, item in served["paths"].items() if path.startswith(prefixes)}
    schema = schemathesis.openapi.from_dict(served, config=config)

    failures, checks_run, phases = _failures(from_schema(schema).execute())

    assert not failures, "\n\n".join(failures)
    # Every phase ran (a phase that found nothing to do would be skipped), and the gate's own check
    # and schemathesis' authorisation checks were among those applied.
    assert {phase: phases.get(phase) for phase in PHASES} == dict.fromkeys(PHASES, Status.SUCCESS)
    assert {
        "positive_data_acceptance_with_field_rules",
        "negative_data_rejection",
        "response_schema_conformance",
        "status_code_conformance",
        "not_a_server_error",
        "ignored_auth",
        "use_after_free",
    } <= checks_run
