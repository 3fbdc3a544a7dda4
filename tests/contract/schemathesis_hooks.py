"""The contract fuzz's own checks, loaded by schemathesis from `schemathesis.toml` (so a run by hand
from the project's root applies them too).

One replaces schemathesis' `positive_data_acceptance`: a request the schema calls valid must not be
refused as bad input, with two exceptions the schema itself documents:
- a business rule's own 400 code (`in_the_past`, `duration_out_of_range`, ...), listed among the
  operation's 400 examples: whether a time has passed or a balance suffices depends on the clock and
  the data, which no schema can state;
- a `validation_error` naming only fields of the operation's `x-field-rules`: rules JSON Schema
  cannot state because they relate two fields (an end after its start, 62 days at most) or depend
  on data (a code the organisation has).
Anything else (an enum, a format, a length the code checks and the schema does not say) still
fails: that is the schema being looser than the code, which a generated client would trip over.

The other replaces schemathesis' `use_after_free` under its own name (so `--checks all` on the
command line runs this one): the contract's `DELETE /schedule/requests/{id}` withdraws a pending
request, which stays in the agent's history, so reading it afterwards is 200 with the status
`withdrawn`, not 404. That answer is checked here; everything else is schemathesis' own check.
"""

import schemathesis
from schemathesis.checks import CHECKS
from schemathesis.specs.openapi.checks import use_after_free as _schemathesis_use_after_free

# operationId of a read -> the status its object shows after the DELETE the contract gives it.
_KEPT_AFTER_DELETE = {"schedule_requests_read": "withdrawn"}


def _documented_400_codes(operation: dict) -> set[str]:
    response = operation.get("responses", {}).get("400", {})
    examples = response.get("content", {}).get("application/json", {}).get("examples", {})
    return {example.get("value", {}).get("code") for example in examples.values()} - {None}


@schemathesis.check
def positive_data_acceptance_with_field_rules(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        body = response.json()
    except ValueError:
        body = {}
    operation = case.operation.definition.raw
    code = body.get("code") if isinstance(body, dict) else None
    if code != "validation_error" and code in _documented_400_codes(operation):
        return None
    fields = set((body.get("fields") or {}) if isinstance(body, dict) else {})
    rules = set(operation.get("x-field-rules", {}))
    if code == "validation_error" and fields and fields <= rules:
        return None
    raise AssertionError(
        f"Schema-valid request rejected: 400 `{code}` for fields {sorted(fields)}, which the schema "
        f"neither constrains nor lists in x-field-rules ({sorted(rules)})"
    )


# schemathesis refuses a second check of a name it has; this one takes the built-in's place on purpose
# (schemathesis is pinned, and tests/contract/test_hooks.py checks the replacement holds).
if CHECKS.get_one("use_after_free").__module__ != __name__:
    CHECKS.unregister("use_after_free")


@schemathesis.check
def use_after_free(ctx, response, case):
    kept = _KEPT_AFTER_DELETE.get(case.operation.definition.raw.get("operationId"))
    if kept is not None and response.status_code == 200:
        try:
            status = response.json().get("status")
        except (ValueError, AttributeError):
            status = None
        if status == kept:
            return None
    return _schemathesis_use_after_free(ctx, response, case)
