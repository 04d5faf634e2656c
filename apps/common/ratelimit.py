"""Fixed-window counters in Django's cache: the one mechanism behind the sign-in limit
and the tracking page's limit. With CACHES on Redis every process counts together."""

from __future__ import annotations

from django.core.cache import cache


def window_hit(key: str, *, window_s: int) -> int:
    """Count one hit under ``key`` (which names its window) and return the count so far."""
    # Kept for two windows so a key read at the end of its window is still there.
    if cache.add(key, 1, timeout=2 * window_s):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=2 * window_s)
        return 1
