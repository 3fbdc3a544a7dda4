import pytest
import time_machine

from tests.factories import AgentSkillFactory

pytestmark = pytest.mark.django_db


def test_me_shows_the_agent_as_the_app_routes_on_it(logged_in, agent, supervisor):
    AgentSkillFactory(agent=agent, skill__name="Dutch", level=3)
    agent.language = "nl"
    agent.save()
    with time_machine.travel("2026-12-01 09:00:00 +00:00", tick=False):
        body = logged_in(agent).get("/api/v1/me").json()

    assert body["id"] == agent.id
    assert body["email"] == "alice@contoso.test"
    assert body["name"] == "Alice"
    assert body["language"] == "nl"
    assert body["timezone"] == "Europe/Amsterdam"
    assert body["organization"] == {
        "id": agent.organization.id,
        "name": "Contoso",
        "wfm_system": "cxone",
        "mfa_required": False,
    }
    assert body["activated"] is True
    assert body["mfa_enrolled"] is False
    assert body["supervisor"] == {"name": "Sam Jansen", "email": "sam@contoso.test"}
    assert body["skills"] == [{"id": agent.agent_skills.get().skill_id, "name": "Dutch", "level": 3}]
    assert body["session_idle_timeout_minutes"] == 60
    # The next nightly sync (02:00 in the organisation's zone), in the agent's own zone.
    assert body["next_sync_at"] == "2026-12-02T02:00:00+01:00"


def test_next_sync_at_crosses_a_dst_change_correctly(logged_in, agent):
    # 2027-03-28 is the night Europe/Amsterdam moves to summer time (at 02:00, which then does not exist).
    with time_machine.travel("2027-03-27 12:00:00 +00:00", tick=False):
        body = logged_in(agent).get("/api/v1/me").json()

    assert body["next_sync_at"] == "2027-03-28T03:00:00+02:00"


def test_sync_pending_until_the_nightly_sync_has_run(logged_in, agent):
    agent.last_synced_at = None
    agent.save()

    assert logged_in(agent).get("/api/v1/me").json()["sync_pending"] is True


def test_me_has_no_supervisor_when_none_is_set(logged_in, agent):
    agent.supervisor = None
    agent.save()

    assert logged_in(agent).get("/api/v1/me").json()["supervisor"] is None


def test_me_is_cheap(logged_in, agent, django_assert_max_num_queries):
    client = logged_in(agent)
    with django_assert_max_num_queries(6):
        assert client.get("/api/v1/me").status_code == 200


def test_me_is_read_only(logged_in, agent):
    response = logged_in(agent).post("/api/v1/me", {"name": "Mallory"})

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_an_agent_cannot_hang_off_another_organisations_team_or_supervisor(agent, other_org):
    from django.core.exceptions import ValidationError

    from tests.factories import SupervisorFactory, TeamFactory

    agent.team = TeamFactory(organization=other_org)
    agent.supervisor = SupervisorFactory(organization=other_org)
    with pytest.raises(ValidationError) as refused:
        agent.full_clean()

    assert set(refused.value.message_dict) == {"team", "supervisor"}


def test_a_skill_of_another_organisation_is_refused(agent, other_org):
    from django.core.exceptions import ValidationError

    from em_agent.models import AgentSkill
    from tests.factories import SkillFactory

    with pytest.raises(ValidationError):
        AgentSkill(agent=agent, skill=SkillFactory(organization=other_org), level=1).full_clean()
