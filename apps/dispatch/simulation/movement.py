"""Where a simulated vehicle is: pure geometry and time, no I/O.

A leg runs from one point to the next along the straight line, but takes as long as
the road would: the planner's model (apps/dispatch/timing.py), road distance =
straight distance x ROAD_FACTOR at URBAN_SPEED_MPS. So simulated arrivals agree with
the planned ETAs, and on the map the vehicle advances at speed / road factor.

Sim time runs ``speedup`` times faster than the wall clock; legs and dwells are
measured in sim seconds. Pings carry wall-clock time, though, so at a high speedup a
vehicle would seem to cross the map faster than anything real, and the server hides
pings implying more than 70 m/s. Above that speedup the vehicle drives slower in sim
time (``drive_speed_mps``) so that on the map it never exceeds MAX_MAP_SPEED_MPS.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from apps.dispatch.timing import ROAD_FACTOR, URBAN_SPEED_MPS, haversine_m

from .noise import MAX_NOISE_SPEED_MPS, SERVER_FLAG_SPEED_MPS

# What the vehicle itself may do on the map per wall-clock second, leaving room for the
# GPS noise and a metre per second for rounding: 65 m/s, reached at a speedup of 10.1.
MAX_MAP_SPEED_MPS = SERVER_FLAG_SPEED_MPS - MAX_NOISE_SPEED_MPS - 1.0


@dataclass(frozen=True)
class Point:
    lat: float
    lng: float


@dataclass(frozen=True)
class Position:
    lat: float
    lng: float
    heading: float  # degrees clockwise from north
    speed_mps: float  # along the road, as the device would report it
    progress: float  # 0 at the origin, 1 on arrival


def bearing(a: Point, b: Point) -> float:
    """Initial great-circle bearing from a to b, degrees clockwise from north."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dl = math.radians(b.lng - a.lng)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360


@dataclass(frozen=True)
class Leg:
    origin: Point
    destination: Point
    depart_s: float
    speed_mps: float = URBAN_SPEED_MPS
    road_factor: float = ROAD_FACTOR

    @property
    def straight_m(self) -> float:
        return haversine_m(self.origin.lat, self.origin.lng, self.destination.lat, self.destination.lng)

    @property
    def road_m(self) -> float:
        return self.straight_m * self.road_factor

    @property
    def duration_s(self) -> float:
        return self.road_m / self.speed_mps

    @property
    def arrive_s(self) -> float:
        return self.depart_s + self.duration_s

    @property
    def heading(self) -> float:
        return bearing(self.origin, self.destination)

    def at(self, t: float) -> Position:
        """Where the vehicle is at sim time ``t``: waiting at the origin before departure,
        parked at the destination after arrival."""
        duration = self.duration_s
        progress = 1.0 if duration <= 0 else min(1.0, max(0.0, (t - self.depart_s) / duration))
        # Linear in degrees: at city scale the great circle and the rhumb line coincide.
        lat = self.origin.lat + (self.destination.lat - self.origin.lat) * progress
        lng = self.origin.lng + (self.destination.lng - self.origin.lng) * progress
        moving = 0.0 < progress < 1.0
        return Position(lat=lat, lng=lng, heading=self.heading, speed_mps=self.speed_mps if moving else 0.0,
                        progress=progress)


def standing(point: Point, heading: float = 0.0) -> Position:
    return Position(lat=point.lat, lng=point.lng, heading=heading, speed_mps=0.0, progress=1.0)


def map_speed_mps(speed_mps: float = URBAN_SPEED_MPS, road_factor: float = ROAD_FACTOR) -> float:
    """How fast a vehicle on a leg moves across the map, in sim time."""
    return speed_mps / road_factor


def drive_speed_mps(speedup: float, *, speed_mps: float = URBAN_SPEED_MPS, road_factor: float = ROAD_FACTOR) -> float:
    """The road speed to simulate at ``speedup``: the planner's, unless that would move the
    vehicle across the map faster than MAX_MAP_SPEED_MPS of wall-clock time."""
    return min(speed_mps, MAX_MAP_SPEED_MPS * road_factor / speedup)


@dataclass
class SimClock:
    """Sim seconds since start, ``speedup`` times the wall clock. The wall clock is injectable."""

    speedup: float
    wall: Callable[[], float] = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        if self.speedup <= 0:
            raise ValueError("speedup must be positive")
        self.started = self.wall()

    def now(self) -> float:
        return (self.wall() - self.started) * self.speedup

    def wall_seconds(self, sim_seconds: float) -> float:
        return max(0.0, sim_seconds) / self.speedup
