"""Measures the hot spot of a delivery batch, sending, against other ways of doing the same work.

    .venv/bin/python bench/fanout.py --agents 2000 --no-ceiling   # once: creates em_agent_bench
    .venv/bin/python bench/alternatives.py [--messages 1000] [--repeat 3]

In this process, against the benchmark's database (its devices' tokens) and a fake FCM server in a
separate process: FcmGateway.send (firebase-admin `send_each`, one thread per message, 500 a chunk)
versus `messaging.send_each_async` (httpx, one event loop) and versus `messaging.send` from a pool of
32 threads, for the same messages. Nothing in the project is changed: the alternatives are written
here, for comparison only. It has no goal (it prints none and exits 0 unless it fails to run).

Its other comparison, `_record`'s `bulk_update` against one UPDATE per distinct outcome, is gone:
the project's `_record` has done the latter since 2026-11-26 (notifications/delivery.py).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout import DB_NAME, Children, free_port, http_json, start_fake_fcm  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db-name", default=DB_NAME)
    args = parser.parse_args()

    from tests.notifications.fake_fcm import write_service_account

    workdir = Path(tempfile.mkdtemp(prefix="alternatives-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "em_agent.settings",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db_name}",
            "REDIS_URL": "redis://127.0.0.1:6379/13",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "FCM_CREDENTIALS_FILE": str(
                write_service_account(workdir / "sa.json", token_uri=f"{base}/token")
            ),
            "FCM_SEND_URL": f"{base}/v1/projects/{{project_id}}/messages:send",
        }
    )
    children = Children()
    try:
        start_fake_fcm(children, port=port, env={**os.environ}, workdir=workdir)
        import django

        django.setup()
        # As in a worker started with `-l warning`: no INFO line per request (httpx logs each one).
        import logging

        logging.getLogger().setLevel(logging.WARNING)
        short = send(args, base)
        print("\nno goal: alternatives.py compares ways of sending, it does not judge them")
    finally:
        children.stop_all()
    if short:
        print(f"{short} run(s) did not send every message: their msg/s are not comparable")
    return 1 if short else 0


def send(args: argparse.Namespace, base: str) -> int:
    """Prints each way's messages per second; returns how many runs sent fewer than all."""
    from firebase_admin import messaging

    from notifications.models import Device
    from notifications.push import PushMessage, _fcm_message, get_gateway

    gateway = get_gateway()
    tokens = list(Device.objects.order_by("id").values_list("token", flat=True)[: args.messages])
    pushes = [
        PushMessage(
            token=token,
            notification_id=i,
            title="Schedule changed",
            body="Your schedule for 1 December 2026 has changed.",
            data={"date": "2026-12-01", "kind": "schedule_adjusted"},
            collapse_key=f"n{i}",
        )
        for i, token in enumerate(tokens)
    ]
    if not pushes:
        raise SystemExit("no devices in the database: run bench/fanout.py first (see the docstring)")
    print(f"\nsend {len(pushes)} messages to the fake FCM (one process, chunks of 500):")

    def project() -> int:
        return sum(1 for r in gateway.send(pushes) if r.outcome == "sent")

    loop = asyncio.new_event_loop()

    def send_each_async() -> int:
        async def all_chunks() -> int:
            ok = 0
            for start in range(0, len(pushes), 500):
                batch = await messaging.send_each_async(
                    [_fcm_message(p) for p in pushes[start : start + 500]], app=gateway.app
                )
                ok += batch.success_count
            return ok

        # One loop kept for the process: firebase-admin's httpx client is bound to the loop it first
        # ran on, so a fresh asyncio.run() per call fails with "Event loop is closed".
        return loop.run_until_complete(all_chunks())

    pool = concurrent.futures.ThreadPoolExecutor(32)

    def send_pool32() -> int:
        return sum(1 for _ in pool.map(lambda p: messaging.send(_fcm_message(p), app=gateway.app), pushes))

    short = 0
    for name, func in [
        ("project FcmGateway.send (send_each, 500 threads)", project),
        ("messaging.send_each_async (httpx, event loop)", send_each_async),
        ("messaging.send from 32 threads", send_pool32),
    ]:
        func()  # warm-up: connections
        for _ in range(args.repeat):
            http_json(f"{base}/reset", method="POST")
            start = time.perf_counter()
            ok = func()
            seconds = time.perf_counter() - start
            missing = f"  ({len(pushes) - ok} NOT sent)" if ok < len(pushes) else ""
            short += ok < len(pushes)
            print(f"  {name:<50} {ok:5d} ok in {seconds:6.2f}s = {ok / seconds:6,.0f} msg/s{missing}")
    pool.shutdown()
    # The async client's connections belong to this loop: closed on it, so that deleting the app
    # later (firebase-admin closes the client with asyncio.run) finds nothing left to close.
    loop.run_until_complete(messaging._get_messaging_service(gateway.app)._async_client.aclose())
    loop.close()
    return short


if __name__ == "__main__":
    sys.exit(main())
