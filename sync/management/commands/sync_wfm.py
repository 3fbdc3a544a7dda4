from django.core.management.base import BaseCommand, CommandError

from em_agent.models import Organization
from sync.models import RunStatus
from sync.services import wfm_sync


class Command(BaseCommand):
    help = "Runs the WFM sync now (every organisation with a WFM source, or one) and prints what it changed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", metavar="SLUG", help="only this organisation")

    def handle(self, *args, org: str | None = None, **options) -> None:
        organizations = Organization.objects.filter(wfm_source__isnull=False).order_by("slug")
        if org:
            organizations = organizations.filter(slug=org)
            if not organizations.exists():
                raise CommandError(f"no organisation {org!r} with a WFM source")
        failed = False
        for organization in organizations:
            run = wfm_sync(organization=organization, trigger="command")
            counts = ", ".join(f"{name} {value}" for name, value in sorted(run.counts.items())) or "nothing"
            self.stdout.write(
                f"{organization.slug}: {run.status} in {run.duration_seconds or 0:.1f}s: {counts}"
            )
            if run.error:
                self.stdout.write(f"  error: {run.error}")
            for issue in run.issues.all()[:20]:
                self.stdout.write(f"  {issue.kind} {issue.section} {issue.reference}: {issue.reason}")
            failed |= run.status == RunStatus.FAILED
        if failed:
            raise CommandError("a sync failed")
