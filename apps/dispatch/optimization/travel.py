"""Travel-time providers: one interface for the optimizer and the ETA engine.

A provider answers a matrix question (from every point to every point: seconds and
metres) for a list of coordinates. The default needs no services: great-circle
distance times a road factor at an urban average speed. Road-network providers (OSRM)
implement the same protocol; callers never know which one they have.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from apps.dispatch.timing import EARTH_RADIUS_M, ROAD_FACTOR, URBAN_SPEED_MPS

Point = tuple[float, float]  # (lat, lng)

# Seconds and metres for a pair the road network cannot connect. Large enough that no
# solver prefers it, small enough that sums of a route's legs never overflow int64.
UNREACHABLE = 10**9


@dataclass(frozen=True)
class Matrix:
    """Travel from ``points[i]`` to ``points[j]``: ``seconds[i][j]`` and ``metres[i][j]``."""

    seconds: list[list[int]]
    metres: list[list[int]]

    def reachable(self, i: int, j: int) -> bool:
        return self.seconds[i][j] < UNREACHABLE


class TravelTimeProvider(Protocol):
    name: str

    def matrix(self, points: Sequence[Point]) -> Matrix: ...

    def leg(self, origin: Point, destination: Point) -> tuple[int, int]:
        """Seconds and metres for one leg (the ETA engine's per-ping question)."""
        ...


@dataclass(frozen=True)
class StraightLineProvider:
    """Great-circle distance x road factor, at a constant speed. No services needed."""

    road_factor: float = ROAD_FACTOR
    speed_mps: float = URBAN_SPEED_MPS
    name: str = "straight_line"

    def leg(self, origin: Point, destination: Point) -> tuple[int, int]:
        metres = _haversine(origin, destination) * self.road_factor
        return round(metres / self.speed_mps), round(metres)

    def matrix(self, points: Sequence[Point]) -> Matrix:
        """Every pair at once, in numpy: a replan's 211 points took 70 ms pair by pair in
        Python (most of a breakdown's first plan), about 2 ms here. Same formula and
        rounding as ``leg`` (half to even, like Python's ``round``)."""
        import numpy as np

        if not points:
            return Matrix(seconds=[], metres=[])
        lat = np.radians(np.asarray([p[0] for p in points], dtype=float))
        lng = np.radians(np.asarray([p[1] for p in points], dtype=float))
        dp = lat[None, :] - lat[:, None]
        dl = lng[None, :] - lng[:, None]
        h = np.sin(dp / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dl / 2) ** 2
        metres = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))) * self.road_factor
        seconds = np.rint(metres / self.speed_mps).astype(np.int64)
        rounded = np.rint(metres).astype(np.int64)
        np.fill_diagonal(seconds, 0)
        np.fill_diagonal(rounded, 0)
        return Matrix(seconds=seconds.tolist(), metres=rounded.tolist())


def _haversine(a: Point, b: Point) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def default_provider() -> TravelTimeProvider:
    """The provider configured for this deployment: OSRM's table service when
    ``OSRM_URL`` is set, else the straight line."""
    from django.conf import settings

    url = getattr(settings, "OSRM_URL", "")
    if url:
        from .osrm import OSRMHttpProvider

        return OSRMHttpProvider(url)
    return StraightLineProvider()


class CachedProvider:
    """Remembers every pair a provider has answered, so re-planning the same places
    (every replan of the day, every poll of a draft) asks the provider only for new pairs.

    The cache is bounded: past ``max_pairs`` it starts afresh rather than grow without
    limit in a long-running worker. Thread-safe enough for one worker: a race only
    means a pair is asked twice.
    """

    def __init__(self, provider: TravelTimeProvider, *, max_pairs: int = 4_000_000) -> None:
        self.provider = provider
        self.name = f"cached:{provider.name}"
        self.max_pairs = max_pairs
        self._pairs: dict[tuple[Point, Point], tuple[int, int]] = {}
        self.hits = self.misses = 0

    def _key(self, p: Point) -> Point:
        return (round(p[0], 6), round(p[1], 6))

    def matrix(self, points: Sequence[Point]) -> Matrix:
        keys = [self._key(p) for p in points]
        pairs = self._pairs
        try:
            seconds = [[pairs[(a, b)][0] if a != b else 0 for b in keys] for a in keys]
            metres = [[pairs[(a, b)][1] if a != b else 0 for b in keys] for a in keys]
            self.hits += 1
            return Matrix(seconds=seconds, metres=metres)
        except KeyError:
            self.misses += 1
        fresh = self.provider.matrix(points)
        if len(pairs) + len(keys) ** 2 > self.max_pairs:
            pairs.clear()
        for i, a in enumerate(keys):
            for j, b in enumerate(keys):
                if i != j:
                    pairs[(a, b)] = (fresh.seconds[i][j], fresh.metres[i][j])
        return fresh

    def leg(self, origin: Point, destination: Point) -> tuple[int, int]:
        key = (self._key(origin), self._key(destination))
        found = self._pairs.get(key)
        if found is None:
            found = self._pairs[key] = self.provider.leg(origin, destination)
        return found


_default: CachedProvider | None = None


def cached_default_provider() -> CachedProvider:
    """The deployment's provider behind one process-wide cache (the optimizer's matrices)."""
    global _default
    if _default is None:
        _default = CachedProvider(default_provider())
    return _default
