"""Celery tasks of the swaps app; every one is safe to run twice."""

from celery import shared_task

from swaps.services import swaps_expire, swaps_recheck, swaps_recheck_ids


@shared_task(name="swaps.expire")
def expire_swaps() -> int:
    """Every minute: open offers past their expiry expire; swaps awaiting a supervisor when a shift
    begins are denied."""
    return swaps_expire()


@shared_task(name="swaps.recheck")
def recheck_swaps() -> dict[str, int]:
    """Every minute: live swaps whose days changed are checked again (cancelled or denied if they
    no longer hold)."""
    return swaps_recheck()


@shared_task(name="swaps.recheck_ids")
def recheck_swaps_by_id(ids: list[int]) -> dict[str, int]:
    """Queued once days under these swaps changed: each still live is checked again."""
    return swaps_recheck_ids(ids=ids)
