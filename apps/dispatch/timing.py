"""Straight-line travel times and a planned-arrival schedule for a route.

The default travel-time model needs no services: great-circle distance times a
road factor, at an urban average speed. The optimizer issue puts this behind a
provider interface with OSRM as the road-network alternative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

EARTH_RADIUS_M = 6_371_000.0
# Road distance over straight-line distance in European and North American cities
# is typically 1.2-1.4; 1.3 is the usual planning figure.
ROAD_FACTOR = 1.3
URBAN_SPEED_MPS = 30 / 3.6


def haversine_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def travel_seconds(lat1: float, lng1: float, lat2: float, lng2: float) -> int:
    return round(haversine_m(lat1, lng1, lat2, lng2) * ROAD_FACTOR / URBAN_SPEED_MPS)


@dataclass(frozen=True)
class Visit:
    lat: float | None
    lng: float | None
    service_s: int
    window_start: datetime | None


def schedule(start: datetime, origin: tuple[float, float], visits: Sequence[Visit]) -> list[datetime]:
    """Arrival time at each visit in order, waiting for a window that has not opened.

    A visit without coordinates is assumed to be where the previous one was: its
    arrival is still planned, and the low geocode confidence is flagged elsewhere.
    """
    arrivals: list[datetime] = []
    clock = start
    lat, lng = origin
    for visit in visits:
        if visit.lat is not None and visit.lng is not None:
            clock += timedelta(seconds=travel_seconds(lat, lng, visit.lat, visit.lng))
            lat, lng = visit.lat, visit.lng
        if visit.window_start is not None and clock < visit.window_start:
            clock = visit.window_start
        arrivals.append(clock)
        clock += timedelta(seconds=visit.service_s)
    return arrivals
