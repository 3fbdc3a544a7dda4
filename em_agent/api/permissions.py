"""The gate in front of every agent endpoint.

Three levels, each including the one before:
- `IsAgent`: a logged-in agent (me, activation and devices work here, so the app can route);
- `IsMfaSatisfiedAgent`: and, where the organisation requires MFA, enrolled and used it to log in;
- `IsActiveAgent` (the default): and activated.
"""

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from em_agent import sessions
from em_agent.selectors import user_has_totp


def _agent(request):
    user = request.user
    if not user or not user.is_authenticated:
        return None
    return getattr(user, "agent", None)


class IsAgent(BasePermission):
    message = _("This account is not an agent account.")
    code = "permission_denied"

    def has_permission(self, request, view) -> bool:
        return _agent(request) is not None


def mfa_satisfied(*, request) -> bool:
    """The session meets the organisation's MFA policy: not required, or enrolled and used to log in."""
    if not request.user.agent.organization.mfa_required:
        return True
    return sessions.used_mfa(request.auth) and user_has_totp(user=request.user)


class IsMfaSatisfiedAgent(IsAgent):
    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if not mfa_satisfied(request=request):
            self.message = _(
                "Your organisation requires two-factor authentication: enrol and log in with it."
            )
            self.code = "mfa_enrollment_required"
            return False
        return True


class IsActiveAgent(IsMfaSatisfiedAgent):
    def has_permission(self, request, view) -> bool:
        if not super().has_permission(request, view):
            return False
        if not request.user.agent.is_activated:
            self.message = _("Activate the app with the code from your supervisor first.")
            self.code = "activation_required"
            return False
        return True
