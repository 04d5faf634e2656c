"""What every engine needs from a problem, derived once (pure).

Drop penalties by priority, who may serve whom, and which stops are impossible for
everyone (those never reach a solver: they are unassigned with a reason up front).
"""

from __future__ import annotations

from dataclasses import dataclass

from .problem import Problem, Stop, Vehicle
from .reasons import _fits_alone
from .travel import UNREACHABLE

# Each priority step makes dropping a stop this many times dearer, so the optimizer
# gives up any number of low-priority stops (up to this factor) before one urgent one.
PRIORITY_FACTOR = 20


@dataclass(frozen=True)
class Built:
    penalty: dict[str, int]  # the cost of leaving a stop out
    allowed: dict[str, tuple[int, ...]]  # vehicle positions that may serve the stop
    impossible: tuple[str, ...]  # no vehicle can serve these, even alone
    max_arc: int


def eligible(vehicle: Vehicle, stop: Stop) -> bool:
    return not (stop.skills - vehicle.skills) and stop.pinned_to in (None, vehicle.id)


def build(problem: Problem) -> Built:
    cost = problem.matrix.metres if problem.objective == "distance" else problem.matrix.seconds
    locations = sorted({s.location for s in problem.stops} | {v.start for v in problem.vehicles}
                       | {v.end for v in problem.vehicles})
    max_arc = 1
    for i in locations:
        row = cost[i]
        for j in locations:
            if row[j] < UNREACHABLE and row[j] > max_arc:
                max_arc = row[j]
    # Serving a stop costs at most two of the longest arcs plus a vehicle's fixed cost:
    # a penalty above that makes every servable stop worth serving.
    base = 2 * max_arc + max((v.fixed_cost for v in problem.vehicles), default=0) + 1
    penalty = {s.id: base * PRIORITY_FACTOR ** max(0, min(3, s.priority)) for s in problem.stops}
    allowed: dict[str, tuple[int, ...]] = {}
    impossible: list[str] = []
    for s in problem.stops:
        fits = tuple(k for k, v in enumerate(problem.vehicles) if _fits_alone(problem, v, s) is None)
        allowed[s.id] = fits
        if not fits:
            impossible.append(s.id)
    # A pair stands or falls together.
    for s in problem.stops:
        if s.delivers_to and (s.id in impossible) != (s.delivers_to in impossible):
            for x in (s.id, s.delivers_to):
                if x not in impossible:
                    impossible.append(x)
    return Built(penalty=penalty, allowed=allowed, impossible=tuple(impossible), max_arc=max_arc)
