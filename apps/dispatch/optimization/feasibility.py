"""An independent check of a plan against its problem (pure, no solver, no shared code
with the engines or the scheduler beyond the data classes).

Returns the list of violations in words; an empty list means the plan keeps every
promise the problem makes. Tests run it on every plan they get; ``solve`` runs it on
every engine's output and repairs a plan that fails it rather than return it.
"""

from __future__ import annotations

from .problem import Plan, Problem
from .travel import UNREACHABLE


def check(problem: Problem, plan: Plan, *, whole: bool = True) -> list[str]:
    """``whole=False`` checks the given routes only (the repair step's question about one route)."""
    errors: list[str] = []
    seen: dict[str, str] = {}
    stops = {s.id: s for s in problem.stops}
    vehicles = {v.id: v for v in problem.vehicles}
    seconds, metres = problem.matrix.seconds, problem.matrix.metres
    position: dict[str, tuple[str, int]] = {}

    for route in plan.routes:
        vehicle = vehicles.get(route.vehicle)
        if vehicle is None:
            errors.append(f"route for unknown vehicle {route.vehicle}")
            continue
        if route.departure < vehicle.shift.start:
            errors.append(f"{vehicle.id} leaves at {route.departure}, before its shift starts at {vehicle.shift.start}")
        dims = len(vehicle.capacity)
        # Deliveries loaded at the start are on board until served.
        load = [0] * dims
        for visit in route.visits:
            stop = stops.get(visit.stop)
            if stop is not None and stop.delivers_to is None and problem.pickup_of(stop.id) is None:
                for d in range(min(dims, len(stop.demand))):
                    load[d] += stop.demand[d]
        for d in range(dims):
            if load[d] > vehicle.capacity[d]:
                errors.append(f"{vehicle.id} leaves with {load[d]} in dimension {d}, capacity {vehicle.capacity[d]}")
        clock, here, distance = route.departure, vehicle.start, 0
        for index, visit in enumerate(route.visits):
            stop = stops.get(visit.stop)
            if stop is None:
                errors.append(f"{vehicle.id} visits unknown stop {visit.stop}")
                continue
            if stop.id in seen:
                errors.append(f"stop {stop.id} is served twice ({seen[stop.id]} and {vehicle.id})")
            seen[stop.id] = vehicle.id
            position[stop.id] = (vehicle.id, index)
            if seconds[here][stop.location] >= UNREACHABLE:
                errors.append(f"{vehicle.id} cannot reach stop {stop.id} by road")
            arrival = clock + seconds[here][stop.location]
            start = max(arrival, stop.window.start) if stop.window else arrival
            if (visit.arrival, visit.start) != (arrival, start):
                errors.append(f"stop {stop.id}: reported arrival/start {visit.arrival}/{visit.start}, "
                              f"recomputed {arrival}/{start}")
            if stop.window and start > stop.window.end:
                errors.append(f"stop {stop.id} starts at {start}, after its window closes at {stop.window.end}")
            missing = stop.skills - vehicle.skills
            if missing:
                errors.append(f"stop {stop.id} needs {sorted(missing)}, which {vehicle.id} lacks")
            if stop.pinned_to is not None and stop.pinned_to != vehicle.id:
                errors.append(f"stop {stop.id} is pinned to {stop.pinned_to} but served by {vehicle.id}")
            pickup = problem.pickup_of(stop.id)
            sign = 1 if stop.delivers_to is not None else -1
            demand = pickup.demand if pickup else stop.demand
            for d in range(min(dims, len(demand))):
                load[d] += sign * demand[d]
                if load[d] > vehicle.capacity[d]:
                    errors.append(f"{vehicle.id} carries {load[d]} in dimension {d} after stop {stop.id}, "
                                  f"capacity {vehicle.capacity[d]}")
            distance += metres[here][stop.location]
            clock, here = start + stop.service_s, stop.location
        if route.visits:
            if seconds[here][vehicle.end] >= UNREACHABLE:
                errors.append(f"{vehicle.id} cannot get back to its end by road")
            end = clock + seconds[here][vehicle.end]
            distance += metres[here][vehicle.end]
            if end > vehicle.shift.end:
                errors.append(f"{vehicle.id} is back at {end}, after its shift ends at {vehicle.shift.end}")
            if end != route.arrival or distance != route.distance_m:
                errors.append(f"{vehicle.id}: reported end/distance {route.arrival}/{route.distance_m}, "
                              f"recomputed {end}/{distance}")

    if not whole:
        return errors
    for stop in problem.stops:
        if stop.delivers_to is None:
            continue
        p, d = position.get(stop.id), position.get(stop.delivers_to)
        if (p is None) != (d is None):
            errors.append(f"pickup {stop.id} and delivery {stop.delivers_to} are not planned together")
        elif p is not None and d is not None and (p[0] != d[0] or p[1] > d[1]):
            errors.append(f"pickup {stop.id} is not before delivery {stop.delivers_to} on one vehicle")

    # A locked stop may be left out (with a reason) when it cannot be kept; if it is
    # served, the locked stops served come first on their vehicle, in lock order.
    for lock in problem.locks:
        served_ids = [sid for sid in lock.stops if sid in seen]
        route = next((r for r in plan.routes if r.vehicle == lock.vehicle), None)
        prefix = list(route.stop_ids[: len(served_ids)]) if route else []
        if served_ids and prefix != served_ids:
            errors.append(f"{lock.vehicle} does not start with its locked stops {served_ids}")

    unassigned = [u.stop for u in plan.unassigned]
    for stop_id in unassigned:
        if stop_id in seen:
            errors.append(f"stop {stop_id} is both served and unassigned")
    if len(set(unassigned)) != len(unassigned):
        errors.append("a stop is listed as unassigned twice")
    for stop in problem.stops:
        if stop.id not in seen and stop.id not in unassigned:
            errors.append(f"stop {stop.id} is neither served nor unassigned")
    for u in plan.unassigned:
        if not u.reason:
            errors.append(f"unassigned stop {u.stop} has no reason")
    return errors
