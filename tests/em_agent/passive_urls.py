"""The project's URLs plus one passive endpoint, to test the passive mechanism before the real passive
poll (the unacknowledged-count) exists."""

from django.urls import path
from rest_framework.response import Response

from em_agent.api.views import AgentAPIView
from em_agent.urls import urlpatterns as project_urlpatterns


class PassiveProbeApi(AgentAPIView):
    passive_activity = True

    def get(self, request):
        return Response({"count": 0})


urlpatterns = [path("api/v1/passive-probe", PassiveProbeApi.as_view()), *project_urlpatterns]
