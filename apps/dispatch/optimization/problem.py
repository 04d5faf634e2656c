"""The optimizer's problem and plan, as plain data.

Nothing here knows Django or a solver. Times are whole seconds from the problem's
epoch (the planner picks it, e.g. midnight in the hub's time zone), distances whole
metres, loads whole units per capacity dimension (the planner chooses the dimensions:
grams, decilitres, parcels). Locations are indices into ``matrix``.

Semantics the engines and the independent checker agree on:

* a stop's window bounds the *start of service*; arriving early means waiting;
* a vehicle leaves its ``start`` no earlier than ``shift.start`` and must be back at its
  ``end`` by ``shift.end``;
* a plain stop is a delivery loaded at the start (its demand is on board from the
  start until it is served); a pickup stop with ``delivers_to`` picks goods up that
  the named delivery stop drops off later on the same vehicle (the pair's load is the
  pickup's demand);
* a stop ``pinned_to`` a vehicle may only be served by that vehicle; a ``Lock`` fixes
  the first stops of a vehicle's route, in order;
* every stop is optional at a price that grows steeply with its priority, so the
  optimizer always returns a plan and drops the least important stops first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from .travel import Matrix

Objective = Literal["distance", "duration"]


@dataclass(frozen=True)
class Window:
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class Vehicle:
    id: str
    start: int
    end: int
    shift: Window
    capacity: tuple[int, ...] = ()
    skills: frozenset[str] = frozenset()
    # Cost of using the vehicle at all, in objective units: set it to prefer fewer routes.
    fixed_cost: int = 0


@dataclass(frozen=True)
class Stop:
    id: str
    location: int
    service_s: int = 0
    window: Window | None = None
    demand: tuple[int, ...] = ()
    skills: frozenset[str] = frozenset()
    priority: int = 1  # 0 low, 1 normal, 2 high, 3 urgent (Order.priority)
    delivers_to: str | None = None  # set on a pickup: the id of its delivery stop
    pinned_to: str | None = None  # vehicle id
    # A replan: the vehicle the stop is on now. Serving it with another costs the
    # problem's ``reassign_cost``, so stops change driver only for a real gain.
    current_vehicle: str | None = None


@dataclass(frozen=True)
class Lock:
    """The first stops of ``vehicle``'s route, in this order (a dispatcher's pinned sequence)."""

    vehicle: str
    stops: tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    vehicles: tuple[Vehicle, ...]
    stops: tuple[Stop, ...]
    matrix: Matrix
    locks: tuple[Lock, ...] = ()
    objective: Objective = "duration"
    reassign_cost: int = 0

    def __post_init__(self) -> None:
        n = len(self.matrix.seconds)
        dims = {len(v.capacity) for v in self.vehicles}
        if len(dims) > 1:
            raise ValueError("every vehicle needs the same capacity dimensions")
        width = dims.pop() if dims else 0
        ids = [s.id for s in self.stops]
        if len(set(ids)) != len(ids):
            raise ValueError("stop ids must be unique")
        vehicle_ids = {v.id for v in self.vehicles}
        if len(vehicle_ids) != len(self.vehicles):
            raise ValueError("vehicle ids must be unique")
        by_id = {s.id: s for s in self.stops}
        for v in self.vehicles:
            if not (0 <= v.start < n and 0 <= v.end < n):
                raise ValueError(f"vehicle {v.id} starts or ends outside the matrix")
        deliveries_with_pickup: set[str] = set()
        for s in self.stops:
            if not 0 <= s.location < n:
                raise ValueError(f"stop {s.id} is outside the matrix")
            if s.demand and len(s.demand) != width:
                raise ValueError(f"stop {s.id} has {len(s.demand)} demand dimensions, vehicles have {width}")
            if s.delivers_to is not None:
                partner = by_id.get(s.delivers_to)
                if partner is None or partner.delivers_to is not None or s.delivers_to in deliveries_with_pickup:
                    raise ValueError(f"pickup {s.id} must name one delivery stop that is not itself a pickup")
                deliveries_with_pickup.add(s.delivers_to)
        locked: set[str] = set()
        for lock in self.locks:
            if lock.vehicle not in vehicle_ids:
                raise ValueError(f"lock names unknown vehicle {lock.vehicle}")
            for stop_id in lock.stops:
                if stop_id not in by_id or stop_id in locked:
                    raise ValueError(f"lock stop {stop_id} is unknown or locked twice")
                locked.add(stop_id)

    @property
    def dimensions(self) -> int:
        return len(self.vehicles[0].capacity) if self.vehicles else 0

    def stop(self, stop_id: str) -> Stop:
        return self._stops_by_id[stop_id]

    def vehicle(self, vehicle_id: str) -> Vehicle:
        return self._vehicles_by_id[vehicle_id]

    @property
    def _stops_by_id(self) -> Mapping[str, Stop]:
        cached = self.__dict__.get("_by_stop")
        if cached is None:
            cached = {s.id: s for s in self.stops}
            object.__setattr__(self, "_by_stop", cached)
        return cached

    @property
    def _vehicles_by_id(self) -> Mapping[str, Vehicle]:
        cached = self.__dict__.get("_by_vehicle")
        if cached is None:
            cached = {v.id: v for v in self.vehicles}
            object.__setattr__(self, "_by_vehicle", cached)
        return cached

    def pickup_of(self, delivery_id: str) -> Stop | None:
        pairs = self.__dict__.get("_pairs")
        if pairs is None:
            pairs = {s.delivers_to: s for s in self.stops if s.delivers_to}
            object.__setattr__(self, "_pairs", pairs)
        return pairs.get(delivery_id)

    def reassign(self, stop: Stop, vehicle_id: str) -> int:
        """What serving ``stop`` with ``vehicle_id`` costs on top of travel (moving it off its driver)."""
        if self.reassign_cost and stop.current_vehicle is not None and stop.current_vehicle != vehicle_id:
            return self.reassign_cost
        return 0

    def arc_cost(self, i: int, j: int) -> int:
        m = self.matrix.metres if self.objective == "distance" else self.matrix.seconds
        return m[i][j]


@dataclass(frozen=True)
class Visit:
    stop: str
    arrival: int  # when the vehicle gets there
    start: int  # when service starts (after waiting for the window)
    departure: int


@dataclass(frozen=True)
class Route:
    vehicle: str
    visits: tuple[Visit, ...]
    departure: int  # leaves its start
    arrival: int  # back at its end
    distance_m: int
    duration_s: int

    @property
    def stop_ids(self) -> tuple[str, ...]:
        return tuple(v.stop for v in self.visits)


@dataclass(frozen=True)
class Unassigned:
    stop: str
    code: str
    reason: str


@dataclass(frozen=True)
class Plan:
    routes: tuple[Route, ...]
    unassigned: tuple[Unassigned, ...]
    cost: int  # objective of the served part (distance or duration) plus fixed costs
    distance_m: int
    duration_s: int
    engine: str
    elapsed_s: float
    first_plan_s: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def sequences(self) -> dict[str, tuple[str, ...]]:
        return {r.vehicle: r.stop_ids for r in self.routes}

    @property
    def vehicles_used(self) -> int:
        return sum(1 for r in self.routes if r.visits)

    @property
    def complete(self) -> bool:
        return not self.unassigned
