"""drf-spectacular extensions: how the app authenticates, in the schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SessionTokenScheme(OpenApiAuthenticationExtension):
    target_class = "em_agent.api.authentication.SessionTokenAuthentication"
    name = "sessionToken"

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
