"""Where one `deliveries_send` batch (one Celery task's work) spends its time.

    .venv/bin/python bench/fanout.py --agents 2000 --no-ceiling   # once: creates em_agent_bench
    .venv/bin/python bench/profile_batch.py [--batch 500] [--repeat 3] [--cprofile] [--transport sdk|async]

Runs in this process (no Celery) against the benchmark's database and a fake FCM server started as a
separate process, exactly the code a worker runs for one task: it resets `--batch` push deliveries to
pending (and forgets their receipts), then calls `deliveries_send(ids=...)` `--repeat` times. Each
phase is timed by wrapping the project's functions from outside (no project file is changed), and
every SQL statement's round trip is timed with `connection.execute_wrapper`. `--cprofile` adds the
main thread's cProfile (send_each's HTTP threads, and the async transport's event loop thread,
show up as the main thread waiting for them). `--transport` sets FCM_TRANSPORT (default: the
project's default); the CPU per message counts every thread of the process, split into the main
thread's (Django, the encoding, the receipts) and the others' (send_each's threads, or the async
transport's event loop: the HTTP client).
It has no goal: it prints none and exits 0 unless it fails to run.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout import DB_NAME, Children, Phases, free_port, http_json, start_fake_fcm  # noqa: E402

PHASES = Phases()
timed = PHASES.timed


def sql_timer(execute, sql, params, many, context):
    start = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        words = sql.lstrip().split(None, 3)
        verb = words[0].upper()
        table = ""
        if verb == "SELECT":
            table = sql.split(" FROM ", 1)[1].split()[0] if " FROM " in sql else ""
        elif verb in ("UPDATE",):
            table = words[1]
        elif verb == "INSERT":
            table = words[2]
        PHASES.add(f"sql {verb} {table.strip(chr(34))}", time.perf_counter() - start)


def timed_functions() -> list[tuple[object, str, str]]:
    """(owner, attribute, phase name) of every function this script times: the project's own, so a
    rename there must fail here (tests/test_bench.py) rather than drop a phase from the table."""
    from django.db.models.query import QuerySet

    from notifications import delivery, kinds, push, push_async, push_http1

    return [
        (delivery, "deliveries_claim", "claim (UPDATE ... RETURNING)"),
        (delivery, "_readers", "_readers"),
        (delivery, "_send_push", "_send_push (all of it)"),
        (delivery, "_push_plan", "  _push_plan (devices, receipts, messages)"),
        (delivery, "_texts", "    _texts (render title/body)"),
        (kinds, "data_for", "    kinds.data_for"),
        (delivery, "_push_send", "  _push_send (chunks + their receipts)"),
        (delivery, "_receipts_write", "    _receipts_write (one INSERT per chunk)"),
        (delivery, "push_classify", "  push_classify (outcomes)"),
        (delivery, "_devices_disable", "  _devices_disable"),
        (delivery, "_record", "_record (one UPDATE per outcome, one per retry)"),
        (push.FcmGateway, "send", "    FcmGateway.send (sdk: encode + send_each)"),
        (push.messaging, "send_each", "      messaging.send_each (HTTP, 1 thread/msg)"),
        (push.FcmGateway, "_send_chunk", "      FcmGateway._send_chunk (HTTP)"),
        (push_async.AsyncFcmGateway, "send", "    AsyncFcmGateway.send (async)"),
        (push_async.AsyncFcmGateway, "_answers", "      AsyncFcmGateway._answers (token + HTTP on the loop)"),
        (
            push_async.AsyncFcmGateway,
            "_send_chunk",
            "      AsyncFcmGateway._send_chunk (encode, HTTP, results)",
        ),
        (push_async.BodyEncoder, "body", "        BodyEncoder.body (encode one message)"),
        (push_async, "_template", "          _template (the SDK's encoder, once per text)"),
        (push_async.AsyncFcmGateway, "_result", "      AsyncFcmGateway._result (answer -> result)"),
        (push_http1.Http1Pool, "_connect", "        Http1Pool._connect (new connections, on the loop)"),
        (push.messaging._MessagingService, "encode_message", "      encode_message (the SDK's encoder)"),
        (push, "_fcm_message", "      _fcm_message (build Message)"),
        (QuerySet, "bulk_create", "QuerySet.bulk_create (receipts)"),
    ]


def install_timers() -> None:
    """Wraps each timed function from outside (for the rest of this process)."""
    for owner, attribute, name in timed_functions():
        setattr(owner, attribute, timed(name, getattr(owner, attribute)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db-name", default=DB_NAME)
    parser.add_argument("--cprofile", action="store_true")
    parser.add_argument("--whatif", default="", help="apply bench/whatif.py's changes first (see there)")
    parser.add_argument(
        "--transport", default="", help="FCM_TRANSPORT (sdk or async; default: the project's)"
    )
    parser.add_argument("--redis-db", type=int, default=13)
    args = parser.parse_args()

    from tests.notifications.fake_fcm import write_service_account

    workdir = Path(tempfile.mkdtemp(prefix="profile-batch-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "DJANGO_SETTINGS_MODULE": "em_agent.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db_name}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "FCM_CREDENTIALS_FILE": str(write_service_account(workdir / "sa.json", token_uri=f"{base}/token")),
        "FCM_SEND_URL": f"{base}/v1/projects/{{project_id}}/messages:send",
        "CONN_MAX_AGE": "60",
    }
    if args.transport:
        env["FCM_TRANSPORT"] = args.transport
    os.environ.update(env)
    children = Children()
    try:
        start_fake_fcm(children, port=port, env={**os.environ}, workdir=workdir)
        args.base = base
        run(args)
    finally:
        children.stop_all()


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    if args.whatif:
        os.environ["BENCH_WHATIF"] = args.whatif
        import bench.whatif  # noqa: F401  (patches on import)

        print(f"WHAT-IF: project code patched by bench/whatif.py ({args.whatif})")
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from notifications import delivery, push
    from notifications.models import Channel, Delivery, PushReceipt

    ids = list(
        Delivery.objects.filter(channel=Channel.PUSH)
        .order_by("id")
        .values_list("pk", flat=True)[: args.batch]
    )
    if len(ids) < args.batch:
        raise SystemExit(f"only {len(ids)} push deliveries in {args.db_name}: run bench/fanout.py first")

    def reset() -> None:
        PushReceipt.objects.filter(delivery_id__in=ids).delete()
        Delivery.objects.filter(pk__in=ids).update(
            status="pending",
            attempts=0,
            claimed_at=None,
            sent_at=None,
            next_attempt_at=timezone.now() - dt.timedelta(seconds=1),
        )

    install_timers()

    gateway = push.get_gateway()  # the gateway (firebase app, OAuth token) is built once per worker process
    print(f"transport: {type(gateway).__name__} (FCM_TRANSPORT={settings.FCM_TRANSPORT})")
    reset()
    delivery.deliveries_send(ids=ids)  # warm-up: connections, templates, translations
    for repeat in range(args.repeat):
        reset()
        http_json(f"{args.base}/reset", method="POST")
        PHASES.clear()
        profiler = cProfile.Profile() if args.cprofile and repeat == args.repeat - 1 else None
        with connection.execute_wrapper(sql_timer):
            start = time.perf_counter()
            cpu = time.process_time()
            main_cpu = time.thread_time()
            if profiler:
                profiler.enable()
            report = delivery.deliveries_send(ids=ids)
            if profiler:
                profiler.disable()
            total = time.perf_counter() - start
            main_cpu = time.thread_time() - main_cpu
            cpu = time.process_time() - cpu
        print(
            f"\nrun {repeat + 1}: {len(ids)} deliveries, {report.messages} messages, "
            f"sent {report.sent}, in {total:.3f}s = {report.messages / total:,.0f} msg/s per process; "
            f"CPU {cpu:.3f}s = {1000 * cpu / report.messages:.2f} ms/msg"
            + (" (under cProfile)" if profiler else "")
            + f"\n  CPU of the main thread {1000 * main_cpu / report.messages:.3f} ms/msg, of the other "
            f"threads (HTTP) {1000 * (cpu - main_cpu) / report.messages:.3f} ms/msg"
        )
        for name, seconds in sorted(
            PHASES.seconds.items(), key=lambda item: (not item[0].startswith("sql"), -item[1])
        ):
            print(f"  {name:<52} {seconds:7.3f}s  {100 * seconds / total:5.1f}%  x{PHASES.calls[name]}")
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            print(out.getvalue())
    push.reset_gateway()  # closes the async transport's connections
    print("no goal: profile_batch.py shows where a batch's time goes, it does not judge it")


if __name__ == "__main__":
    main()
