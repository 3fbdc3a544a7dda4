import datetime as dt
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import status

from em_agent.exceptions import ApplicationError
from em_agent.models import Agent, User
from notifications import kinds
from notifications.delivery import deliveries_dispatch
from notifications.models import Channel, Delivery, DeliveryStatus, Device, EmailOptOut, Notification

Recipient = User | Agent


@transaction.atomic
def device_register(*, agent: Agent, token: str, platform: str, trusted: bool) -> tuple[Device, bool]:
    """Registers a push token; a token moves to the latest agent that registers it (a shared phone).
    `trusted`: the registering session satisfied the organisation's MFA policy."""
    now = timezone.now()
    fields = {
        "agent": agent,
        "platform": platform,
        "last_seen_at": now,
        "disabled_at": None,
        "disabled_reason": "",
        "trusted": trusted,
    }
    device, created = Device.objects.select_for_update().get_or_create(
        token=token, defaults={**fields, "created_at": now}
    )
    if not created:
        for name, value in fields.items():
            setattr(device, name, value)
        device.save(update_fields=list(fields))
    surplus = Device.objects.filter(agent=agent).order_by("-last_seen_at", "-id")[
        settings.MAX_DEVICES_PER_AGENT :
    ]
    Device.objects.filter(pk__in=list(surplus.values_list("pk", flat=True))).delete()
    return device, created


def device_unregister(*, device: Device) -> None:
    device.delete()


def _user_id_of(recipient: Recipient) -> int:
    # The id only: notifying 50,000 agents must not load 50,000 users.
    return recipient.user_id if isinstance(recipient, Agent) else recipient.pk


def notify(
    *,
    recipients: Iterable[Recipient],
    kind: str,
    params: dict,
    expires_at: dt.datetime | None = None,
) -> list[Notification]:
    """Tells each recipient the same thing (a schedule published for a team is one call)."""
    return notify_each(
        kind=kind, items=[(recipient, params) for recipient in recipients], expires_at=expires_at
    )


# No savepoint of its own: it runs inside the change it tells of, and nobody catches its failure to
# go on with that change (a SAVEPOINT and its RELEASE per call: two round trips per notification).
@transaction.atomic(savepoint=False)
def notify_each(
    *,
    kind: str,
    items: Sequence[tuple[Recipient, dict]],
    expires_at: dt.datetime | None = None,
) -> list[Notification]:
    """Writes one notification per (recipient, params) and one outbox row per channel, in the caller's
    transaction, with a few bulk inserts whatever the number of recipients. Nothing is sent here:
    delivery picks the outbox rows up after commit, so a rolled-back change never notifies."""
    definition = kinds.kind_get(kind)
    if definition.actionable and expires_at is None:
        raise ValueError(f"{kind} offers actions and needs an expiry")
    if not items:
        return []
    if definition.audience == "agent" and not all(
        isinstance(recipient, Agent) for recipient, _params in items
    ):
        raise ValueError(f"{kind} is for agents")
    now = timezone.now()
    user_ids = [_user_id_of(recipient) for recipient, _params in items]
    # notify() passes one params dict for every recipient: validate it once, not 50,000 times.
    validated: dict[int, dict] = {}
    for _recipient, params in items:
        if id(params) not in validated:
            validated[id(params)] = kinds.params_validate(definition, params)
    notifications = Notification.objects.bulk_create(
        [
            Notification(
                user_id=user_id,
                kind=kind,
                params=validated[id(params)],
                created_at=now,
                expires_at=expires_at,
            )
            for user_id, (_recipient, params) in zip(user_ids, items, strict=True)
        ],
        batch_size=5000,
    )
    _dispatch_after_commit(
        _deliveries_create(kind=kind, notifications=notifications, user_ids=user_ids, now=now)
    )
    return notifications


class _Dispatch:
    """The deliveries of one transaction's notifications, handed to workers after its commit."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self) -> None:
        deliveries_dispatch(self.ids)


def _dispatch_after_commit(ids: list[int]) -> None:
    """After commit only: a notification of a change that rolls back is never sent. One dispatch per
    transaction, however many notify calls it makes (a decision tells its outcome and the schedule
    change: one task, not two). Robust: a broker outage must not turn a committed change into an
    error; the sweeper delivers."""
    if not ids:
        return
    conn = transaction.get_connection()
    if conn.in_atomic_block:
        # Joins the dispatch already registered in this transaction (Django 5.2 keeps the hooks in
        # run_on_commit as (savepoint ids, hook, robust); a test fails if that changes). Safe at any savepoint depth:
        # a hook Django still keeps was registered in savepoints since released (merged into
        # ours) or still open (ours or around ours), so it is dropped only by a rollback that
        # drops these deliveries too; ids of a savepoint rolled back later are handed out anyway
        # and claim nothing.
        for _registered_in, hook, _robust in conn.run_on_commit:
            if isinstance(hook, _Dispatch):
                hook.ids.extend(ids)
                return
    dispatch = _Dispatch()
    dispatch.ids.extend(ids)
    transaction.on_commit(dispatch, robust=True)


def _deliveries_create(
    *, kind: str, notifications: list[Notification], user_ids: list[int], now: dt.datetime
) -> list[int]:
    """One push row for each notification of an agent, one email row unless its user opted out of
    the kind; returns the new rows' ids."""
    if connection.vendor == "postgresql":
        # One statement that picks the rows in the database: for a team-wide fan-out (50,000
        # recipients) it saves two lookups and building 100,000 model instances (seconds, measured
        # by bench/fanout.py) during which the caller's transaction holds its locks.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {Delivery._meta.db_table}
                    (notification_id, channel, status, attempts, next_attempt_at, dispatched_at, last_error)
                SELECT n.id, %(push)s, %(pending)s, 0, %(now)s, %(now)s, ''
                FROM {Notification._meta.db_table} n
                WHERE n.id = ANY(%(ids)s)
                  AND EXISTS (SELECT 1 FROM {Agent._meta.db_table} a WHERE a.user_id = n.user_id)
                UNION ALL
                SELECT n.id, %(email)s, %(pending)s, 0, %(now)s, %(now)s, ''
                FROM {Notification._meta.db_table} n
                WHERE n.id = ANY(%(ids)s)
                  AND NOT EXISTS (
                    SELECT 1 FROM {EmailOptOut._meta.db_table} o WHERE o.user_id = n.user_id AND o.kind = %(kind)s
                  )
                RETURNING id
                """,  # noqa: S608 (table names from the models; every value is a parameter)
                {
                    "ids": [notification.pk for notification in notifications],
                    "push": Channel.PUSH,
                    "email": Channel.EMAIL,
                    "pending": DeliveryStatus.PENDING,
                    "now": now,
                    "kind": kind,
                },
            )
            return [row[0] for row in cursor.fetchall()]
    opted_out = set(
        EmailOptOut.objects.filter(kind=kind, user__in=user_ids).values_list("user_id", flat=True)
    )
    agent_user_ids = set(Agent.objects.filter(user__in=user_ids).values_list("user_id", flat=True))
    deliveries = []
    for notification in notifications:
        if notification.user_id in agent_user_ids:
            deliveries.append(
                Delivery(
                    notification=notification, channel=Channel.PUSH, next_attempt_at=now, dispatched_at=now
                )
            )
        if notification.user_id not in opted_out:
            deliveries.append(
                Delivery(
                    notification=notification, channel=Channel.EMAIL, next_attempt_at=now, dispatched_at=now
                )
            )
    Delivery.objects.bulk_create(deliveries, batch_size=2000)
    return [delivery.pk for delivery in deliveries]


def notification_acknowledge(*, notification: Notification) -> Notification:
    if notification.acknowledged_at is None:
        notification.acknowledged_at = timezone.now()
        Notification.objects.filter(pk=notification.pk, acknowledged_at__isnull=True).update(
            acknowledged_at=notification.acknowledged_at
        )
    return notification


def notification_delete(*, notification: Notification) -> None:
    """Only a read (acknowledged) notification may be deleted, as in the app (the X on a read one)."""
    deleted = Notification.objects.filter(
        pk=notification.pk, acknowledged_at__isnull=False, deleted_at__isnull=True
    ).update(deleted_at=timezone.now())
    if not deleted and notification.acknowledged_at is None:
        raise ApplicationError(
            "not_acknowledged",
            _("Only a read notification can be deleted. Open it first."),
            status_code=status.HTTP_409_CONFLICT,
        )


@transaction.atomic
def email_preferences_set(*, user: User, email: dict[str, bool]) -> None:
    unknown = sorted(set(email) - set(kinds.KINDS))
    if unknown:
        raise ApplicationError(
            "validation_error",
            _("The input is not valid."),
            fields={"email": [_("Unknown kinds: %(kinds)s") % {"kinds": ", ".join(unknown)}]},
        )
    off = [kind for kind, enabled in email.items() if not enabled]
    on = [kind for kind, enabled in email.items() if enabled]
    EmailOptOut.objects.filter(user=user, kind__in=on).delete()
    existing = set(EmailOptOut.objects.filter(user=user, kind__in=off).values_list("kind", flat=True))
    EmailOptOut.objects.bulk_create(
        [EmailOptOut(user=user, kind=kind) for kind in off if kind not in existing]
    )
