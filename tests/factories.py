import factory
from django.utils.timezone import now as utc_now

from em_agent.models import Agent, AgentSkill, Organization, Skill, Team, User, WfmSystem

PASSWORD = "correct-horse-battery"


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organisation {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")
    wfm_system = WfmSystem.CXONE
    default_timezone = "Europe/Amsterdam"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class SupervisorFactory(UserFactory):
    is_staff = True
    organization = factory.SubFactory(OrganizationFactory)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    external_id = factory.Sequence(lambda n: f"T{n}")
    name = factory.Sequence(lambda n: f"Team {n}")


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    external_id = factory.Sequence(lambda n: f"EXT-{n}")
    name = factory.Sequence(lambda n: f"Agent {n}")
    timezone = factory.LazyAttribute(lambda agent: agent.organization.default_timezone)
    language = "en"
    activated_at = factory.LazyFunction(utc_now)


class SkillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Skill

    organization = factory.SubFactory(OrganizationFactory)
    external_id = factory.Sequence(lambda n: f"S{n}")
    name = factory.Sequence(lambda n: f"Skill {n}")


class AgentSkillFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AgentSkill

    agent = factory.SubFactory(AgentFactory)
    skill = factory.SubFactory(SkillFactory, organization=factory.SelfAttribute("..agent.organization"))
    level = 2
