"""Where allauth's endpoints must behave more strictly than allauth does by default."""

from allauth.headless.constants import Client
from allauth.headless.mfa.views import ManageTOTPView
from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.totp.internal.auth import TOTP
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _


class GuardedTOTPView(ManageTOTPView):
    """allauth's TOTP management, with two holes closed:
    - the code that confirmed the enrolment is spent, so it cannot log in a second time;
    - deleting honours the MFA adapter's can_delete_authenticator (allauth's headless view skips it).
    """

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        result = super().post(request, *args, **kwargs)
        authenticator = self._get_authenticator()
        if result.status_code == 200 and authenticator is not None:
            TOTP(authenticator)._mark_code_used(self.input.cleaned_data["code"])
        return result

    def delete(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        authenticator = self._get_authenticator()
        if authenticator and not get_mfa_adapter().can_delete_authenticator(authenticator):
            message = _(
                "Your organisation requires two-factor authentication; ask your supervisor to reset it."
            )
            return JsonResponse(
                {"status": 409, "errors": [{"message": message, "code": "mfa_required_by_organization"}]},
                status=409,
            )
        return super().delete(request, *args, **kwargs)


guarded_app_totp_view = GuardedTOTPView.as_api_view(client=Client.APP)


def not_found(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    """Closed allauth features: email addresses are the WFM's identity of an agent and never change
    from a session (a stolen token plus a new address plus a reset would own the account)."""
    raise Http404
