from django.contrib import admin

from em_agent.admin_scoping import OrganizationScopedAdmin, RecordAdminMixin
from timeoff.models import AbsenceRequest


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
