"""What differs between the WFM systems an organisation may use, chosen in one place (STYLE.md:
small strategy objects rather than `if wfm_system == ...` spread over the views)."""

from dataclasses import dataclass

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


def wfm_policy(organization: Organization) -> WfmPolicy:
    return _POLICIES[WfmSystem(organization.wfm_system)]
