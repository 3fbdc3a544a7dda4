"""Where each organisation's WFM data comes from, and the record of every sync run."""

from django.db import models
from django.db.models import Q
from django.utils.timezone import now as utc_now
from django.utils.translation import gettext_lazy as _

from em_agent.models import Organization


class SourceKind(models.TextChoices):
    DIRECTORY = "directory", _("Directory of JSON export files")
    HTTP = "http", _("HTTP JSON API")


class WfmSource(models.Model):
    """An organisation's WFM export: a directory (the embedded default, and the demo's) or an HTTP
    API with a bearer token. The token itself is not stored here: `token_setting` names the setting
    (environment variable) that holds it, so a copy of the database gives no access to the WFM."""

    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="wfm_source")
    kind = models.CharField(max_length=20, choices=SourceKind.choices, default=SourceKind.DIRECTORY)
    location = models.CharField(max_length=500, help_text=_("The export directory, or the API's base URL."))
    token_setting = models.CharField(
        max_length=100, blank=True, help_text=_("Environment variable with the bearer token.")
    )
    # Beyond the reference app (where a newly activated agent waits for the night): sync the agent's
    # schedule from the WFM right after it activates the app.
    sync_on_activation = models.BooleanField(
        default=False, help_text=_("Load an agent's schedule right after it activates the app.")
    )

    class Meta:
        verbose_name = _("WFM source")
        verbose_name_plural = _("WFM sources")

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.location}"


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped: another run was in progress")


class NightStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    RETRY_PLANNED = "retry_planned", _("Failed: retry planned")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed: no retry left")
    SUPERSEDED = "superseded", _("Replaced by the next night's sync")


class NightlySync(models.Model):
    """An organisation's nightly sync of one night: claimed (inserted, or set back to queued) in
    the transaction that hands its task to the broker, so two beats hand it out once; its task
    starts a run only by a conditional update from queued to running. Each attempt is a SyncRun
    pointing here."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="nightly_syncs")
    night = models.DateField(help_text=_("The date, in the organisation's zone, the sync was due on."))
    due_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=NightStatus.choices, default=NightStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField(help_text=_("When its task was last handed to the broker."))
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next retry"), null=True, blank=True)
    # A run not of this night (an operator's Sync now, the command) that succeeded after the due
    # time: the night's sync had nothing left to do.
    covered_by = models.ForeignKey(
        "SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("nightly sync")
        verbose_name_plural = _("nightly syncs")
        ordering = ["-night", "organization_id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "night"], name="nightly_sync_one_per_night"),
            models.CheckConstraint(
                condition=Q(status="retry_planned", next_attempt_at__isnull=False)
                | (~Q(status="retry_planned") & Q(next_attempt_at__isnull=True)),
                name="nightly_sync_retry_time_iff_planned",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization.name}, night of {self.night}: {self.get_status_display()}"


class SyncRun(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="sync_runs")
    trigger = models.CharField(max_length=40, default="schedule")  # schedule, admin, command, activation
    # The nightly sync this run is an attempt of; none for a manual or an activation run.
    night = models.ForeignKey(
        NightlySync, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.RUNNING)
    started_at = models.DateTimeField(default=utc_now)
    finished_at = models.DateTimeField(null=True, blank=True)
    # agents seen/created/updated/deactivated, days seen/changed/unchanged/skipped, conflicts, ...
    counts = models.JSONField(default=dict)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["organization", "-started_at"], name="sync_run_latest")]
        constraints = [
            models.CheckConstraint(
                condition=Q(finished_at__isnull=True) | Q(finished_at__gte=models.F("started_at")),
                name="sync_run_finished_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization.name}, {self.started_at:%Y-%m-%d %H:%M} UTC: {self.get_status_display()}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class IssueKind(models.TextChoices):
    SKIPPED = "skipped", _("Row skipped")
    CONFLICT = "conflict", _("Local change kept")


class SyncIssue(models.Model):
    """A row of the export the run did not apply, and why; or a day where a local change won."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="issues")
    kind = models.CharField(max_length=20, choices=IssueKind.choices, default=IssueKind.SKIPPED)
    section = models.CharField(max_length=40)  # teams, skills, activity_codes, agents, schedules
    reference = models.CharField(max_length=200)  # the row's key: an external id, "agent/date"
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.section} {self.reference}: {self.reason}"
