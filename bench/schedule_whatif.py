"""What-if: the project's WSGI application with a proposed change patched in, for the benchmark only.

    .venv/bin/python bench/schedule_api.py --whatif usercache

`schedule_api.py --whatif ...` starts gunicorn with `bench.schedule_whatif:application` instead of
`em_agent.wsgi:application` and passes the list in BENCH_WHATIF. Nothing in the project's files
changes; this measures what a change would buy before anyone makes it.

  usercache
        the session's user (which the project's backend loads with its agent and organisation) is
        kept in the worker for 10 s by user id. The session itself is still read from Redis on
        every request, so a logout or a deactivation (which ends the sessions) still applies at
        once; a change to the user, agent or organisation row (language, zone, MFA rule) applies up
        to 10 s late. NOT the same semantics in that respect: a measure of what the database round
        trip costs.

The patch goes on the classes that `AUTHENTICATION_BACKENDS` names, the ones Django loads a
session's backend from (`django.contrib.auth.get_user` -> `load_backend(path).get_user`), and it is
checked there: a patch on a base class that the project's backend overrides would measure the
unpatched code. `join` and `idle` (one query for the user, agent and organisation; the idle timeout
kept in the worker) were measured here and are the project's own code since 2026-11-26
(em_agent/backends.py, em_agent/sessions.py), so they are gone.
"""

from __future__ import annotations

import os
import time

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "em_agent.settings")
application = get_wsgi_application()

USER_SECONDS = 10.0


def parse(value: str) -> set[str]:
    changes = {name.strip() for name in value.split(",") if name.strip()}
    unknown = changes - PATCHES.keys()
    if unknown:
        raise SystemExit(f"BENCH_WHATIF: unknown change(s) {sorted(unknown)}; known: {sorted(PATCHES)}")
    return changes


def _patch_usercache() -> None:
    from django.conf import settings
    from django.contrib.auth import load_backend
    from django.utils.module_loading import import_string

    for path in settings.AUTHENTICATION_BACKENDS:
        backend = import_string(path)
        load = backend.get_user  # the class's own (or inherited) loader, joins included
        kept: dict[object, tuple[object, float]] = {}

        def get_user(self, user_id, *, load=load, kept=kept):
            now = time.monotonic()
            value = kept.get(user_id)
            if value is None or value[1] <= now:
                value = (load(self, user_id), now + USER_SECONDS)
                kept[user_id] = value
            return value[0]

        backend.get_user = get_user
        if load_backend(path).get_user.__func__ is not get_user:
            raise SystemExit(f"usercache: {path}.get_user is not the patched one")


PATCHES = {"usercache": _patch_usercache}


def apply(changes: set[str]) -> None:
    for name in sorted(changes):
        PATCHES[name]()


apply(parse(os.environ.get("BENCH_WHATIF", "")))
