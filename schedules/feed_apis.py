"""The personal calendar feed: the agent API that hands out its URL, and the public feed itself."""

import datetime as dt

from allauth.account.adapter import get_adapter as get_account_adapter
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from em_agent.api.docs import error_responses
from em_agent.api.exceptions import json_error_response
from em_agent.api.views import AgentAPIView
from schedules.feed import (
    calendar_feed_for_token,
    calendar_feed_get_or_create,
    calendar_feed_ics,
    calendar_feed_mark_used,
    calendar_feed_revoke,
    calendar_feed_rotate,
)
from schedules.models import CalendarFeed

# Fetches of /calendar/<token>.ics per client address and minute. Calendar apps poll a few times an
# hour; a contact centre's agents may share one public address, so this is far above their need and
# far below what guessing tokens would take.
FEED_RATE_LIMIT = 60
FEED_RATE_WINDOW_SECONDS = 60


class FeedUrlOutput(serializers.Serializer):
    url = serializers.URLField(help_text="The feed: subscribe to it in a calendar app. Keep it private.")
    webcal_url = serializers.CharField(
        help_text="The same feed as a `webcal://` link, which opens the phone's subscribe dialog."
    )
    created_at = serializers.DateTimeField(help_text="When this URL was made; in the agent's time zone.")


FEED_URL_EXAMPLE = {
    "url": "https://em-agent.example.com/calendar/q8Lr2Zk1n0Xc4V9bT7yH3mWfA5sD6gJ0pE2uR8iO1kQ.ics",
    "webcal_url": "webcal://em-agent.example.com/calendar/q8Lr2Zk1n0Xc4V9bT7yH3mWfA5sD6gJ0pE2uR8iO1kQ.ics",
    "created_at": "2026-12-01T09:00:00+01:00",
}

_FEED_DESCRIPTION = (
    "The feed (`text/calendar`) holds the published activities of the next 6 weeks, times in UTC; "
    "calendar apps are asked to refresh it hourly. It needs no session: the random token in the URL "
    "is the key, so the app shows it only to its agent. An unknown, revoked or deactivated agent's URL "
    "answers 404; more than 60 fetches a minute from one address answer 429 with `Retry-After`."
)


def _output(request, feed: CalendarFeed, token: str) -> dict:
    url = request.build_absolute_uri(reverse("calendar-feed", kwargs={"token": token}))
    return FeedUrlOutput(
        {
            "url": url,
            "webcal_url": "webcal://" + url.split("://", 1)[1],
            "created_at": feed.created_at,
        }
    ).data


def _no_store(response: Response) -> Response:
    # The body is a bearer secret: no cache on the way may keep it.
    response["Cache-Control"] = "no-store"
    return response


class FeedUrlApi(AgentAPIView):
    """The agent's personal calendar feed URL: get it (made on first use), replace it, revoke it."""

    @extend_schema(
        operation_id="schedule_feed_url",
        summary="The personal calendar feed URL (made on the first call)",
        description="The same URL on every call until it is replaced or revoked. " + _FEED_DESCRIPTION,
        responses={
            200: FeedUrlOutput,
            **error_responses("activation_required", "mfa_enrollment_required"),
        },
        examples=[OpenApiExample("Feed", value=FEED_URL_EXAMPLE, response_only=True)],
        tags=["schedule"],
    )
    def get(self, request):
        feed, token = calendar_feed_get_or_create(agent=self.agent)
        return _no_store(Response(_output(request, feed, token)))

    @extend_schema(
        operation_id="schedule_feed_url_replace",
        summary="Replace the calendar feed URL",
        description="A new URL; the old one answers 404 from now on. " + _FEED_DESCRIPTION,
        request=None,
        responses={
            201: FeedUrlOutput,
            **error_responses("activation_required", "mfa_enrollment_required"),
        },
        examples=[
            OpenApiExample("New feed", value=FEED_URL_EXAMPLE, response_only=True, status_codes=["201"])
        ],
        tags=["schedule"],
    )
    def post(self, request):
        feed, token = calendar_feed_rotate(agent=self.agent)
        return _no_store(Response(_output(request, feed, token), status=status.HTTP_201_CREATED))

    @extend_schema(
        operation_id="schedule_feed_url_revoke",
        summary="Revoke the calendar feed URL",
        description="The URL answers 404 from now on; 204 also when there was none.",
        responses={204: None, **error_responses("activation_required", "mfa_enrollment_required")},
        tags=["schedule"],
    )
    def delete(self, request):
        calendar_feed_revoke(agent=self.agent)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _throttle_wait(*, address: str, now: dt.datetime) -> int | None:
    """Counts this fetch in the address's current minute; the seconds to wait when over the limit."""
    epoch = int(now.timestamp())
    window = epoch // FEED_RATE_WINDOW_SECONDS
    key = f"calendar-feed:hits:{address}:{window}"
    cache.add(key, 0, timeout=FEED_RATE_WINDOW_SECONDS * 2)
    try:
        hits = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=FEED_RATE_WINDOW_SECONDS * 2)
        hits = 1
    if hits <= FEED_RATE_LIMIT:
        return None
    return FEED_RATE_WINDOW_SECONDS - epoch % FEED_RATE_WINDOW_SECONDS


@csrf_exempt  # no cookies, no state: a POST is simply 405
@require_safe
def calendar_feed_view(request: HttpRequest, token: str) -> HttpResponse:
    """The public feed. No session: the token is the key. One 404 for every reason it is refused."""
    now = timezone.now()
    wait = _throttle_wait(address=get_account_adapter(request).get_client_ip(request), now=now)
    if wait is not None:
        refused = json_error_response(
            request,
            code="throttled",
            detail=_("Too many requests. Try again in a minute."),
            status_code=429,
        )
        refused["Retry-After"] = str(wait)
        return refused
    feed = calendar_feed_for_token(token=token)
    if feed is None:
        return json_error_response(request, code="not_found", detail=_("Not found."), status_code=404)
    body = calendar_feed_ics(feed=feed, now=now)
    calendar_feed_mark_used(feed=feed, now=now)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    response["Content-Disposition"] = 'inline; filename="schedule.ics"'
    return response
