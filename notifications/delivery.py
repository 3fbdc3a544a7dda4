"""Delivery of the outbox (notifications.models.Delivery) by push and by email.

Each delivery row is claimed with a conditional UPDATE (pending and due -> sending) before anything is
sent, so a task that runs twice, or two workers given the same ids, send it once. Sending happens
outside any transaction; the outcome is recorded right after. A retry is not a Celery countdown but
a row with a later `next_attempt_at` that the sweeper hands out again when it is due, so no task
ever waits longer than the broker's visibility timeout. A claim left behind by a killed worker is
released by the sweeper after LEASE. Push keeps a receipt per token FCM accepted, so a retried
delivery never sends again to a device that already got it.
"""

import datetime as dt
import json
import logging
import random
import smtplib
import zoneinfo
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import Prefetch, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from em_agent.models import Agent, User
from notifications import kinds
from notifications.models import Channel, Delivery, DeliveryStatus, Device, Notification, PushReceipt
from notifications.push import PushMessage, PushOutcome, PushResult, get_gateway

logger = logging.getLogger(__name__)

BATCH_SIZE = 500  # deliveries per task
PUSH_CHUNK = 500  # messages per gateway call: FCM's send_each takes at most 500
# A claim older than this is taken for lost (its worker died): longer than any task may run.
LEASE = dt.timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 300)
# A pending row handed to a task is handed out again by the sweeper when no task claimed it within
# this long: the task was lost with its message, or the enqueue after commit never happened.
REDISPATCH_AFTER = dt.timedelta(seconds=settings.NOTIFICATION_REDISPATCH_AFTER_SECONDS)
SWEEP_LIMIT = 100_000


def retry_delay(attempts: int, *, at_least: float | None = None) -> dt.timedelta:
    """Exponential backoff from 30 seconds, capped at an hour, with jitter so retries spread out."""
    base = min(30 * 2 ** max(attempts - 1, 0), 3600)
    seconds = random.uniform(base / 2, base)  # noqa: S311  (jitter, not security)
    return dt.timedelta(seconds=max(seconds, at_least or 0))


def deliveries_dispatch(ids: Sequence[int]) -> None:
    """Hands delivery ids to workers in batches (after commit: see notifications.services.notify)."""
    from notifications.tasks import send_deliveries

    ids = sorted(ids)
    for start in range(0, len(ids), BATCH_SIZE):
        send_deliveries.delay(ids[start : start + BATCH_SIZE])


def deliveries_claim(*, ids: Sequence[int], now: dt.datetime) -> list[int]:
    """Pending, due deliveries among `ids` become ours. Of racing claims exactly one matches a row:
    the UPDATE re-checks `status = 'pending'` after waiting for a concurrent claimer."""
    if not ids:
        return []
    table = Delivery._meta.db_table
    placeholders = ", ".join(["%s"] * len(ids))
    # Raw SQL: the datetime as the ORM stores it (SQLite keeps text, which must compare alike).
    stamp = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, claimed_at = %s, attempts = attempts + 1 "  # noqa: S608  (no user input)
            f"WHERE id IN ({placeholders}) AND status = %s AND next_attempt_at <= %s RETURNING id",
            [DeliveryStatus.SENDING, stamp, *ids, DeliveryStatus.PENDING, stamp],
        )
        return [row[0] for row in cursor.fetchall()]


@dataclass
class Outcome:
    """What became of one claimed delivery."""

    status: str = DeliveryStatus.SENT
    error: str = ""
    retry_after: float | None = None


@dataclass
class Report:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    messages: int = 0
    outcomes: dict[int, Outcome] = field(default_factory=dict)


def deliveries_send(*, ids: Sequence[int]) -> Report:
    """Claims the given deliveries and sends them; safe to call twice with the same ids."""
    now = timezone.now()
    claimed = deliveries_claim(ids=ids, now=now)
    report = Report()
    if not claimed:
        return report
    # Only the columns sending reads: a batch loads 500 deliveries, notifications and users. Each by
    # its primary key, not joined: the planner, with the statistics of tables a fan-out has just
    # filled (or of small ones), hashed the whole notification table for every batch (15-60 ms of
    # PostgreSQL's time in a 50,000-agent fan-out); a key lookup needs no statistics.
    deliveries = list(
        Delivery.objects.filter(pk__in=claimed)
        .only("channel", "attempts", "notification")
        .prefetch_related(
            Prefetch("notification", queryset=Notification.objects.only("kind", "params", "user")),
            Prefetch("notification__user", queryset=User.objects.only("is_active", "email")),
        )
    )
    by_channel: dict[str, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        by_channel[delivery.channel].append(delivery)
    readers = _readers({delivery.notification.user_id for delivery in deliveries})
    if by_channel[Channel.PUSH]:
        report.outcomes.update(_send_push(by_channel[Channel.PUSH], readers, report))
    if by_channel[Channel.EMAIL]:
        report.outcomes.update(_send_email(by_channel[Channel.EMAIL], readers))
    _record(deliveries, report, claimed_at=now, now=timezone.now())
    return report


@dataclass(frozen=True)
class Reader:
    language: str
    zone: zoneinfo.ZoneInfo


def _readers(user_ids: set[int]) -> dict[int, Reader]:
    """Language and zone of each recipient: the agent's own; a supervisor's own language and its
    organisation's zone."""
    readers = {
        user_id: Reader(language, zoneinfo.ZoneInfo(zone))
        for user_id, language, zone in Agent.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "language", "timezone"
        )
    }
    for user_id, language, zone in User.objects.filter(pk__in=user_ids - set(readers)).values_list(
        "pk", "language", "organization__default_timezone"
    ):
        readers[user_id] = Reader(language or settings.LANGUAGE_CODE, zoneinfo.ZoneInfo(zone or "UTC"))
    return readers


def _texts(notification: Notification, reader: Reader) -> tuple[str, str]:
    return kinds.render(
        kinds.kind_get(notification.kind), notification.params, language=reader.language, zone=reader.zone
    )


def _send_push(deliveries: list[Delivery], readers: dict[int, Reader], report: Report) -> dict[int, Outcome]:
    plan = _push_plan(deliveries, readers)
    results = _push_send(plan.messages, plan.owners)
    report.messages += len(plan.messages)
    outcomes, dead = push_classify(plan, results)
    _devices_disable(dead)
    return outcomes


@dataclass
class PushPlan:
    """What a batch's push deliveries will send: built before anything is sent."""

    settled: dict[int, Outcome]  # deliveries decided without sending (skipped, cannot render)
    targets: dict[int, list[int]]  # delivery -> the device ids it goes to (its user's trusted devices)
    delivered_before: set[int]  # deliveries FCM accepted for some device in an earlier attempt
    messages: list[PushMessage]
    owners: list[tuple[int, int]]  # (delivery id, device id) of each message


def _push_plan(deliveries: list[Delivery], readers: dict[int, Reader]) -> PushPlan:
    user_ids = {delivery.notification.user_id for delivery in deliveries}
    devices: dict[int, list[tuple[int, str]]] = defaultdict(list)  # user -> (device id, token)
    # Only trusted devices: registered from a session that met the organisation's MFA policy.
    # Two columns, not model instances: a fan-out reads a thousand devices per batch.
    for device_id, token, user_id in Device.objects.filter(
        agent__user_id__in=user_ids, disabled_at__isnull=True, trusted=True
    ).values_list("pk", "token", "agent__user_id"):
        devices[user_id].append((device_id, token))
    # One rendering per distinct text: a fan-out sends the same kind and parameters to many readers.
    texts: dict[tuple[str, str, str, str], tuple[str, str]] = {}
    already = set(PushReceipt.objects.filter(delivery__in=deliveries).values_list("delivery_id", "token"))
    plan = PushPlan(
        settled={}, targets={}, delivered_before={pk for pk, _token in already}, messages=[], owners=[]
    )
    for delivery in deliveries:
        notification = delivery.notification
        if not notification.user.is_active:
            plan.settled[delivery.pk] = Outcome(DeliveryStatus.SKIPPED, "the user is deactivated")
            continue
        targets = devices.get(notification.user_id, [])
        if not targets:
            plan.settled[delivery.pk] = Outcome(DeliveryStatus.SKIPPED, "no trusted device")
            continue
        plan.targets[delivery.pk] = [device_id for device_id, _token in targets]
        pending = [(device_id, token) for device_id, token in targets if (delivery.pk, token) not in already]
        if not pending:
            continue
        try:
            reader = readers[notification.user_id]
            text_key = (
                notification.kind,
                reader.language,
                reader.zone.key,
                json.dumps(notification.params, sort_keys=True),
            )
            if text_key not in texts:
                texts[text_key] = _texts(notification, reader)
            title, body = texts[text_key]
        except (KeyError, ValueError) as error:  # a bad row fails alone, never the batch
            plan.settled[delivery.pk] = Outcome(DeliveryStatus.FAILED, f"cannot render: {error}")
            continue
        data = {
            key: str(value)
            for key, value in kinds.data_for(kinds.kind_get(notification.kind), notification.params).items()
        }
        data["kind"] = notification.kind
        for device_id, token in pending:
            plan.messages.append(
                PushMessage(
                    token=token,
                    notification_id=notification.pk,
                    title=title,
                    body=body,
                    data=data,
                    collapse_key=f"n{notification.pk}",
                )
            )
            plan.owners.append((delivery.pk, device_id))
    return plan


def _push_send(messages: list[PushMessage], owners: list[tuple[int, int]]) -> list[PushResult]:
    """Sends chunk by chunk through the gateway, each chunk's receipts written before the next goes:
    a worker lost later re-sends at most the chunk in flight."""
    if not messages:
        return []
    gateway = get_gateway()
    results: list[PushResult] = []
    for start in range(0, len(messages), PUSH_CHUNK):
        chunk = messages[start : start + PUSH_CHUNK]
        answers = gateway.send(chunk)
        _receipts_write(
            [
                (delivery_id, message.token, result.message_id or "")
                for message, (delivery_id, _device_id), result in zip(
                    chunk, owners[start : start + PUSH_CHUNK], answers, strict=True
                )
                if result.outcome == PushOutcome.SENT
            ]
        )
        results.extend(answers)
    return results


def _receipts_write(receipts: list[tuple[int, str, str]]) -> None:
    """(delivery id, token, FCM message id) of each accepted message; one already there is kept."""
    if not receipts:
        return
    now = timezone.now()
    if connection.vendor != "postgresql":
        PushReceipt.objects.bulk_create(
            [PushReceipt(delivery_id=d, token=t, message_id=m, sent_at=now) for d, t, m in receipts],
            ignore_conflicts=True,
        )
        return
    # One statement over three arrays: bulk_create's model instances and thousand-row VALUES list
    # cost a fan-out a tenth of its CPU per message (bench/profile_batch.py).
    delivery_ids, tokens, message_ids = (list(column) for column in zip(*receipts, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {PushReceipt._meta.db_table} (delivery_id, token, message_id, sent_at) "  # noqa: S608  (no user input)
            "SELECT d, t, m, %s FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS r (d, t, m) "
            "ON CONFLICT DO NOTHING",
            [now, delivery_ids, tokens, message_ids],
        )


_DEAD = (PushOutcome.UNREGISTERED, PushOutcome.INVALID_TOKEN, PushOutcome.SENDER_MISMATCH)


def push_classify(plan: PushPlan, results: Sequence[PushResult]) -> tuple[dict[int, Outcome], dict[int, str]]:
    """Each delivery's outcome from its messages' results, and the devices to disable (id -> reason).
    Pure: reads the plan and the results, changes neither.

    A delivery is sent once FCM accepted it for one device (now or in an earlier attempt); pending
    while any of its messages must be retried (a quota, an unavailable FCM); failed when every
    message it sent was rejected for itself; skipped when all its devices turned out dead."""
    per_delivery: dict[int, list[tuple[int, PushResult]]] = defaultdict(list)
    for (delivery_id, device_id), result in zip(plan.owners, results, strict=True):
        per_delivery[delivery_id].append((device_id, result))
    dead = {
        device_id: result.outcome.value
        for (_delivery_id, device_id), result in zip(plan.owners, results, strict=True)
        if result.outcome in _DEAD
    }
    outcomes = dict(plan.settled)
    for delivery_id, device_ids in plan.targets.items():
        if delivery_id in outcomes:
            continue
        answered = per_delivery.get(delivery_id, [])
        delivered = delivery_id in plan.delivered_before or any(
            result.outcome == PushOutcome.SENT for _device_id, result in answered
        )
        retries = [
            result
            for _device_id, result in answered
            if result.outcome in (PushOutcome.RETRY, PushOutcome.QUOTA)
        ]
        rejected = [result for _device_id, result in answered if result.outcome == PushOutcome.FAILED]
        if retries:
            retry_after = max((result.retry_after or 0 for result in retries), default=0) or None
            last = retries[-1]
            outcomes[delivery_id] = Outcome(
                DeliveryStatus.PENDING, last.error or last.outcome.value, retry_after=retry_after
            )
        elif rejected:
            # Delivered to some device: sent, with the other device's error kept for the admin.
            status = DeliveryStatus.SENT if delivered else DeliveryStatus.FAILED
            outcomes[delivery_id] = Outcome(status, rejected[-1].error or "rejected by FCM")
        elif not delivered and all(device_id in dead for device_id in device_ids):
            outcomes[delivery_id] = Outcome(DeliveryStatus.SKIPPED, "every device was rejected by FCM")
        else:
            outcomes[delivery_id] = Outcome()
    return outcomes, dead


def _devices_disable(dead: dict[int, str]) -> None:
    for device_id, reason in dead.items():
        if reason == PushOutcome.SENDER_MISMATCH:
            logger.warning("push: device %s belongs to another FCM sender; disabled", device_id)
    now = timezone.now()
    for reason in set(dead.values()):
        Device.objects.filter(pk__in=[pk for pk, why in dead.items() if why == reason]).update(
            disabled_at=now, disabled_reason=reason
        )


_PERMANENT_SMTP_CODES = range(500, 600)


def _send_email(deliveries: list[Delivery], readers: dict[int, Reader]) -> dict[int, Outcome]:
    outcomes: dict[int, Outcome] = {}
    try:
        smtp = get_connection(fail_silently=False)
        smtp.open()
    except (OSError, smtplib.SMTPException) as error:
        logger.warning("email: cannot reach the mail server: %s", error)
        return {delivery.pk: Outcome(DeliveryStatus.PENDING, f"connect: {error}") for delivery in deliveries}
    try:
        for delivery in deliveries:
            outcomes[delivery.pk] = _send_one_email(smtp, delivery, readers[delivery.notification.user_id])
    finally:
        try:
            smtp.close()
        except (OSError, smtplib.SMTPException):
            pass
    return outcomes


def _send_one_email(smtp, delivery: Delivery, reader: Reader) -> Outcome:
    notification = delivery.notification
    address = notification.user.email
    if not address or not notification.user.is_active:
        return Outcome(DeliveryStatus.SKIPPED, "no active address")
    try:
        title, body = _texts(notification, reader)
    except (KeyError, ValueError) as error:
        return Outcome(DeliveryStatus.FAILED, f"cannot render: {error}")
    with translation.override(reader.language):
        context = {
            "title": title,
            "body": body,
            "language": reader.language,
            # A supervisor has no app: the email points to the administration instead.
            "for_supervisor": kinds.kind_get(notification.kind).audience == "supervisor",
        }
        text = render_to_string("notifications/email/notification.txt", context)
        html = render_to_string("notifications/email/notification.html", context)
    message = EmailMultiAlternatives(
        subject=f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{title}",
        body=text,
        to=[address],
        connection=smtp,
        headers={"X-EM-Notification": str(notification.pk)},
    )
    message.attach_alternative(html, "text/html")
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _text in error.recipients.values()]
        if all(code in _PERMANENT_SMTP_CODES for code in codes):
            return Outcome(DeliveryStatus.FAILED, f"refused: {error.recipients}")
        return Outcome(DeliveryStatus.PENDING, f"refused for now: {error.recipients}")
    except smtplib.SMTPResponseException as error:
        status = DeliveryStatus.FAILED if error.smtp_code in _PERMANENT_SMTP_CODES else DeliveryStatus.PENDING
        return Outcome(status, f"{error.smtp_code} {error.smtp_error!r}")
    except (OSError, smtplib.SMTPException) as error:
        return Outcome(DeliveryStatus.PENDING, f"{error.__class__.__name__}: {error}")
    return Outcome()


def _record(deliveries: list[Delivery], report: Report, *, claimed_at: dt.datetime, now: dt.datetime) -> None:
    """Writes each claimed delivery's outcome: one UPDATE per distinct outcome (sent, skipped or
    failed with the same error), one per retried row (each has its own jittered time). A retry past
    the last attempt is a failure. (bulk_update's CASE per row cost 0.7 s per 500 rows.)"""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    retries: list[tuple[int, dt.datetime, str]] = []
    for delivery in deliveries:
        outcome = report.outcomes[delivery.pk]
        error = outcome.error[:2000]
        if (
            outcome.status == DeliveryStatus.PENDING
            and delivery.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
        ):
            outcome.status = DeliveryStatus.FAILED
            error = f"gave up after {delivery.attempts} attempts: {outcome.error}"[:2000]
        if outcome.status == DeliveryStatus.PENDING:
            retries.append(
                (delivery.pk, now + retry_delay(delivery.attempts, at_least=outcome.retry_after), error)
            )
            report.retried += 1
            continue
        groups[(outcome.status, error)].append(delivery.pk)
        if outcome.status == DeliveryStatus.SENT:
            report.sent += 1
        elif outcome.status == DeliveryStatus.FAILED:
            report.failed += 1
        else:
            report.skipped += 1
    # Only rows still under this task's claim: if the task outlived its lease, the sweeper has handed
    # them to another, whose outcome must not be overwritten.
    ours = Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at=claimed_at)
    with transaction.atomic():
        for (status, error), ids in groups.items():
            sent_at = now if status == DeliveryStatus.SENT else None
            ours.filter(pk__in=ids).update(status=status, claimed_at=None, last_error=error, sent_at=sent_at)
        for pk, next_attempt_at, error in retries:
            ours.filter(pk=pk).update(
                status=DeliveryStatus.PENDING,
                claimed_at=None,
                dispatched_at=None,  # the sweeper hands it out when it falls due
                last_error=error,
                next_attempt_at=next_attempt_at,
            )


def deliveries_sweep(*, now: dt.datetime | None = None) -> int:
    """Releases lost claims and hands out every due delivery again. Safe to run twice at once: the
    claim decides who sends."""
    now = now or timezone.now()
    lost = Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lt=now - LEASE)
    # A delivery that keeps killing its worker is not handed out forever.
    lost.filter(attempts__gte=settings.NOTIFICATION_MAX_ATTEMPTS).update(
        status=DeliveryStatus.FAILED,
        claimed_at=None,
        last_error="gave up: the worker was lost on every attempt",
    )
    released = lost.update(
        status=DeliveryStatus.PENDING, claimed_at=None, dispatched_at=None, next_attempt_at=now
    )
    if released:
        logger.warning("notifications: released %d deliveries whose worker was lost", released)
    due = list(
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(dispatched_at__isnull=True) | Q(dispatched_at__lte=now - REDISPATCH_AFTER))
        .order_by("id")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    for start in range(0, len(due), BATCH_SIZE):
        Delivery.objects.filter(pk__in=due[start : start + BATCH_SIZE], status=DeliveryStatus.PENDING).update(
            dispatched_at=now
        )
    deliveries_dispatch(due)
    return len(due)


@transaction.atomic
def deliveries_retry_failed(*, ids: Sequence[int]) -> int:
    """An operator's retry of failed deliveries (admin action): they start again with fresh attempts."""
    failed = list(
        Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.FAILED).values_list("pk", flat=True)
    )
    now = timezone.now()
    Delivery.objects.filter(pk__in=failed).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, dispatched_at=now, last_error=""
    )
    transaction.on_commit(lambda: deliveries_dispatch(failed))
    return len(failed)
