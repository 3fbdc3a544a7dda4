"""What tells the swaps app that a day under a live swap changed: the schedule service's
schedule_days_changed (a sync, a schedule request, time off, another swap) and a time-off request
filed (pending time off changes no day, yet blocks a swap; what happens to it later either changes
the day, which the schedule service tells, or takes the block away, which breaks no swap). Each only queues the re-check of the
swaps concerned, after the writer's commit; the minute task swaps.recheck is the net for a lost one."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Sequence

from django.db import transaction

from swaps.services import swaps_on_days

logger = logging.getLogger(__name__)


def _queue_recheck(keys: Sequence[tuple[int, dt.date]]) -> None:
    from swaps.tasks import recheck_swaps_by_id

    ids = swaps_on_days(keys=keys)
    if not ids:
        return
    try:
        recheck_swaps_by_id.delay(ids)
    except Exception:  # a broker outage: the periodic re-check picks these up within minutes
        logger.warning("could not queue the re-check of swaps %s", ids, exc_info=True)


def on_schedule_days_changed(sender, *, keys: Sequence[tuple[int, dt.date]], **kwargs) -> None:
    _queue_recheck(keys)  # already after the commit (schedules.services)


def on_time_off_saved(sender, *, instance, created: bool, **kwargs) -> None:
    if not created:
        return
    days = (instance.end_date - instance.start_date).days + 1
    keys = [(instance.agent_id, instance.start_date + dt.timedelta(days=n)) for n in range(days)]
    # After the commit: the request's days (TimeOffDay) are written after the request itself. Also
    # when it was approved at once: its days off are not rewritten, so no schedule signal covers them.
    transaction.on_commit(functools.partial(_queue_recheck, keys))
