from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from activation.services import activation_code_issue, activation_codes_issue
from em_agent import sessions
from em_agent.admin_scoping import OrganizationScopedAdmin, is_supervisor
from em_agent.exceptions import ApplicationError
from em_agent.models import Agent, AgentSkill, Organization, Skill, Team, User
from em_agent.services import agent_set_active, user_set_active


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "organization", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_superuser", "is_active", "organization"]
    search_fields = ["email", "first_name", "last_name"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "language")}),
        (
            _("Permissions"),
            {
                "fields": (
                    "organization",
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                )
            },
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "usable_password", "password1", "password2"),
            },
        ),
    )

    def save_model(self, request: HttpRequest, obj: User, form, change: bool) -> None:
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        super().save_model(request, obj, form, change)
        if deactivating:
            user_set_active(user=obj, active=False)  # ends the user's sessions

    # Users (supervisors, superusers) are managed by superusers only.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_superuser


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "pk"
    list_display = [
        "name",
        "slug",
        "wfm_system",
        "mfa_required",
        "default_timezone",
        "session_idle_timeout_minutes",
    ]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    supervisor_actions = frozenset({"view"})

    def save_model(self, request: HttpRequest, obj: Organization, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        sessions.forget_idle_timeout(organization_id=obj.pk)  # a new timeout applies at once


@admin.register(Team)
class TeamAdmin(OrganizationScopedAdmin):
    list_display = ["name", "external_id", "organization"]
    list_filter = ["organization"]
    search_fields = ["name", "external_id"]
    supervisor_actions = frozenset({"view"})


@admin.register(Skill)
class SkillAdmin(OrganizationScopedAdmin):
    list_display = ["name", "external_id", "organization"]
    list_filter = ["organization"]
    search_fields = ["name", "external_id"]
    supervisor_actions = frozenset({"view"})


class AgentSkillInline(admin.TabularInline):
    model = AgentSkill
    extra = 0
    autocomplete_fields = ["skill"]

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return True


@admin.register(Agent)
class AgentAdmin(OrganizationScopedAdmin):
    list_display = [
        "name",
        "email",
        "organization",
        "team",
        "supervisor",
        "activated_at",
        "is_active",
        "last_synced_at",
    ]
    list_filter = ["organization", "team", ("activated_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "user__email", "external_id"]
    list_select_related = ["user", "organization", "team", "supervisor"]
    readonly_fields = ["user", "external_id", "activated_at", "last_synced_at", "created_at"]
    fields = [
        "user",
        "organization",
        "external_id",
        "name",
        "timezone",
        "language",
        "team",
        "supervisor",
        "activated_at",
        "last_synced_at",
        "created_at",
    ]
    inlines = [AgentSkillInline]
    actions = ["issue_activation_codes", "deactivate_agents", "reactivate_agents"]
    change_form_template = "admin/em_agent/agent/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if is_supervisor(request):
            fields.append("organization")
        return fields

    @admin.display(description=_("email"), ordering="user__email")
    def email(self, agent: Agent) -> str:
        return agent.user.email

    @admin.display(description=_("active"), boolean=True)
    def is_active(self, agent: Agent) -> bool:
        return agent.user.is_active

    def get_urls(self):
        return [
            path(
                "<int:agent_id>/issue-activation-code/",
                self.admin_site.admin_view(self.issue_activation_code_view),
                name="em_agent_agent_issue_activation_code",
            ),
            *super().get_urls(),
        ]

    def _show_codes(self, request: HttpRequest, issued: list) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": _("Activation codes"),
            "issued": issued,
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/activation/issued_codes.html", context)
        # Shown once: nothing may keep a copy of this page.
        response["Cache-Control"] = "no-store"
        return response

    def issue_activation_code_view(self, request: HttpRequest, agent_id: int):
        agent = get_object_or_404(self.get_queryset(request), pk=agent_id)
        change_url = reverse("admin:em_agent_agent_change", args=[agent.pk])
        if request.method != "POST" or not self.has_change_permission(request, agent):
            return HttpResponseRedirect(change_url)
        try:
            issued = activation_code_issue(agent=agent, issued_by=request.user)  # type: ignore[arg-type]
        except ApplicationError as error:
            messages.error(request, error.detail)
            return HttpResponseRedirect(change_url)
        return self._show_codes(request, [(agent, issued)])

    @admin.action(description=_("Issue activation codes (voids older ones)"), permissions=["change"])
    def issue_activation_codes(self, request: HttpRequest, queryset):
        agents = list(queryset.select_related("user"))
        issued = activation_codes_issue(agents=agents, issued_by=request.user)  # type: ignore[arg-type]
        skipped = len(agents) - len(issued)
        if skipped:
            messages.warning(
                request,
                ngettext(
                    "%(count)d selected agent has already activated the app: no code issued.",
                    "%(count)d selected agents have already activated the app: no codes issued.",
                    skipped,
                )
                % {"count": skipped},
            )
        if not issued:
            return None  # back to the list, with the message
        return self._show_codes(request, issued)

    @admin.action(description=_("Deactivate (ends their sessions at once)"), permissions=["change"])
    def deactivate_agents(self, request: HttpRequest, queryset):
        agents = list(queryset.select_related("user"))
        for agent in agents:
            agent_set_active(agent=agent, active=False)
        messages.success(
            request,
            ngettext("Deactivated %(count)d agent.", "Deactivated %(count)d agents.", len(agents))
            % {"count": len(agents)},
        )

    @admin.action(description=_("Reactivate"), permissions=["change"])
    def reactivate_agents(self, request: HttpRequest, queryset):
        agents = list(queryset.select_related("user"))
        for agent in agents:
            agent_set_active(agent=agent, active=True)
        messages.success(
            request,
            ngettext("Reactivated %(count)d agent.", "Reactivated %(count)d agents.", len(agents))
            % {"count": len(agents)},
        )
