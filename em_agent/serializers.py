"""Output shapes shared by several endpoints."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from em_agent.models import Agent, Language, WfmSystem
from em_agent.selectors import user_has_totp


class OrganizationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    wfm_system = serializers.ChoiceField(choices=WfmSystem.choices)
    mfa_required = serializers.BooleanField()


class SupervisorOutput(serializers.Serializer):
    name = serializers.SerializerMethodField()
    email = serializers.EmailField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.email


class SkillOutput(serializers.Serializer):
    id = serializers.IntegerField(source="skill.id")
    name = serializers.CharField(source="skill.name")
    level = serializers.IntegerField()


class MeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField()
    language = serializers.ChoiceField(choices=Language.choices)
    timezone = serializers.CharField()
    organization = OrganizationOutput()
    activated = serializers.BooleanField(source="is_activated")
    mfa_enrolled = serializers.SerializerMethodField()
    supervisor = SupervisorOutput(allow_null=True)
    skills = SkillOutput(many=True, source="agent_skills.all")
    sync_pending = serializers.BooleanField()
    next_sync_at = serializers.SerializerMethodField()
    session_idle_timeout_minutes = serializers.IntegerField(source="organization.idle_timeout_minutes")

    def get_mfa_enrolled(self, agent: Agent) -> bool:
        return user_has_totp(user=agent.user)

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_next_sync_at(self, agent: Agent) -> str:
        moment = agent.organization.next_sync_at(now=timezone.now())
        return moment.astimezone(agent.zone).isoformat(timespec="seconds")


ME_EXAMPLE = {
    "id": 7,
    "email": "anna@cxone.demo",
    "name": "Anna de Vries",
    "language": "nl",
    "timezone": "Europe/Amsterdam",
    "organization": {
        "id": 1,
        "name": "Contoso Care (CXone)",
        "wfm_system": "cxone",
        "mfa_required": False,
    },
    "activated": True,
    "mfa_enrolled": False,
    "supervisor": {"name": "Sam Supervisor", "email": "sam@cxone.demo"},
    "skills": [{"id": 3, "name": "Dutch", "level": 2}],
    "sync_pending": False,
    "next_sync_at": "2026-12-02T02:00:00+01:00",
    "session_idle_timeout_minutes": 60,
}
