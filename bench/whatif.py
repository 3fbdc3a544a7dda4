"""What-if: the Celery app of the project with proposed changes patched in, for the benchmark only.

    .venv/bin/python bench/fanout.py --whatif pool32

`fanout.py --whatif ...` starts its workers with `celery -A bench.whatif` instead of `-A em_agent`
and passes the list in BENCH_WHATIF (`profile_batch.py --whatif` applies it in its own process).
Nothing in the project's files changes; this measures what a change would buy before anyone makes
it. Each change keeps the project's semantics:

  pool32    FcmGateway._send_chunk sends with `messaging.send` from a pool of 32 threads kept for
            the process, instead of `send_each`, which starts 500 threads per chunk.
  chunk<N>  FcmGateway sends `send_each` calls of at most N messages (N threads each) instead of 500.
  switch<N> the GIL's switch interval is N milliseconds (CPython's default is 5).

`record` (outcomes as one UPDATE per distinct outcome) and `trustenv` (the push session reads the
proxy settings once) were measured here and are the project's own code since 2026-11-26
(notifications/delivery.py `_record`, notifications/push.py `FcmGateway.__init__`), so they are gone.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "em_agent.settings")
django.setup()

from em_agent.celery import app  # noqa: E402


def parse(value: str) -> set[str]:
    changes = {name.strip() for name in value.split(",") if name.strip()}
    unknown = {
        name
        for name in changes
        if name != "pool32"
        and not any(name.startswith(p) and name[len(p) :].isdigit() for p in ("chunk", "switch"))
    }
    if unknown:
        raise SystemExit(
            f"BENCH_WHATIF: unknown changes {sorted(unknown)}; known: pool32, chunk<N>, switch<N>"
        )
    return changes


def _patch_pool32() -> None:
    from firebase_admin import exceptions, messaging

    from notifications import push

    pool: dict[int, concurrent.futures.ThreadPoolExecutor] = {}

    def _send_one(gateway, message, fcm) -> push.PushResult:
        try:
            name = messaging.send(fcm, app=gateway.app)
        except exceptions.FirebaseError as exc:
            return push._result_for_error(message.token, exc)
        except ValueError as exc:
            return push.PushResult(message.token, push.PushOutcome.FAILED, error=f"invalid message: {exc}")
        return push.PushResult(message.token, push.PushOutcome.SENT, message_id=name)

    def _send_chunk(self, chunk, fcm_messages):
        executor = pool.get(os.getpid())
        if executor is None:
            executor = pool[os.getpid()] = concurrent.futures.ThreadPoolExecutor(32, "fcm")
        return list(executor.map(lambda pair: _send_one(self, *pair), zip(chunk, fcm_messages, strict=True)))

    push.FcmGateway._send_chunk = _send_chunk


def _patch_chunk(size: int) -> None:
    from notifications import push

    init = push.FcmGateway.__init__

    def __init__(self, app, *, send_url=None, chunk_size=push.MAX_CHUNK):
        init(self, app, send_url=send_url, chunk_size=size)

    push.FcmGateway.__init__ = __init__


def apply(changes: set[str]) -> None:
    for name in sorted(changes):
        if name == "pool32":
            _patch_pool32()
        elif name.startswith("chunk"):
            _patch_chunk(int(name[5:]))
        elif name.startswith("switch"):
            sys.setswitchinterval(int(name[6:]) / 1000)


CHANGES = parse(os.environ.get("BENCH_WHATIF", ""))
apply(CHANGES)

__all__ = ["app"]
