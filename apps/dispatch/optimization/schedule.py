"""Turn stop sequences into timed routes (pure).

Every engine returns sequences only; this one module times them, so the plans of
different engines are timed, costed and compared the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .problem import Plan, Problem, Route, Unassigned, Visit


def _forward(problem: Problem, vehicle_id: str, stop_ids: Sequence[str], departure: int) -> tuple[list[Visit], int]:
    vehicle = problem.vehicle(vehicle_id)
    seconds = problem.matrix.seconds
    clock, here = departure, vehicle.start
    visits = []
    for stop_id in stop_ids:
        stop = problem.stop(stop_id)
        arrival = clock + seconds[here][stop.location]
        start = max(arrival, stop.window.start) if stop.window else arrival
        clock = start + stop.service_s
        visits.append(Visit(stop=stop_id, arrival=arrival, start=start, departure=clock))
        here = stop.location
    return visits, clock + seconds[here][vehicle.end]


def time_route(problem: Problem, vehicle_id: str, stop_ids: Sequence[str]) -> Route:
    """Time a route, leaving as late as possible without making any visit later.

    Leaving at the shift start and waiting at the first window would count the
    wait as working time; a driver simply leaves later. The delay is the smallest
    of the total waiting and each visit's slack before its window closes.
    """
    vehicle = problem.vehicle(vehicle_id)
    visits, end = _forward(problem, vehicle_id, stop_ids, vehicle.shift.start)
    waited, delay = 0, None
    for visit in visits:
        waited += visit.start - visit.arrival
        window = problem.stop(visit.stop).window
        if window is not None:
            slack = waited + max(0, window.end - visit.start)
            delay = slack if delay is None else min(delay, slack)
    delay = waited if delay is None else min(delay, waited)
    delay = max(0, min(delay, vehicle.shift.end - end + waited)) if end <= vehicle.shift.end else 0
    departure = vehicle.shift.start + delay
    if delay:
        visits, end = _forward(problem, vehicle_id, stop_ids, departure)
    metres = problem.matrix.metres
    distance, here = 0, vehicle.start
    for stop_id in stop_ids:
        location = problem.stop(stop_id).location
        distance += metres[here][location]
        here = location
    distance += metres[here][vehicle.end] if stop_ids else 0
    if not stop_ids:
        end = departure
    return Route(vehicle=vehicle_id, visits=tuple(visits), departure=departure, arrival=end,
                 distance_m=distance, duration_s=end - departure)


def route_cost(problem: Problem, vehicle_id: str, stop_ids: Sequence[str]) -> int:
    """The objective's cost of one route (travel plus the vehicle's fixed cost if used)."""
    if not stop_ids:
        return 0
    vehicle = problem.vehicle(vehicle_id)
    cost, here = vehicle.fixed_cost, vehicle.start
    for stop_id in stop_ids:
        stop = problem.stop(stop_id)
        cost += problem.arc_cost(here, stop.location) + problem.reassign(stop, vehicle_id)
        here = stop.location
    return cost + problem.arc_cost(here, vehicle.end)


def make_plan(problem: Problem, sequences: Mapping[str, Sequence[str]], unassigned: Sequence[Unassigned], *,
              engine: str, elapsed_s: float, first_plan_s: float | None = None, notes: Sequence[str] = ()) -> Plan:
    routes = tuple(time_route(problem, v.id, sequences.get(v.id, ())) for v in problem.vehicles)
    return Plan(
        routes=routes, unassigned=tuple(unassigned),
        cost=sum(route_cost(problem, r.vehicle, r.stop_ids) for r in routes),
        distance_m=sum(r.distance_m for r in routes),
        duration_s=sum(r.duration_s for r in routes),
        engine=engine, elapsed_s=elapsed_s, first_plan_s=first_plan_s, notes=tuple(notes),
    )
