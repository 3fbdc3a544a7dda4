from django.contrib import admin, messages
from django.db.models import Q
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from em_agent.admin_scoping import OrganizationScopedAdmin
from notifications.delivery import deliveries_retry_failed
from notifications.models import Delivery, DeliveryStatus, Device, Notification


class OrganizationFilter(admin.SimpleListFilter):
    """Filters by the recipient's organisation (an agent's, or a supervisor's own)."""

    title = _("organisation")
    parameter_name = "organization"
    path = "notification__user"

    def lookups(self, request, model_admin):
        from em_agent.models import Organization

        organizations = Organization.objects.all()
        if not request.user.is_superuser:
            organizations = organizations.filter(pk=request.user.organization_id)
        return [(organization.pk, organization.name) for organization in organizations]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(
                Q(**{f"{self.path}__agent__organization": self.value()})
                | Q(**{f"{self.path}__organization": self.value()})
            )
        return queryset


class NotificationOrganizationFilter(OrganizationFilter):
    path = "user"


@admin.register(Device)
class DeviceAdmin(OrganizationScopedAdmin):
    organization_path = "agent__organization"
    supervisor_actions = frozenset({"view", "delete"})
    list_display = [
        "agent",
        "platform",
        "trusted",
        "created_at",
        "last_seen_at",
        "disabled_at",
        "disabled_reason",
    ]
    list_filter = ["platform", "trusted", ("disabled_at", admin.EmptyFieldListFilter), "agent__organization"]
    search_fields = ["agent__name", "agent__user__email"]
    list_select_related = ["agent__user"]
    readonly_fields = [
        "agent",
        "token",
        "platform",
        "trusted",
        "created_at",
        "last_seen_at",
        "disabled_at",
        "disabled_reason",
    ]


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("channel", "status", "attempts", "next_attempt_at", "sent_at", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(OrganizationScopedAdmin):
    organization_path = ("user__agent__organization", "user__organization")
    supervisor_actions = frozenset({"view"})
    list_display = ["kind", "user", "created_at", "acknowledged_at", "deleted_at"]
    list_filter = ["kind", NotificationOrganizationFilter, ("acknowledged_at", admin.EmptyFieldListFilter)]
    search_fields = ["user__email"]
    list_select_related = ["user"]
    readonly_fields = ["user", "kind", "params", "created_at", "acknowledged_at", "deleted_at", "expires_at"]
    inlines = [DeliveryInline]
    date_hierarchy = "created_at"


@admin.register(Delivery)
class DeliveryAdmin(OrganizationScopedAdmin):
    organization_path = ("notification__user__agent__organization", "notification__user__organization")
    supervisor_actions = frozenset({"view", "change"})
    list_display = [
        "notification",
        "channel",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "short_error",
    ]
    list_filter = ["status", "channel", "notification__kind", OrganizationFilter]
    search_fields = ["notification__user__email"]
    list_select_related = ["notification"]
    readonly_fields = [
        "notification",
        "channel",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "sent_at",
        "last_error",
    ]
    actions = ["retry_failed"]

    @admin.display(description=_("last error"))
    def short_error(self, delivery: Delivery) -> str:
        return delivery.last_error[:80]

    @admin.action(description=_("Retry the selected failed deliveries"), permissions=["change"])
    def retry_failed(self, request: HttpRequest, queryset) -> None:
        retried = deliveries_retry_failed(
            ids=list(queryset.filter(status=DeliveryStatus.FAILED).values_list("pk", flat=True))
        )
        messages.success(
            request,
            ngettext(
                "%(count)d delivery will be tried again.",
                "%(count)d deliveries will be tried again.",
                retried,
            )
            % {"count": retried},
        )
