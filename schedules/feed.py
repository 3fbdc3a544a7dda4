"""The personal calendar feed: a revocable iCalendar URL that phone calendars subscribe to.

The URL carries a random token of its own, never the session: a calendar app keeps it for months and
sends it without any login. The token is stored as a SHA-256 hash (to find the feed) and encrypted
(to show the agent the same URL again); deleting the row revokes it."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from icalendar import Calendar, Event, vDuration

from em_agent.models import Agent
from schedules.models import Activity, ActivityCategory, CalendarFeed

# Six weeks from today (the agent's local date), today included.
FEED_DAYS = 42
# How often calendar apps should fetch again (REFRESH-INTERVAL, X-PUBLISHED-TTL).
REFRESH_INTERVAL = dt.timedelta(hours=1)
# last_used_at is for the admin ("is this URL still in use?"): an hour is precise enough, and a
# calendar app polling every few minutes must not turn every fetch into a write.
LAST_USED_WRITE_INTERVAL = dt.timedelta(hours=1)
# token_urlsafe(32) is 43 characters; anything much longer is not one of ours and is not hashed.
_MAX_TOKEN_LENGTH = 64


def _fernet() -> Fernet:
    # Its own key (a different prefix from the MFA secrets'), so one key's ciphertext is useless to the other.
    digest = hashlib.sha256(("calendar-feed:" + settings.SECRET_KEY).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_token() -> tuple[str, dict[str, str]]:
    token = secrets.token_urlsafe(32)
    fields = {
        "token_hash": _digest(token),
        "token_encrypted": _fernet().encrypt(token.encode()).decode(),
    }
    return token, fields


def calendar_feed_token(*, feed: CalendarFeed) -> str | None:
    """The feed's token in clear, or None when it cannot be decrypted (SECRET_KEY has changed)."""
    try:
        return _fernet().decrypt(feed.token_encrypted.encode()).decode()
    except InvalidToken:
        return None


@transaction.atomic
def calendar_feed_rotate(*, agent: Agent) -> tuple[CalendarFeed, str]:
    """A new token for the agent's feed (created if it has none): the old URL stops working at once."""
    token, fields = _new_token()
    feed, _created = CalendarFeed.objects.update_or_create(
        agent=agent, defaults={**fields, "created_at": timezone.now(), "last_used_at": None}
    )
    return feed, token


def calendar_feed_get_or_create(*, agent: Agent) -> tuple[CalendarFeed, str]:
    """The agent's feed and its token: the same on every call until it is rotated or revoked."""
    feed = CalendarFeed.objects.filter(agent=agent).first()
    if feed is None:
        token, fields = _new_token()
        try:
            with transaction.atomic():
                feed = CalendarFeed.objects.create(agent=agent, created_at=timezone.now(), **fields)
            return feed, token
        except IntegrityError:
            # The app asked twice at once and the other request created it: show that one.
            feed = CalendarFeed.objects.get(agent=agent)
    token_in_clear = calendar_feed_token(feed=feed)
    if token_in_clear is None:
        # Encrypted under an old SECRET_KEY: the URL cannot be shown again, so it is replaced.
        return calendar_feed_rotate(agent=agent)
    return feed, token_in_clear


def calendar_feed_revoke(*, agent: Agent) -> bool:
    """Revokes the agent's feed URL; False when there was none."""
    deleted, _by_model = CalendarFeed.objects.filter(agent=agent).delete()
    return deleted > 0


def calendar_feed_for_token(*, token: str) -> CalendarFeed | None:
    """The feed of a token, or None for an unknown or revoked token or an agent who may not use the
    app (login disabled or not activated): one answer for all, so the caller cannot tell them apart.

    Looked up by the token's hash: the database compares hashes, so the time it takes says nothing
    about the token."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    return (
        CalendarFeed.objects.select_related("agent")
        .filter(
            token_hash=_digest(token),
            agent__user__is_active=True,
            agent__activated_at__isnull=False,
        )
        .first()
    )


def calendar_feed_mark_used(*, feed: CalendarFeed, now: dt.datetime) -> None:
    """Records the fetch, at most once per LAST_USED_WRITE_INTERVAL."""
    stale = now - LAST_USED_WRITE_INTERVAL
    if feed.last_used_at is not None and feed.last_used_at > stale:
        return
    # Conditional, so a burst of fetches from several devices writes once.
    CalendarFeed.objects.filter(pk=feed.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
    feed.last_used_at = now


def calendar_feed_window(*, agent: Agent, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The feed's local dates: from today to FEED_DAYS later, the end excluded."""
    today = now.astimezone(agent.zone).date()
    return today, today + dt.timedelta(days=FEED_DAYS)


def calendar_feed_ics(*, feed: CalendarFeed, now: dt.datetime) -> bytes:
    """The iCalendar of the agent's published activities in the next six weeks: one query.

    Times are UTC (the calendar app shows them in the phone's zone); UIDs are stable, so an app
    updates an activity that moved instead of adding a second one."""
    agent = feed.agent
    first, end = calendar_feed_window(agent=agent, now=now)
    rows = (
        Activity.objects.of_agent(agent.pk)
        .filter(day__date__gte=first, day__date__lt=end, day__published=True)
        .order_by("start", "id")
        .values_list("id", "start", "end", "note", "activity_code__name", "activity_code__category")
    )
    stamp = now.astimezone(dt.UTC).replace(microsecond=0)
    with translation.override(agent.language):
        calendar = Calendar()
        calendar.add("PRODID", "-//EM Agent//Calendar feed//EN")
        calendar.add("VERSION", "2.0")
        calendar.add("CALSCALE", "GREGORIAN")
        calendar.add("X-WR-CALNAME", _("Work schedule – %(name)s") % {"name": agent.name})
        calendar.add("REFRESH-INTERVAL", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
        calendar.add("X-PUBLISHED-TTL", vDuration(REFRESH_INTERVAL))
        for pk, begins, ends, note, name, category in rows:
            event = Event.new(
                uid=f"activity-{pk}@em-agent",
                stamp=stamp,
                start=begins.astimezone(dt.UTC),
                end=ends.astimezone(dt.UTC),
                summary=name,
                description=note or None,
                categories=[_category_label(category)],
            )
            calendar.add_component(event)
        return calendar.to_ical()


def _category_label(category: str) -> str:
    try:
        return str(ActivityCategory(category).label)
    except ValueError:
        return category
