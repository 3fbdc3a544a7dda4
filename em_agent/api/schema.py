"""drf-spectacular extensions: how the app authenticates, in the schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SessionTokenScheme(OpenApiAuthenticationExtension):
    target_class = "em_agent.api.authentication.SessionTokenAuthentication"
    name = "SessionToken"  # the same name as allauth's scheme, merged below

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "X-Session-Token",
            "description": (
                "`meta.session_token` from `POST /_allauth/app/v1/auth/login` (and from "
                "`/_allauth/app/v1/auth/2fa/authenticate` when MFA is on). Ends after 60 minutes "
                "without activity (401 `session_expired`)."
            ),
        }


# The allauth headless endpoints the app uses (API.md, "Log in"). Their description comes from
# allauth's own OpenAPI document, merged into ours so /api/docs/ shows the whole contract.
ALLAUTH_APP_PATHS = (
    "/_allauth/app/v1/auth/login",
    "/_allauth/app/v1/auth/2fa/authenticate",
    "/_allauth/app/v1/auth/reauthenticate",
    "/_allauth/app/v1/account/authenticators/totp",
    "/_allauth/app/v1/account/authenticators/recovery-codes",
    "/_allauth/app/v1/auth/session",
    "/_allauth/app/v1/auth/password/request",
    "/_allauth/app/v1/auth/password/reset",
)
_PREFIX = "Allauth"
# Where a password or a TOTP code is checked, guesses are limited (em_agent.login_limits and allauth's
# own counters, docs/sessions.md); allauth's document does not say so.
LIMITED_LOGIN_STEPS = (
    "/_allauth/app/v1/auth/login",
    "/_allauth/app/v1/auth/2fa/authenticate",
    "/_allauth/app/v1/auth/reauthenticate",
)
TOO_MANY_LOGIN_ATTEMPTS = {
    "description": (
        "Too many attempts: `too_many_login_attempts` after repeated wrong passwords or codes (per account "
        "and per client address, with `Retry-After`), or allauth's limit on logins per address per minute "
        "(`status` only)."
    ),
    "headers": {
        "Retry-After": {
            "description": "Seconds until a new attempt is counted.",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "status": {"type": "integer", "enum": [429]},
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string", "enum": ["too_many_login_attempts"]},
                                "message": {"type": "string"},
                            },
                            "required": ["code", "message"],
                        },
                    },
                },
                "required": ["status"],
            },
            "examples": {
                "TooManyLoginAttempts": {
                    "value": {
                        "status": 429,
                        "errors": [
                            {
                                "message": "Too many failed login attempts. Try again later.",
                                "code": "too_many_login_attempts",
                            }
                        ],
                    }
                }
            },
        }
    },
}


def _prefix_refs(node):
    """allauth's component names (User, Session, ...) get a prefix so they never clash with ours."""
    if isinstance(node, dict):
        return {
            key: (_prefixed_ref(value) if key == "$ref" and isinstance(value, str) else _prefix_refs(value))
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_prefix_refs(item) for item in node]
    return node


def _prefixed_ref(ref: str) -> str:
    head, _, name = ref.rpartition("/")
    return f"{head}/{_PREFIX}{name}" if head.startswith("#/components/") else ref


def merge_allauth_login(result: dict, generator, request, public) -> dict:
    from allauth.headless.spec.internal.schema import get_schema

    allauth = _prefix_refs(get_schema())
    for path in ALLAUTH_APP_PATHS:
        operations = allauth["paths"].get(path)
        if operations:
            slug = path.removeprefix("/_allauth/app/v1/").replace("/", "_").replace("-", "_")
            for method, operation in operations.items():
                if isinstance(operation, dict) and "responses" in operation:
                    operation["tags"] = ["login (allauth headless)"]
                    operation.setdefault("operationId", f"allauth_{slug}_{method}")
            if path in LIMITED_LOGIN_STEPS and "post" in operations:
                operations["post"]["responses"]["429"] = {
                    "$ref": "#/components/responses/TooManyLoginAttempts"
                }
            result["paths"][path] = operations
    components = result.setdefault("components", {})
    components.setdefault("responses", {})["TooManyLoginAttempts"] = TOO_MANY_LOGIN_ATTEMPTS
    for kind, items in allauth.get("components", {}).items():
        if kind == "securitySchemes":
            for name, scheme in items.items():
                components.setdefault(kind, {}).setdefault(name, scheme)  # referenced by name, not by $ref
            continue
        components.setdefault(kind, {}).update({f"{_PREFIX}{name}": value for name, value in items.items()})
    return result
