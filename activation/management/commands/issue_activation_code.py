from django.core.management.base import BaseCommand, CommandError

from activation.services import activation_code_issue
from em_agent.exceptions import ApplicationError
from em_agent.models import Agent


class Command(BaseCommand):
    help = "Prints a fresh activation code for the agent with this email (older codes stop working)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--ttl-hours", type=int, default=None, help="Hours the code stays valid (default 72)."
        )

    def handle(self, *args, email: str, ttl_hours: int | None, **options) -> None:
        try:
            agent = Agent.objects.select_related("user").get(user__email__iexact=email.strip())
        except Agent.DoesNotExist:
            raise CommandError(f"No agent with the email {email}.") from None
        try:
            issued = activation_code_issue(agent=agent, ttl_hours=ttl_hours)
        except ApplicationError as error:
            raise CommandError(error.detail) from error
        self.stdout.write(issued.code)
        self.stderr.write(
            f"for {agent.name} <{agent.user.email}>, valid until {issued.record.expires_at:%Y-%m-%d %H:%M} UTC"
        )
