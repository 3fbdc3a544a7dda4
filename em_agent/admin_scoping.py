"""Admin scoping: a supervisor sees and changes only its own organisation's objects; a superuser all.

Everything a supervisor can reach goes through here: the changelist, object pages, actions, list
filters and the choices of related fields. What cannot be scoped is refused, not shown.
"""

from django.contrib import admin
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest


def organization_of(request: HttpRequest) -> int | None:
    return getattr(request.user, "organization_id", None)


def is_supervisor(request: HttpRequest) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and not user.is_superuser and organization_of(request))


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Set `organization_path` to the lookup from the model to its organisation id, or to several
    lookups of which any may match (a notification's recipient is an agent or a supervisor)."""

    organization_path: str | tuple[str, ...] = "organization"
    supervisor_actions: frozenset[str] = frozenset({"view", "change"})

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        if is_supervisor(request):
            paths = (
                (self.organization_path,)
                if isinstance(self.organization_path, str)
                else self.organization_path
            )
            condition = Q()
            for path in paths:
                condition |= Q(**{path: organization_of(request)})
            return queryset.filter(condition).distinct() if len(paths) > 1 else queryset.filter(condition)
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

    def get_list_filter(self, request: HttpRequest):
        filters = super().get_list_filter(request)
        if not is_supervisor(request):
            return filters
        # Related-object filters would list every organisation's rows: a supervisor gets only the
        # values its own objects use, and no organisation filter at all.
        scoped: list = []
        for list_filter in filters:
            if isinstance(list_filter, type):  # a SimpleListFilter class scopes itself
                scoped.append(list_filter)
                continue
            name = list_filter if isinstance(list_filter, str) else list_filter[0]  # type: ignore[index]
            if not isinstance(name, str) or name.split("__")[-1] == "organization":
                continue
            if isinstance(list_filter, str) and self._is_relation(name):
                scoped.append((name, admin.RelatedOnlyFieldListFilter))
            else:
                scoped.append(list_filter)
        return scoped

    def _is_relation(self, lookup: str) -> bool:
        model: type[Model] = self.model
        field = None
        for part in lookup.split("__"):
            field = model._meta.get_field(part)
            if field.related_model is not None:
                model = field.related_model
        return bool(field is not None and field.is_relation)

    def _scoped_choices(self, request: HttpRequest, related: type[Model]) -> QuerySet:
        """Related objects a supervisor may pick: through that model's own scoped admin, or none."""
        org_id = organization_of(request)
        if related._meta.label == "em_agent.Organization":
            return related._default_manager.filter(pk=org_id)
        if related._meta.label == "em_agent.User":
            return related._default_manager.filter(organization_id=org_id, is_staff=True, is_active=True)
        related_admin = self.admin_site._registry.get(related)
        if isinstance(related_admin, OrganizationScopedAdmin):
            return related_admin.get_queryset(request)
        return related._default_manager.none()

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if is_supervisor(request):
            kwargs["queryset"] = self._scoped_choices(request, db_field.related_model)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if is_supervisor(request):
            kwargs["queryset"] = self._scoped_choices(request, db_field.related_model)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class RecordAdminMixin:
    """For records of what happened (the schedule journal, sync runs, nightly syncs): nobody adds,
    changes or deletes one, superusers included, so every field shows read-only."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
