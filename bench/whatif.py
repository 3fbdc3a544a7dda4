"""What-if: the Celery app of the project with proposed changes patched in, for the benchmark only.

    .venv/bin/python bench/fanout.py --whatif record,trustenv,pool32

`fanout.py --whatif ...` starts its workers with `celery -A bench.whatif` instead of `-A em_agent`
and passes the list in BENCH_WHATIF. Nothing in the project's files changes; this measures what a
change would buy before anyone makes it. Each change keeps the project's semantics:

  record    notifications.delivery._record writes the outcomes with one `UPDATE ... WHERE id IN`
            per distinct outcome instead of `bulk_update` (a CASE WHEN per row and field, which
            Django builds in Python: ~0.7 s per 500 deliveries).
  trustenv  the firebase app's requests session gets `trust_env = False`: requests then stops
            scanning os.environ for proxies and ~/.netrc on every one of the 100,000 requests.
            (A deployment behind an HTTPS proxy would set the proxy on the session explicitly.)
  pool32    FcmGateway._send_chunk sends with `messaging.send` from a pool of 32 threads kept for
            the process, instead of `send_each`, which starts 500 threads per chunk.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "em_agent.settings")
django.setup()

from em_agent.celery import app  # noqa: E402

CHANGES = {name.strip() for name in os.environ.get("BENCH_WHATIF", "").split(",") if name.strip()}


def _patch_record() -> None:
    from collections import defaultdict

    from django.conf import settings
    from django.db import transaction

    from notifications import delivery as module
    from notifications.models import Delivery, DeliveryStatus

    def _record(deliveries, report, *, now) -> None:
        groups: dict[tuple, list[int]] = defaultdict(list)
        for delivery in deliveries:
            outcome = report.outcomes[delivery.pk]
            delivery.claimed_at = None
            delivery.last_error = outcome.error[:2000]
            if (
                outcome.status == DeliveryStatus.PENDING
                and delivery.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
            ):
                outcome.status = DeliveryStatus.FAILED
                delivery.last_error = f"gave up after {delivery.attempts} attempts: {outcome.error}"[:2000]
            delivery.status = outcome.status
            next_attempt_at = None
            if outcome.status == DeliveryStatus.PENDING:
                delivery.next_attempt_at = next_attempt_at = now + module.retry_delay(
                    delivery.attempts, at_least=outcome.retry_after
                )
                report.retried += 1
            elif outcome.status == DeliveryStatus.SENT:
                delivery.sent_at = now
                report.sent += 1
            elif outcome.status == DeliveryStatus.FAILED:
                report.failed += 1
            else:
                report.skipped += 1
            groups[(delivery.status, delivery.last_error, next_attempt_at, delivery.sent_at)].append(
                delivery.pk
            )
        with transaction.atomic():
            for (status, error, next_attempt_at, sent_at), pks in groups.items():
                fields = {"status": status, "claimed_at": None, "last_error": error, "sent_at": sent_at}
                if next_attempt_at is not None:
                    fields["next_attempt_at"] = next_attempt_at
                Delivery.objects.filter(pk__in=pks).update(**fields)

    module._record = _record


def _patch_gateway() -> None:
    from firebase_admin import exceptions, messaging

    from notifications import push

    build = push._build_gateway
    pool: dict[int, concurrent.futures.ThreadPoolExecutor] = {}

    def _build_gateway():
        gateway = build()
        if "trustenv" in CHANGES and isinstance(gateway, push.FcmGateway):
            messaging._get_messaging_service(gateway.app)._client.session.trust_env = False
        return gateway

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

    push._build_gateway = _build_gateway
    if "pool32" in CHANGES:
        push.FcmGateway._send_chunk = _send_chunk


SWITCH = {name for name in CHANGES if name.startswith("switch") and name[6:].isdigit()}
CHUNKS = {name for name in CHANGES if name.startswith("chunk") and name[5:].isdigit()}
unknown = CHANGES - {"record", "trustenv", "pool32"} - CHUNKS - SWITCH
if unknown:
    raise SystemExit(f"BENCH_WHATIF: unknown changes {sorted(unknown)}")
if "record" in CHANGES:
    _patch_record()
if CHANGES & {"trustenv", "pool32"}:
    _patch_gateway()
if SWITCH:
    # switch<N>: the GIL's switch interval in milliseconds (CPython's default is 5).
    sys.setswitchinterval(int(next(iter(SWITCH))[6:]) / 1000)
if CHUNKS:
    # chunk<N>: send_each calls of at most N messages (N threads each) instead of 500.
    from notifications import push as _push

    _push.MAX_CHUNK_SENT = int(next(iter(CHUNKS))[5:])
    _init = _push.FcmGateway.__init__

    def _init_chunked(self, app, *, send_url=None, chunk_size=_push.MAX_CHUNK):
        _init(self, app, send_url=send_url, chunk_size=_push.MAX_CHUNK_SENT)

    _push.FcmGateway.__init__ = _init_chunked

__all__ = ["app"]
