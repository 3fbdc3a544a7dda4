import functools

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from em_agent.admin_scoping import OrganizationScopedAdmin, RecordAdminMixin
from sync.models import NightlySync, SyncIssue, SyncRun, WfmSource
from sync.tasks import sync_organization


@admin.register(WfmSource)
class WfmSourceAdmin(OrganizationScopedAdmin):
    """Operators configure sources; a supervisor sees its organisation's and may start a sync."""

    organization_path = "organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["organization", "kind", "location"]
    actions = ["sync_now"]

    def get_actions(self, request: HttpRequest):
        # The admin offers actions to those who may change; starting a sync is allowed to viewers.
        actions = super().get_actions(request)
        if "sync_now" not in actions:
            actions["sync_now"] = self.get_action("sync_now")
        return actions

    @admin.action(description=_("Sync now"))
    def sync_now(self, request: HttpRequest, queryset) -> None:
        organization_ids = list(queryset.values_list("organization_id", flat=True))
        for pk in organization_ids:
            transaction.on_commit(functools.partial(sync_organization.delay, pk, "admin"))
        self.message_user(
            request,
            ngettext("%(count)d sync started.", "%(count)d syncs started.", len(organization_ids))
            % {"count": len(organization_ids)},
            messages.SUCCESS,
        )


class SyncIssueInline(admin.TabularInline):
    model = SyncIssue
    fields = ["kind", "section", "reference", "reason"]
    readonly_fields = ["kind", "section", "reference", "reason"]
    extra = 0
    max_num = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        # Whoever may see the run (a supervisor of its organisation: SyncRunAdmin scopes it) sees
        # the rows it skipped and why, without a permission on SyncIssue of their own.
        return True

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    organization_path = "organization"
    supervisor_actions = frozenset({"view"})
    list_display = ["organization", "started_at", "status", "trigger", "duration", "short_counts"]
    list_filter = ["status", "organization", "trigger"]
    readonly_fields = [
        "organization",
        "trigger",
        "night",
        "status",
        "started_at",
        "finished_at",
        "counts",
        "error",
    ]
    inlines = [SyncIssueInline]

    @admin.display(description=_("duration (s)"))
    def duration(self, run: SyncRun) -> str:
        return f"{run.duration_seconds:.1f}" if run.duration_seconds is not None else "-"

    @admin.display(description=_("counts"))
    def short_counts(self, run: SyncRun) -> str:
        keys = ["agents", "days_seen", "days_changed", "days_unchanged", "schedules_skipped", "conflicts"]
        return ", ".join(f"{key} {run.counts[key]}" for key in keys if key in run.counts)


class AttemptInline(admin.TabularInline):
    """A night's attempts: its runs, each with its outcome and error."""

    model = SyncRun
    fk_name = "night"
    fields = ["started_at", "finished_at", "status", "error"]
    readonly_fields = ["started_at", "finished_at", "status", "error"]
    ordering = ["started_at"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    verbose_name = _("attempt")
    verbose_name_plural = _("attempts")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return True  # as SyncIssueInline: NightlySyncAdmin scopes the night

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(NightlySync)
class NightlySyncAdmin(RecordAdminMixin, OrganizationScopedAdmin):
    """Each organisation's nightly syncs: one row a night, its attempts and the next retry."""

    organization_path = "organization"
    supervisor_actions = frozenset({"view"})
    list_display = [
        "night",
        "organization",
        "status",
        "attempts",
        "next_attempt_at",
        "started_at",
        "finished_at",
        "covered_by",
    ]
    list_filter = ["status", "organization"]
    date_hierarchy = "night"
    fields = [
        "organization",
        "night",
        "due_at",
        "status",
        "attempts",
        "next_attempt_at",
        "queued_at",
        "started_at",
        "finished_at",
        "covered_by",
    ]
    inlines = [AttemptInline]
