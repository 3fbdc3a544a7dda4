"""A row of any app pointing at an activity (a time-off day, a swap offer: here a model made for the
test, as timeoff and swaps will declare theirs) never breaks the commit of a schedule change that
removes the activity: the schedule service's raw DELETE clears every foreign key to Activity first,
found in the model registry, and a system check refuses a reference it could not clear."""

import datetime as dt
from contextlib import contextmanager

import pytest
import time_machine
from django.apps import apps
from django.db import connection, models

from schedules.models import Activity, ScheduleRequest, _activity_references_are_set_null, activity_references
from tests.schedules.factories import shift

DAY = dt.date(2026, 12, 3)


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel("2026-12-01 08:00:00 +00:00", tick=False):
        yield


@contextmanager
def _referrer(name: str, *, on_delete=models.SET_NULL, table: bool = True):
    """A model of some other app pointing at Activity, with a hidden reverse relation (related_name
    "+": the registry's default list of relations leaves those out), its table created for the
    test and the model taken out of the registry afterwards."""
    meta = type("Meta", (), {"app_label": "schedules", "db_table": f"test_{name.lower()}"})
    model = type(
        name,
        (models.Model,),
        {
            "__module__": __name__,
            "activity": models.ForeignKey(Activity, on_delete=on_delete, null=True, related_name="+"),
            "Meta": meta,
        },
    )
    try:
        if table:
            with connection.schema_editor() as editor:
                editor.create_model(model)
        yield model
    finally:
        if table:
            with connection.schema_editor() as editor:
                editor.delete_model(model)
        del apps.all_models["schedules"][name.lower()]
        apps.clear_cache()


def test_every_foreign_key_to_an_activity_is_found_and_set_null():
    assert ScheduleRequest._meta.get_field("activity") in activity_references()
    assert _activity_references_are_set_null() == []


@pytest.mark.django_db(transaction=True)  # the foreign key is checked at COMMIT: commit for real
def test_a_row_of_another_app_pointing_at_a_removed_activity_loses_the_link_and_the_change_commits(agent):
    shift(agent, DAY, ("PHONE", "09:00", "12:00"), ("LUNCH", "12:00", "12:30"), ("PHONE", "12:30", "17:00"))
    morning, lunch, afternoon = Activity.objects.filter(agent=agent).order_by("start")
    with _referrer("TimeOffDayPin") as Pin:
        to_lunch, to_afternoon = Pin.objects.create(activity=lunch), Pin.objects.create(activity=afternoon)

        # The WFM moves lunch: its row goes, the afternoon's stays (same code and times).
        shift(
            agent, DAY, ("PHONE", "09:00", "12:30"), ("LUNCH", "12:30", "13:00"), ("PHONE", "13:00", "17:00")
        )

        assert not Activity.objects.filter(pk=lunch.pk).exists()
        to_lunch.refresh_from_db()
        to_afternoon.refresh_from_db()
        assert to_lunch.activity_id is None
        assert to_afternoon.activity_id is None  # its times changed: a new row (no id named)
        assert Activity.objects.filter(pk=morning.pk).exists() is False


@pytest.mark.django_db(transaction=True)
def test_a_row_pointing_at_a_kept_activity_keeps_pointing_at_it(agent):
    shift(agent, DAY, ("PHONE", "09:00", "12:00"), ("LUNCH", "12:00", "12:30"))
    morning = Activity.objects.get(agent=agent, activity_code__code="PHONE")
    with _referrer("SwapOfferPin") as Pin:
        pin = Pin.objects.create(activity=morning)
        shift(agent, DAY, ("PHONE", "09:00", "12:00"))  # lunch goes, the morning stays
        pin.refresh_from_db()
        assert pin.activity_id == morning.pk


def test_a_reference_that_would_block_or_cascade_is_a_system_check_error(db):
    with _referrer("ProtectedPin", on_delete=models.PROTECT, table=False):
        (error,) = _activity_references_are_set_null()
    assert error.id == "schedules.E001"
    assert "schedules.ProtectedPin.activity" in error.msg and "PROTECT" in error.msg
    assert _activity_references_are_set_null() == []  # gone with the model
