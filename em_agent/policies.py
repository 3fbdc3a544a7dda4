"""What differs between the WFM systems an organisation may use, chosen in one place (STYLE.md:
small strategy objects rather than `if wfm_system == ...` spread over the views)."""

from dataclasses import dataclass
from typing import Literal

from django.utils.translation import gettext_lazy as _
from rest_framework import status

from em_agent.exceptions import ApplicationError
from em_agent.models import Organization, WfmSystem


@dataclass(frozen=True)
class WfmPolicy:
    # CXone WFM takes schedule change requests from the app (the product's help text: "Met CXone WFM
    # kunt u planningswijzigingen aanvragen"); IEX WFM Integrated does not.
    schedule_requests: bool
    # CXone: time-off requests with balances and approval; IEX: absence requests by email instead.
    time_off: bool
    absence_requests: bool


_POLICIES = {
    WfmSystem.CXONE: WfmPolicy(schedule_requests=True, time_off=True, absence_requests=False),
    WfmSystem.IEX: WfmPolicy(schedule_requests=False, time_off=False, absence_requests=True),
}

Feature = Literal["schedule_requests", "time_off", "absence_requests"]

_UNAVAILABLE = {
    "schedule_requests": _(
        "Your organisation's workforce management system does not take schedule change requests."
    ),
    "time_off": _(
        "Your organisation's workforce management system does not take time-off requests: "
        "request an absence instead."
    ),
    "absence_requests": _(
        "Your organisation's workforce management system does not take absence requests: "
        "request time off instead."
    ),
}


def wfm_policy(organization: Organization) -> WfmPolicy:
    return _POLICIES[WfmSystem(organization.wfm_system)]


def wfm_feature_require(*, organization: Organization, feature: Feature) -> None:
    """409 `not_available_for_wfm_system` unless the organisation's WFM system has the feature."""
    if not getattr(wfm_policy(organization), feature):
        raise ApplicationError(
            "not_available_for_wfm_system", str(_UNAVAILABLE[feature]), status_code=status.HTTP_409_CONFLICT
        )
