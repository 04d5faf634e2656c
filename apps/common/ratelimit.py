"""Rate limits. Fixed-window counters in Django's cache behind the sign-in limit and the
tracking page's limit (with CACHES on Redis every process counts together); token buckets
in process memory for inbound webhooks."""

from __future__ import annotations

import threading
import time

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


class TokenBuckets:
    """Token buckets per key in this process's memory, for a hot path where a shared
    counter's round trip to Redis would cost as much as the request it guards (inbound
    webhooks). Each process allows the rate on its own: N processes, N times the rate."""

    def __init__(self, *, rate_per_s: float, burst: float, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.max_keys = rate_per_s, burst, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def take(self, key: str) -> float:
        """Take a token: 0.0 when there was one, else the seconds until there is."""
        now = time.monotonic()
        with self._lock:
            tokens = self._level(key, now)
            if tokens < 1:
                return (1 - tokens) / self.rate
            if len(self._buckets) >= self.max_keys and key not in self._buckets:
                self._buckets.clear()  # a spray of keys: forget them all rather than grow
            self._buckets[key] = (tokens - 1, now)
            return 0.0

    def empty(self, key: str) -> bool:
        with self._lock:
            return self._level(key, time.monotonic()) < 1
