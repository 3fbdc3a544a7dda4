from django.contrib import admin

from activation.models import ActivationCode
from em_agent.admin_scoping import OrganizationScopedAdmin


@admin.register(ActivationCode)
class ActivationCodeAdmin(OrganizationScopedAdmin):
    """Who issued each code, when, and when and from where it was redeemed. Codes are issued from
    the agent's page (button or action), never typed here; the clear code is never stored."""

    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view"})
    list_display = [
        "agent",
        "state",
        "issued_by",
        "issued_at",
        "expires_at",
        "redeemed_at",
        "redeemed_from",
        "voided_at",
    ]
    list_filter = ["agent__organization", ("redeemed_at", admin.EmptyFieldListFilter)]
    search_fields = ["agent__name", "agent__user__email"]
    list_select_related = ["agent__user", "issued_by"]
    readonly_fields = [
        "agent",
        "issued_by",
        "issued_at",
        "expires_at",
        "redeemed_at",
        "redeemed_from",
        "voided_at",
    ]
    exclude = ["code_hash"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
