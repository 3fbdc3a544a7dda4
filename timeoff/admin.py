import zoneinfo

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from em_agent.admin_scoping import OrganizationScopedAdmin, RecordAdminMixin
from timeoff.models import AbsenceRequest, StaffingInterval, TimeOffBalance


@admin.register(AbsenceRequest)
class AbsenceRequestAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    """IEX absences as the agents sent them: the supervisor records them in the WFM, not here."""

    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["agent", "date", "exception_code", "full_day", "start", "end", "status", "created_at"]
    list_filter = ["status", "full_day", "date"]
    search_fields = ["agent__name", "agent__user__email"]
    date_hierarchy = "date"
    list_select_related = ["agent", "exception_code"]
    readonly_fields = [
        "agent",
        "date",
        "exception_code",
        "full_day",
        "start",
        "end",
        "comment",
        "status",
        "created_at",
    ]


@admin.register(TimeOffBalance)
class TimeOffBalanceAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    """Earned balances as the WFM's export last counted them: the next sync would overwrite a change."""

    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["agent", "activity_code", "earned_hours", "as_of", "updated_at"]
    list_filter = ["activity_code", "as_of"]
    search_fields = ["agent__name", "agent__external_id", "agent__user__email"]
    list_select_related = ["agent", "activity_code"]
    readonly_fields = ["agent", "activity_code", "earned_minutes", "earned_hours", "as_of", "updated_at"]

    @admin.display(description=_("earned hours"), ordering="earned_minutes")
    def earned_hours(self, balance: TimeOffBalance) -> str:
        return f"{balance.earned_minutes / 60:.2f}"


@admin.register(StaffingInterval)
class StaffingIntervalAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    """The WFM's interval staffing, by team (none: the whole organisation), as its export last had it."""

    organization_path = "organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["local_start", "team", "minutes", "required", "scheduled", "surplus", "updated_at"]
    list_filter = ["team", "minutes"]
    date_hierarchy = "start"
    list_select_related = ["organization", "team"]
    readonly_fields = [
        "organization",
        "team",
        "start",
        "local_start",
        "minutes",
        "required",
        "scheduled",
        "updated_at",
    ]

    @admin.display(description=_("start (organisation's time zone)"), ordering="start")
    def local_start(self, interval: StaffingInterval) -> str:
        # Supervisors plan in the organisation's wall time, as the export wrote it; UTC is for the database.
        local = interval.start.astimezone(zoneinfo.ZoneInfo(interval.organization.default_timezone))
        return f"{local:%Y-%m-%d %H:%M %Z}"

    @admin.display(description=_("scheduled - required"))
    def surplus(self, interval: StaffingInterval) -> int:
        return interval.scheduled - interval.required
