"""Failed-attempt limits for activation, as atomic counters in the cache (Redis in production).

An attempt is counted *before* the code is checked and given back on success, so concurrent guesses
cannot all slip under the limit: INCR is atomic, check-then-act is not.
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache


@dataclass(frozen=True)
class Counter:
    key: str
    limit: int

    @property
    def _window_key(self) -> str:
        return self.key + ":until"

    def reserve(self, *, now: float) -> int | None:
        """Counts one attempt; returns the seconds to wait when over the limit, else None."""
        window = settings.ACTIVATION_FAILURE_WINDOW_SECONDS
        cache.add(self._window_key, now + window, timeout=window)
        cache.add(self.key, 0, timeout=window)
        try:
            count = cache.incr(self.key)
        except ValueError:  # expired between add and incr
            cache.set(self.key, 1, timeout=window)
            count = 1
        if count > self.limit:
            until = cache.get(self._window_key) or now + window
            return max(1, int(until - now + 0.999))
        return None

    def release(self) -> None:
        try:
            cache.decr(self.key)
        except ValueError:
            pass


def counters_for(*, agent_id: int, address: str | None) -> list[Counter]:
    counters = [Counter(f"activation-failures:agent:{agent_id}", settings.ACTIVATION_MAX_FAILURES_PER_AGENT)]
    if address:
        counters.append(
            Counter(f"activation-failures:ip:{address}", settings.ACTIVATION_MAX_FAILURES_PER_ADDRESS)
        )
    return counters


def reserve_attempt(*, agent_id: int, address: str | None) -> int | None:
    """Counts an attempt against every counter; the longest wait if any is over its limit."""
    now = time.time()
    waits = [
        wait
        for counter in counters_for(agent_id=agent_id, address=address)
        if (wait := counter.reserve(now=now))
    ]
    return max(waits) if waits else None


def release_attempt(*, agent_id: int, address: str | None) -> None:
    for counter in counters_for(agent_id=agent_id, address=address):
        counter.release()
