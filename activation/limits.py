"""Failed-attempt limits for activation, as exact counters in the database.

An attempt is counted *before* the code is checked and given back on success, so concurrent guesses
cannot all slip under the limit (check-then-act would let them). Each counter row is updated under a
row lock; a window opens with the first attempt and lasts ACTIVATION_FAILURE_WINDOW_SECONDS.
"""

import datetime as dt
import math

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from activation.models import AttemptCounter


def _keys(*, agent_id: int, address: str | None) -> list[tuple[str, int]]:
    keys = [(f"agent:{agent_id}", settings.ACTIVATION_MAX_FAILURES_PER_AGENT)]
    if address:
        keys.append((f"address:{address}", settings.ACTIVATION_MAX_FAILURES_PER_ADDRESS))
    return keys


def _locked_counter(key: str, now: dt.datetime) -> AttemptCounter:
    try:
        with transaction.atomic():
            return AttemptCounter.objects.select_for_update().get_or_create(
                key=key, defaults={"window_started_at": now, "count": 0}
            )[0]
    except IntegrityError:  # created by a concurrent attempt between our look-up and insert
        return AttemptCounter.objects.select_for_update().get(key=key)


@transaction.atomic
def reserve_attempt(*, agent_id: int, address: str | None) -> int | None:
    """Counts one attempt against every counter, or none if any is already at its limit: then the
    seconds to wait. A refused attempt counts nowhere, so one agent's retries cannot lock out the
    colleagues who share its address."""
    now = timezone.now()
    window = dt.timedelta(seconds=settings.ACTIVATION_FAILURE_WINDOW_SECONDS)
    # A fixed key order, so two attempts never wait on each other's locks in opposite order.
    counters = [
        (_locked_counter(key, now), limit) for key, limit in sorted(_keys(agent_id=agent_id, address=address))
    ]
    waits = []
    for counter, limit in counters:
        if now >= counter.window_started_at + window:
            counter.window_started_at, counter.count = now, 0
        if counter.count >= limit:
            waits.append(max(1, math.ceil((counter.window_started_at + window - now).total_seconds())))
    if waits:
        return max(waits)
    for counter, _limit in counters:
        counter.count += 1
        counter.save(update_fields=["window_started_at", "count"])
    return None


@transaction.atomic
def release_attempt(*, agent_id: int, address: str | None) -> None:
    """A successful attempt is not a failure: give it back."""
    # Row by row in the same order as reserve_attempt: one UPDATE ... WHERE key IN (...) locks rows
    # in physical order and deadlocked against a concurrent reservation (seen in the race tests).
    for key, _limit in sorted(_keys(agent_id=agent_id, address=address)):
        AttemptCounter.objects.filter(key=key, count__gt=0).update(count=F("count") - 1)
