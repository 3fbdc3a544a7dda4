"""Admin scoping: a supervisor sees and changes only its own organisation's objects; a superuser all."""

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest


def organization_of(request: HttpRequest) -> int | None:
    return getattr(request.user, "organization_id", None)


def is_supervisor(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and not user.is_superuser and organization_of(request))


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Set `organization_path` to the lookup from the model to its organisation id."""

    organization_path: str = "organization"
    supervisor_actions: frozenset[str] = frozenset({"view", "change"})

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        if is_supervisor(request):
            return queryset.filter(**{self.organization_path: organization_of(request)})
        return queryset.none()

    def _supervisor_may(self, request: HttpRequest, action: str) -> bool:
        return request.user.is_superuser or (is_supervisor(request) and action in self.supervisor_actions)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._supervisor_may(request, "view")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._supervisor_may(request, "view")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._supervisor_may(request, "change")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._supervisor_may(request, "add")

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._supervisor_may(request, "delete")

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        # Choices of related objects stay inside the supervisor's organisation too.
        if is_supervisor(request):
            org_id = organization_of(request)
            related = db_field.related_model
            if related._meta.label == "em_agent.Organization":
                kwargs["queryset"] = related.objects.filter(pk=org_id)
            elif related._meta.label == "em_agent.User":
                kwargs["queryset"] = related.objects.filter(organization_id=org_id, is_staff=True)
            elif any(field.name == "organization" for field in related._meta.fields):
                kwargs["queryset"] = related.objects.filter(organization_id=org_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
