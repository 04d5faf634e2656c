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
        n = len(points)
        seconds = [[0] * n for _ in range(n)]
        metres = [[0] * n for _ in range(n)]
        for i in range(n):
            for j in range(i + 1, n):
                s, m = self.leg(points[i], points[j])
                seconds[i][j] = seconds[j][i] = s
                metres[i][j] = metres[j][i] = m
        return Matrix(seconds=seconds, metres=metres)


def _haversine(a: Point, b: Point) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def default_provider() -> TravelTimeProvider:
    """The provider configured for this deployment (straight-line unless OSRM is set up)."""
    return StraightLineProvider()
