"""docs/wfm-export.schema.json against the examples in docs/wfm-export.md. The schema documents the
format; the sync's own row checks are tested with the sync. No database."""

import copy
import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

DOCS = Path(__file__).resolve().parents[2] / "docs"
SCHEMA = json.loads((DOCS / "wfm-export.schema.json").read_text(encoding="utf-8"))
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
# Every ```json block of the doc is a complete document (the doc says so).
EXAMPLES = [
    json.loads(block)
    for block in re.findall(
        r"^```json\n(.*?)^```$", (DOCS / "wfm-export.md").read_text(encoding="utf-8"), re.M | re.S
    )
]
ROSTERS = [example for example in EXAMPLES if "days" not in example]
SCHEDULES = [example for example in EXAMPLES if "days" in example]


def errors(document: object) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(document)]


def roster() -> dict:
    return copy.deepcopy(ROSTERS[0])


def schedules() -> dict:
    return copy.deepcopy(SCHEDULES[0])


def test_the_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_doc_has_a_roster_and_schedules_example():
    assert len(ROSTERS) == 1
    assert len(SCHEDULES) == 2  # schedules.json and an HTTP page
    assert any(page.get("next") for page in SCHEDULES)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: "schedules" if "days" in e else "roster")
def test_every_example_in_the_doc_is_valid(example):
    assert errors(example) == []


def test_the_examples_refer_to_what_the_roster_defines():
    # The schema cannot check references; a doc example must not show a row the sync would skip.
    teams = {team["external_id"] for team in ROSTERS[0]["teams"]}
    skills = {skill["external_id"] for skill in ROSTERS[0]["skills"]}
    codes = {code["code"] for code in ROSTERS[0]["activity_codes"]}
    agents = {agent["external_id"] for agent in ROSTERS[0]["agents"]}
    assert len(agents) == 2
    for agent in ROSTERS[0]["agents"]:
        assert agent["team"] is None or agent["team"] in teams
        assert {entry["skill"] for entry in agent["skills"]} <= skills
    days = SCHEDULES[0]["days"]
    assert len({day["date"] for day in days}) == 2
    assert len({(day["agent"], day["date"]) for day in days}) == len(days)
    for day in SCHEDULES[0]["days"] + SCHEDULES[1]["days"]:
        assert day["agent"] in agents
        assert {activity["code"] for activity in day["activities"]} <= codes
    time_off = {code["code"] for code in ROSTERS[0]["activity_codes"] if code["open_for_time_off"]}
    balances = ROSTERS[0]["time_off_balances"]
    assert balances and all(row["agent"] in agents and row["code"] in time_off for row in balances)
    staffing = ROSTERS[0]["staffing"]
    assert {row["team"] for row in staffing} == {*teams, None}
    # The example's spring-forward Sunday lists no start the clocks skip in Amsterdam.
    assert not any(row["date"] == "2026-03-29" and row["start"][:2] == "02" for row in staffing)
    assert len({(row["team"], row["date"], row["start"]) for row in staffing}) == len(staffing)


def test_the_time_off_sections_are_optional():
    document = roster()
    del document["time_off_balances"], document["staffing"]
    assert errors(document) == []
    document["time_off_balances"] = document["staffing"] = []
    assert errors(document) == []
    document["staffing"] = {"team": None}
    assert errors(document)


@pytest.mark.parametrize("hours", [0, 200, 7.5, 7.33, -4.25, 10000, -10000, 9999.99])
def test_earned_hours_within_the_limits_with_2_decimals_are_valid(hours):
    document = roster()
    document["time_off_balances"][0]["earned_hours"] = hours
    assert errors(document) == []


@pytest.mark.parametrize("hours", [10000.01, -10000.5, 1.005, 0.001, "8", None, True])
def test_earned_hours_out_of_limits_or_with_more_decimals_are_refused(hours):
    document = roster()
    document["time_off_balances"][0]["earned_hours"] = hours
    assert errors(document)


@pytest.mark.parametrize("key", ["agent", "code", "earned_hours", "as_of"])
def test_a_balance_without_a_required_key_is_refused(key):
    document = roster()
    del document["time_off_balances"][0][key]
    assert errors(document)


@pytest.mark.parametrize(
    ("key", "value"),
    [("as_of", "2026-02-30"), ("as_of", "1 March"), ("code", ""), ("code", "X" * 41), ("agent", " ")],
)
def test_a_malformed_balance_value_is_refused(key, value):
    document = roster()
    document["time_off_balances"][0][key] = value
    assert errors(document)


@pytest.mark.parametrize("key", ["team", "date", "start", "minutes", "required", "scheduled"])
def test_a_staffing_row_without_a_required_key_is_refused(key):
    document = roster()
    del document["staffing"][0][key]
    assert errors(document)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("minutes", 45),
        ("minutes", "30"),
        ("minutes", 0),
        ("required", -1),
        ("required", 1.5),
        ("scheduled", 100001),
        ("scheduled", None),
        ("start", "24:00"),
        ("start", "9:00"),
        ("date", "2026-13-01"),
        ("team", ""),
        ("team", 7),
    ],
)
def test_a_malformed_staffing_value_is_refused(key, value):
    document = roster()
    document["staffing"][0][key] = value
    assert errors(document)


@pytest.mark.parametrize("minutes", [15, 30, 60])
def test_intervals_are_15_30_or_60_minutes_for_a_team_or_the_organisation(minutes):
    document = roster()
    document["staffing"][0]["minutes"] = minutes
    document["staffing"][1]["team"] = None
    document["staffing"][2]["required"] = document["staffing"][2]["scheduled"] = 0
    assert errors(document) == []


def test_unknown_keys_are_allowed_for_later_versions():
    document = roster()
    document["shift_bids"] = [{"agent": "A-1001", "pattern": "early"}]
    document["time_off_balances"][0]["remaining_hours"] = 40
    document["staffing"][0]["forecast_contacts"] = 120
    document["agents"][0]["employment_type"] = "part_time"
    document["activity_codes"][0]["icon"] = "phone"
    assert errors(document) == []
    document = schedules()
    document["staffing"] = [{"date": "2026-03-28", "interval": "09:00", "open": 2}]
    document["days"][0]["source_revision"] = 17
    document["days"][0]["activities"][0]["skill"] = "S-DUTCH"
    assert errors(document) == []


@pytest.mark.parametrize("color", ["#12345", "#1234567", "4A90D9", "#GGGGGG", "red", "", None])
def test_a_bad_colour_is_refused(color):
    document = roster()
    document["activity_codes"][0]["color"] = color
    assert errors(document)


@pytest.mark.parametrize("key", ["agent", "date", "published", "note", "activities"])
def test_a_day_without_a_required_key_is_refused(key):
    document = schedules()
    del document["days"][0][key]
    assert errors(document)


def test_a_roster_without_agents_is_refused():
    document = roster()
    del document["agents"]
    assert any("'agents' is a required property" in message for message in errors(document))


@pytest.mark.parametrize(
    "key", ["external_id", "name", "email", "timezone", "team", "supervisor_email", "skills"]
)
def test_an_agent_without_a_required_key_is_refused(key):
    document = roster()
    del document["agents"][1][key]
    assert errors(document)


def test_language_is_optional_and_closed():
    document = roster()
    assert "language" not in document["agents"][1]
    document["agents"][1]["language"] = "fr"
    assert errors(document)


@pytest.mark.parametrize("field", ["start", "end"])
@pytest.mark.parametrize("value", ["24:00", "9:00", "09:60", "09:00:00", "0900", "", 900])
def test_a_bad_time_is_refused(field, value):
    document = schedules()
    document["days"][0]["activities"][0][field] = value
    assert errors(document)


@pytest.mark.parametrize("value", ["2026-02-30", "2026-13-01", "28-03-2026", "2026-03-28T00:00:00Z"])
def test_a_bad_date_is_refused(value):
    document = schedules()
    document["days"][0]["date"] = value
    assert errors(document)


@pytest.mark.parametrize(
    "value", ["2026-03-27T02:00:05", "2026-03-27 02:00:05+01:00", "2026-03-27T02:00+01:00", "yesterday"]
)
def test_generated_at_needs_rfc_3339_with_an_offset(value):
    document = schedules()
    document["generated_at"] = value
    assert errors(document)


@pytest.mark.parametrize("value", ["2026-03-27T01:00:05Z", "2026-03-26T21:00:05.250-04:00"])
def test_generated_at_accepts_utc_and_other_offsets(value):
    document = roster()
    document["generated_at"] = value
    assert errors(document) == []


@pytest.mark.parametrize("email", ["anna", "anna@", "@example.com", "anna devries@example.com"])
def test_a_bad_email_is_refused(email):
    document = roster()
    document["agents"][0]["email"] = email
    assert errors(document)
    document = roster()
    document["agents"][0]["supervisor_email"] = email
    assert errors(document)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("version",), 2),
        (("format",), "something-else"),
        (("activity_codes", 0, "category"), "lunch"),
        (("activity_codes", 0, "code"), "X" * 41),
        (("activity_codes", 0, "code"), ""),
        (("activity_codes", 0, "paid"), "yes"),
        (("agents", 0, "skills", 0, "level"), 0),
        (("agents", 0, "skills", 0, "level"), 21),
        (("agents", 0, "skills", 0, "level"), 2.5),
        (("agents", 0, "timezone"), "Europe Amsterdam"),
        (("agents", 0, "external_id"), ""),
        (("agents", 0, "name"), "A" * 201),
        (("teams", 0, "external_id"), 7),
    ],
)
def test_a_malformed_roster_value_is_refused(path, value):
    document = roster()
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert errors(document)


def test_notes_are_limited_to_2000_characters():
    document = schedules()
    document["days"][0]["note"] = "x" * 2000
    document["days"][0]["activities"][0]["note"] = "x" * 2000
    assert errors(document) == []
    document["days"][0]["note"] = "x" * 2001
    assert errors(document)
    document = schedules()
    document["days"][0]["activities"][0]["note"] = "x" * 2001
    assert errors(document)


def test_next_is_a_url_or_null():
    page = copy.deepcopy(SCHEDULES[1])
    for value in (None, "/em-agent/schedules?page=2", "https://wfm.example.com/em-agent/schedules?page=2"):
        page["next"] = value
        assert errors(page) == []
    for value in ("", "next page", 2):
        page["next"] = value
        assert errors(page)


def test_a_day_has_at_most_100_activities():
    document = schedules()
    activity = document["days"][0]["activities"][0]
    document["days"][0]["activities"] = [activity] * 100
    assert errors(document) == []  # overlaps are the sync's to find
    document["days"][0]["activities"].append(activity)
    assert errors(document)


@pytest.mark.parametrize("value", ["", "   "])
def test_ids_and_names_are_not_blank(value):
    for path in (("teams", 0, "name"), ("skills", 0, "external_id"), ("agents", 0, "name")):
        document = roster()
        section, index, key = path
        document[section][index][key] = value
        assert errors(document)
    document = schedules()
    document["days"][0]["agent"] = value
    assert errors(document)
