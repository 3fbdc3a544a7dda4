import dataclasses

from django.http import HttpRequest, JsonResponse
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable
from health_check.views import HealthCheckView


def live(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Nothing else, so a slow database never gets it restarted."""
    return JsonResponse({"status": "ok"})


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts a connection (in-process 'memory://' in the demo counts as up)."""

    def run(self) -> None:
        from em_agent.celery import app

        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
        except Exception as error:  # kombu raises transport-specific errors
            raise ServiceUnavailable(f"broker unreachable: {error.__class__.__name__}") from error


class ReadyView(HealthCheckView):
    """Readiness: the database, the cache and the broker."""

    checks = ("health_check.checks.Database", "health_check.checks.Cache", "em_agent.health.Broker")
