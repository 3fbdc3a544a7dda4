"""Every text an agent or supervisor reads exists in Dutch too."""

import re
from pathlib import Path

import pytest

CATALOGUE = Path(__file__).resolve().parents[1] / "locale" / "nl" / "LC_MESSAGES" / "django.po"


def _entries() -> list[str]:
    return [block for block in CATALOGUE.read_text().split("\n\n") if "msgid" in block]


def test_the_dutch_catalogue_has_no_missing_or_fuzzy_entries():
    missing = []
    for block in _entries()[1:]:  # the first is the header
        if block.lstrip().startswith("#~"):
            continue  # obsolete
        msgid = re.search(r'^msgid "(.*)"', block, re.M).group(1)
        translations = re.findall(r'^msgstr(?:\[\d\])? "(.*)"((?:\n".*")*)', block, re.M)
        empty = not translations or any(
            not (first + rest).replace('"', "").strip() for first, rest in translations
        )
        if empty or "#, fuzzy" in block:
            missing.append(msgid or block.splitlines()[-1])
    assert missing == []


@pytest.mark.django_db
def test_a_dutch_agent_reads_dutch(logged_in, new_agent):
    new_agent.language = "nl"
    new_agent.save()

    response = logged_in(new_agent).post("/api/v1/activation", {"code": "AAAAA-BBBBB"})

    assert response.json()["detail"].startswith("Deze activeringscode")
