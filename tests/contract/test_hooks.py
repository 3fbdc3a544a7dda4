"""The contract fuzz's replacement of schemathesis' use_after_free: only the contract's withdrawn
schedule request may still be read after its DELETE; everything else is schemathesis' own check."""

from types import SimpleNamespace

import pytest
import schemathesis
from schemathesis.checks import CHECKS

from tests.contract import schemathesis_hooks


def _case(operation_id: str):
    return SimpleNamespace(
        operation=SimpleNamespace(definition=SimpleNamespace(raw={"operationId": operation_id}))
    )


class _Response:
    def __init__(self, status_code: int, body) -> None:
        self.status_code, self._body = status_code, body

    def json(self):
        return self._body


@pytest.fixture
def builtin_calls(monkeypatch):
    calls = []

    def builtin(ctx, response, case):
        calls.append(case)
        raise AssertionError("use after free")

    monkeypatch.setattr(schemathesis_hooks, "_schemathesis_use_after_free", builtin)
    return calls


def test_it_replaces_schemathesis_own_check_under_its_name():
    assert schemathesis is not None
    assert CHECKS.get_one("use_after_free") is schemathesis_hooks.use_after_free


def test_a_withdrawn_request_read_after_its_delete_passes(builtin_calls):
    response = _Response(200, {"id": 1, "status": "withdrawn"})

    assert schemathesis_hooks.use_after_free(None, response, _case("schedule_requests_read")) is None
    assert builtin_calls == []


@pytest.mark.parametrize(
    "operation_id, response",
    [
        ("schedule_requests_read", _Response(200, {"id": 1, "status": "pending"})),  # the DELETE did nothing
        ("schedule_requests_read", _Response(200, ["not", "an", "object"])),
        ("notifications_acknowledge", _Response(200, {"status": "withdrawn"})),  # a deleted notification
    ],
)
def test_anything_else_is_schemathesis_check(builtin_calls, operation_id, response):
    with pytest.raises(AssertionError, match="use after free"):
        schemathesis_hooks.use_after_free(None, response, _case(operation_id))
    assert len(builtin_calls) == 1
