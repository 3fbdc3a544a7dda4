"""Failed-attempt limits for password logins, as atomic counters in the cache (Redis in production).

An attempt is reserved *before* the password is checked and given back when it succeeds, as
activation/limits.py does for activation codes: parallel guesses each take a slot first, so no more
of them reach the password check than the limit allows (a check-then-record limit lets a burst of
parallel guesses all pass the check before the first failure is recorded).

Counters live in the cache rather than in a table because a login is the busiest unauthenticated
write (a guessing run is thousands of requests a minute) and a counter is worth keeping only for
its window: one Redis INCR per key instead of a transaction with row locks, no migration, and a
flushed cache only restarts windows. `cache.add` and `cache.incr` are atomic on Redis (SET NX,
INCR) and under the lock of the in-process cache, so nothing here takes a lock. The mechanism
(`attempt_reserve` with its `Limit`s) knows nothing about logins; activation could move onto it.

Windows are fixed and aligned on the clock (one counter per key and window, read with
timezone.now(), so tests move it with time_machine whatever the cache): within a window at most
the limit is evaluated; a burst that straddles the boundary of two windows gets at most twice the
limit, and the budget per day is the same as with a sliding window.
"""

import hashlib
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone


@dataclass(frozen=True)
class Limit:
    scope: str  # what is counted: "login-account", "login-address", ...
    identifier: str  # whose: an email, an address (hashed into the key, never stored)
    maximum: int


class LimitReached(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"limit reached; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Reservation:
    keys: list[str] = field(default_factory=list)

    def release(self) -> None:
        """A successful attempt is not a failure: give it back."""
        for key in self.keys:
            _decrement(key)
        self.keys = []


def _key(limit: Limit, *, window: int, bucket: int) -> str:
    digest = hashlib.sha256(limit.identifier.encode()).hexdigest()[:32]
    return f"attempts:{limit.scope}:{digest}:{window}:{bucket}"


def _increment(key: str, timeout: int) -> int:
    # add opens the counter (a no-op when it exists); if it expired in between, incr finds nothing.
    for _attempt in range(2):
        cache.add(key, 0, timeout)
        try:
            return cache.incr(key)
        except ValueError:
            continue
    return cache.incr(key)


def _decrement(key: str) -> None:
    try:
        cache.decr(key)
    except ValueError:  # expired, or cleared by a password reset meanwhile
        pass


def attempt_reserve(*, limits: Sequence[Limit], window: int) -> Reservation:
    """Counts one attempt against every limit, or against none (raising LimitReached with the
    seconds to wait) if any is already at its maximum: a refused attempt counts nowhere, so one
    account's retries do not use up the budget of the others at its address."""
    now = timezone.now().timestamp()
    bucket = int(now // window)
    retry_after = max(1, math.ceil((bucket + 1) * window - now))
    # A counter outlives its window by one more, so a late release still finds it.
    timeout = math.ceil((bucket + 2) * window - now)
    reservation = Reservation()
    for limit in limits:
        key = _key(limit, window=window, bucket=bucket)
        count = _increment(key, timeout)
        reservation.keys.append(key)
        if count > limit.maximum:
            reservation.release()
            raise LimitReached(retry_after)
    return reservation


def attempt_count_clear(*, limit: Limit, window: int) -> None:
    bucket = int(timezone.now().timestamp() // window)
    cache.delete(_key(limit, window=window, bucket=bucket))


def _address_identifier(address: str) -> str:
    # One IPv6 client holds a /64 at least: counting single addresses would give it 2^64 budgets.
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network(f"{parsed}/64", strict=False).network_address) + "/64"
    return str(parsed)


def _account_limit(login: str) -> Limit:
    # Unknown addresses are counted like known ones, so the answers reveal no account.
    return Limit("login-account", login.strip().lower(), settings.LOGIN_MAX_FAILURES_PER_ACCOUNT)


def login_attempt_reserve(*, login: str, address: str) -> Reservation:
    """One password attempt (a login, the admin's login, a reauthentication) for the account named
    by login and for the client address; raises LimitReached."""
    limits = [
        _account_limit(login),
        Limit("login-address", _address_identifier(address), settings.LOGIN_MAX_FAILURES_PER_ADDRESS),
    ]
    return attempt_reserve(limits=limits, window=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def login_failures_clear(*, login: str) -> None:
    """The account's failures are forgotten (its address's are not: those still stop spraying)."""
    attempt_count_clear(limit=_account_limit(login), window=settings.LOGIN_FAILURE_WINDOW_SECONDS)
