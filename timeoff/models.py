from django.db import models
from django.db.models import Q
from django.utils.timezone import now as utc_now
from django.utils.translation import gettext_lazy as _

from em_agent.models import Agent
from schedules.models import ActivityCode


class AbsenceStatus(models.TextChoices):
    # IEX WFM Integrated decides nothing here: the request is handed to the supervisor and the WFM,
    # whose next export carries the outcome into the schedule.
    SUBMITTED = "submitted", _("Submitted")


class AbsenceRequest(models.Model):
    """An IEX organisation's absence request: one local day, whole or from a start to an end time,
    with an exception code; recorded and emailed to the supervisor, never approved here."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="absence_requests")
    date = models.DateField(help_text=_("The local day of the absence (the agent's zone)."))
    exception_code = models.ForeignKey(
        ActivityCode, on_delete=models.PROTECT, related_name="absence_requests"
    )
    full_day = models.BooleanField(default=False)
    # A partial absence's instants (UTC); a whole day has none: it is the local day, 23 to 25 hours.
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    comment = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=20, choices=AbsenceStatus.choices, default=AbsenceStatus.SUBMITTED)
    created_at = models.DateTimeField(default=utc_now, editable=False)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["agent", "-id"], name="absence_request_agent"),
            models.Index(fields=["agent", "date"], name="absence_request_agent_date"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(full_day=True) & Q(start__isnull=True) & Q(end__isnull=True))
                | (
                    Q(full_day=False)
                    & Q(start__isnull=False)
                    & Q(end__isnull=False)
                    & Q(end__gt=models.F("start"))
                ),
                name="absence_request_whole_day_or_times",
            )
        ]

    def __str__(self) -> str:
        return f"Absence of {self.agent_id} on {self.date}: {self.status}"
