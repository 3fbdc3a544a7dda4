"""What-if: the project's WSGI application with proposed changes patched in, for the benchmark only.

    .venv/bin/python bench/schedule_api.py --whatif join,idle

`schedule_api.py --whatif ...` starts gunicorn with `bench.schedule_whatif:application` instead of
`em_agent.wsgi:application` and passes the list in BENCH_WHATIF. Nothing in the project's files
changes; this measures what a change would buy before anyone makes it. Each keeps the semantics:

  join  the session's user is loaded with its agent and organisation in one query
        (`select_related("agent__organization")` in the auth backend's `get_user`), instead of three
        per request: the user (authentication), its agent (the locale) and the organisation (the MFA
        permission). Users without an agent get a LEFT JOIN's nothing, as before.
  idle  the organisation's idle timeout is kept in the worker for the 60 s it is cached anyway,
        instead of a Redis GET on every request (sessions.idle_timeout_minutes).
  usercache
        the session's user (with `join`: and its agent and organisation) is kept in the worker for
        10 s by user id. The session itself is still read from Redis on every request, so a logout
        or a deactivation (which ends the sessions) still applies at once; a change to the user,
        agent or organisation row (language, zone, MFA rule) applies up to 10 s late. NOT the same
        semantics in that respect: a measure of what the database round trip costs.
"""

from __future__ import annotations

import os
import time

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "em_agent.settings")
application = get_wsgi_application()

CHANGES = {name.strip() for name in os.environ.get("BENCH_WHATIF", "").split(",") if name.strip()}


def _patch_join() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.backends import ModelBackend

    users = get_user_model()._default_manager

    def get_user(self, user_id):
        user = users.select_related("agent__organization").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None

    ModelBackend.get_user = get_user  # allauth's backend inherits it; sessions name ModelBackend


def _patch_idle() -> None:
    from em_agent import sessions

    original = sessions.idle_timeout_minutes
    kept: dict[int | None, tuple[int, float]] = {}

    def idle_timeout_minutes(*, organization_id: int | None) -> int:
        now = time.monotonic()
        value = kept.get(organization_id)
        if value is None or value[1] <= now:
            value = (original(organization_id=organization_id), now + sessions._ORG_TIMEOUT_CACHE_SECONDS)
            kept[organization_id] = value
        return value[0]

    sessions.idle_timeout_minutes = idle_timeout_minutes


def _patch_usercache() -> None:
    from django.contrib.auth.backends import ModelBackend

    load = ModelBackend.get_user
    kept: dict[object, tuple[object, float]] = {}

    def get_user(self, user_id):
        now = time.monotonic()
        value = kept.get(user_id)
        if value is None or value[1] <= now:
            value = (load(self, user_id), now + 10)
            kept[user_id] = value
        return value[0]

    ModelBackend.get_user = get_user


# Applied in this order: usercache keeps what join loads.
PATCHES = {"idle": _patch_idle, "join": _patch_join, "usercache": _patch_usercache}
unknown = CHANGES - PATCHES.keys()
if unknown:
    raise SystemExit(f"BENCH_WHATIF: unknown change(s) {sorted(unknown)}; known: {sorted(PATCHES)}")
for name, patch in PATCHES.items():
    if name in CHANGES:
        patch()
