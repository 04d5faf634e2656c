"""Cheapest feasible insertion of missing stops into existing routes (pure).

A replan starts from the current plan with some stops missing (the broken-down
van's, an urgent order). Inserting each at its cheapest feasible place gives a
complete plan in milliseconds, which the console can show at once and the engine
then improves. Measured in the breakdown scenario (docs/performance.md): a
complete plan for 200 stops in tens of milliseconds, and a better warm start for
the engine than the routes with holes.

Feasibility per insertion is O(1) with the classic "latest start" arrays: for
each stop, the latest its service may start without making any later visit late
or the vehicle back after its shift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .build import Built
from .problem import Problem


def _arrays(problem: Problem, vehicle_id: str, seq: list[str]) -> tuple[list[int], list[int], list[int]]:
    """Departure after each position (0 = the vehicle's start), and the latest start allowed at each
    position 1..n+1 (n+1 = back at the end), and the location of each position."""
    v = problem.vehicle(vehicle_id)
    secs = problem.matrix.seconds
    locs = [v.start] + [problem.stop(s).location for s in seq] + [v.end]
    departs = [v.shift.start]
    clock = v.shift.start
    for k, sid in enumerate(seq, start=1):
        stop = problem.stop(sid)
        clock += secs[locs[k - 1]][locs[k]]
        if stop.window:
            clock = max(clock, stop.window.start)
        clock += stop.service_s
        departs.append(clock)
    latest = [0] * (len(seq) + 2)
    latest[len(seq) + 1] = v.shift.end
    for k in range(len(seq), 0, -1):
        stop = problem.stop(seq[k - 1])
        bound = latest[k + 1] - secs[locs[k]][locs[k + 1]] - stop.service_s
        latest[k] = min(stop.window.end, bound) if stop.window else bound
    return departs, latest, locs


def insert_missing(problem: Problem, built: Built, sequences: Mapping[str, Sequence[str]],
                   missing: Sequence[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Insert ``missing`` plain stops (most important and tightest windows first) at
    their cheapest feasible position. Returns the new sequences and what did not fit."""
    routes = {v.id: list(sequences.get(v.id, ())) for v in problem.vehicles}
    position = {v.id: k for k, v in enumerate(problem.vehicles)}
    secs = problem.matrix.seconds
    cost = problem.matrix.metres if problem.objective == "distance" else problem.matrix.seconds
    loads: dict[str, list[int]] = {}
    for vid, seq in routes.items():
        total = [0] * problem.dimensions
        for sid in seq:
            for d, q in enumerate(problem.stop(sid).demand):
                total[d] += q
        loads[vid] = total
    cache = {vid: _arrays(problem, vid, seq) for vid, seq in routes.items()}
    # Nothing goes in front of (or between) a vehicle's locked stops.
    first_free = dict.fromkeys(routes, 1)
    for lock in problem.locks:
        first_free[lock.vehicle] = len(lock.stops) + 1

    def urgency(sid: str) -> tuple:
        s = problem.stop(sid)
        return (-s.priority, s.window.end if s.window else 1 << 60)

    left: list[str] = []
    for sid in sorted(missing, key=urgency):
        stop = problem.stop(sid)
        if stop.delivers_to or problem.pickup_of(sid) is not None:
            left.append(sid)  # pairs are the engine's job
            continue
        best = None
        for vid, seq in routes.items():
            if position[vid] not in built.allowed.get(sid, ()):
                continue
            vehicle = problem.vehicle(vid)
            load = loads[vid]
            if any(load[d] + q > c for d, (q, c) in enumerate(zip(stop.demand, vehicle.capacity, strict=False))):
                continue
            departs, latest, locs = cache[vid]
            for k in range(first_free[vid], len(seq) + 2):  # insert before position k
                p, q = locs[k - 1], locs[k]
                arrival = departs[k - 1] + secs[p][stop.location]
                start = max(arrival, stop.window.start) if stop.window else arrival
                if stop.window and start > stop.window.end:
                    continue
                if start + stop.service_s + secs[stop.location][q] > latest[k]:
                    continue
                delta = cost[p][stop.location] + cost[stop.location][q] - cost[p][q] + problem.reassign(stop, vid)
                if not seq and vehicle.fixed_cost:
                    delta += vehicle.fixed_cost
                if best is None or delta < best[0]:
                    best = (delta, vid, k)
        if best is None:
            left.append(sid)
            continue
        _, vid, k = best
        routes[vid].insert(k - 1, sid)
        for d, q in enumerate(stop.demand):
            loads[vid][d] += q
        cache[vid] = _arrays(problem, vid, routes[vid])
    return routes, left
