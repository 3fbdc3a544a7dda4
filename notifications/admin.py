from django.contrib import admin

from em_agent.admin_scoping import OrganizationScopedAdmin
from notifications.models import Device


@admin.register(Device)
class DeviceAdmin(OrganizationScopedAdmin):
    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view", "delete"})
    list_display = ["agent", "platform", "created_at", "last_seen_at", "disabled_at"]
    list_filter = ["platform", "agent__organization"]
    search_fields = ["agent__name", "agent__user__email"]
    readonly_fields = ["agent", "token", "platform", "created_at", "last_seen_at", "disabled_at"]
