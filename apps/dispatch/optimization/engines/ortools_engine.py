"""OR-Tools routing behind the engine interface.

Supports every constraint of the problem: windows, several capacity dimensions,
skills and pins (allowed vehicles), shifts, pickup-delivery pairs, locked sequences
and warm starts. Choices (docs/optimization.md says which are measured):

* matrices are registered in C++ (``RegisterTransitMatrix``/``RegisterUnaryTransitVector``),
  not as Python callbacks, so local-search moves do not call back into Python;
* every stop is optional with a priority penalty: the research anchors measured that
  with mandatory stops a cold ``PATH_CHEAPEST_ARC`` found no plan at all on R101, R105
  and RC101;
* ``PARALLEL_CHEAPEST_INSERTION`` builds the first plan (it checks windows as it
  inserts; chosen, not swept against the other strategies) and guided local search
  improves it until the time limit.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from ..build import Built
from ..problem import Problem
from . import EngineResult, Progress

# Swept with guided local search on six Solomon instances at 1 s and 5 s
# (bench/ortools_sweep.py, docs/optimization.md): the only strategy that completed all
# six at both budgets with the lowest mean gap (4.4 % and 3.7 %, where
# PARALLEL_CHEAPEST_INSERTION, used before, had 10.6 % and 5.6 %).
FIRST_SOLUTION = "LOCAL_CHEAPEST_INSERTION"
HORIZON_PAD = 1


def solve(problem: Problem, built: Built, *, time_limit_s: float, warm_start: Mapping[str, Sequence[str]] | None = None,
          on_progress: Callable[[Progress], None] | None = None, first_solution: str = FIRST_SOLUTION,
          relax_locks: bool = False) -> EngineResult:
    started = time.perf_counter()
    vehicles = problem.vehicles
    skip = set(built.impossible)
    stops = [s for s in problem.stops if s.id not in skip]
    nv = len(vehicles)
    # Nodes: 0..len(stops)-1 are stops, then one start and one end node per vehicle.
    starts = [len(stops) + 2 * k for k in range(nv)]
    ends = [len(stops) + 2 * k + 1 for k in range(nv)]
    locations = [s.location for s in stops]
    for v in vehicles:
        locations += [v.start, v.end]
    n = len(locations)
    manager = pywrapcp.RoutingIndexManager(n, nv, starts, ends)
    routing = pywrapcp.RoutingModel(manager)
    solver = routing.solver()

    cost_src = problem.matrix.metres if problem.objective == "distance" else problem.matrix.seconds
    secs = problem.matrix.seconds
    service = [s.service_s for s in stops] + [0] * (2 * nv)
    cost_matrix = [[cost_src[a][b] for b in locations] for a in locations]
    time_matrix = [[secs[a][b] + service[i] for b in locations] for i, a in enumerate(locations)]
    if problem.reassign_cost and any(s.current_vehicle for s in stops):
        # A replan: arriving at a stop that is on another driver's route now costs the
        # reassignment, so each vehicle gets its own arc costs.
        for k, v in enumerate(vehicles):
            extra = [problem.reassign(s, v.id) for s in stops] + [0] * (2 * nv)
            matrix = [[c + extra[j] for j, c in enumerate(row)] for row in cost_matrix]
            routing.SetArcCostEvaluatorOfVehicle(routing.RegisterTransitMatrix(matrix), k)
    else:
        routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(cost_matrix))
    for k, v in enumerate(vehicles):
        if v.fixed_cost:
            routing.SetFixedCostOfVehicle(v.fixed_cost, k)

    horizon = max([v.shift.end for v in vehicles] + [s.window.end for s in stops if s.window] + [0]) + HORIZON_PAD
    time_cb = routing.RegisterTransitMatrix(time_matrix)
    routing.AddDimension(time_cb, horizon, horizon, False, "time")
    time_dim = routing.GetDimensionOrDie("time")
    for k, v in enumerate(vehicles):
        time_dim.CumulVar(routing.Start(k)).SetRange(v.shift.start, v.shift.end)
        time_dim.CumulVar(routing.End(k)).SetRange(v.shift.start, v.shift.end)
        routing.AddVariableMinimizedByFinalizer(time_dim.CumulVar(routing.Start(k)))
        routing.AddVariableMinimizedByFinalizer(time_dim.CumulVar(routing.End(k)))
    index_of = {s.id: manager.NodeToIndex(i) for i, s in enumerate(stops)}
    for _i, s in enumerate(stops):
        if s.window:
            time_dim.CumulVar(index_of[s.id]).SetRange(s.window.start, s.window.end)

    # Loads: a plain delivery is on board from the start, so its demand counts
    # down (-d) from a start load the solver picks in [0, capacity]; a pair counts
    # up at its pickup and down at its delivery. Loads stay within [0, capacity]
    # everywhere, which forces the start load to cover every delivery served.
    by_id = {s.id: s for s in stops}
    for d in range(problem.dimensions):
        vector = []
        for s in stops:
            pickup = problem.pickup_of(s.id)
            if s.delivers_to:
                vector.append(s.demand[d] if s.demand else 0)
            else:
                source = pickup if pickup is not None else s
                vector.append(-(source.demand[d] if source.demand else 0))
        vector += [0] * (2 * nv)
        cb = routing.RegisterUnaryTransitVector(vector)
        routing.AddDimensionWithVehicleCapacity(cb, 0, [v.capacity[d] for v in vehicles], False, f"load{d}")

    for s in stops:
        allowed = list(built.allowed[s.id])
        if len(allowed) < nv:
            # SetAllowedVehiclesForIndex's Python binding rejects every list (9.15);
            # restricting the vehicle variable is equivalent (-1: not served).
            routing.VehicleVar(index_of[s.id]).SetValues([-1, *allowed])
    locked = {sid for lock in problem.locks for sid in lock.stops} if not relax_locks else set()
    for s in stops:
        if s.id in locked or (s.delivers_to and s.delivers_to in by_id):
            continue
        pickup = problem.pickup_of(s.id)
        if pickup is not None and pickup.id in by_id:
            continue
        routing.AddDisjunction([index_of[s.id]], built.penalty[s.id])
    for s in stops:
        if s.delivers_to and s.delivers_to in by_id:
            p, q = index_of[s.id], index_of[s.delivers_to]
            routing.AddPickupAndDelivery(p, q)
            solver.Add(routing.VehicleVar(p) == routing.VehicleVar(q))
            solver.Add(time_dim.CumulVar(p) <= time_dim.CumulVar(q))
            if s.id not in locked and s.delivers_to not in locked:
                routing.AddDisjunction([p, q], built.penalty[s.id] + built.penalty[s.delivers_to], 2)
    if not relax_locks:
        vehicle_pos = {v.id: k for k, v in enumerate(vehicles)}
        for lock in problem.locks:
            k = vehicle_pos[lock.vehicle]
            chain = [routing.Start(k)] + [index_of[sid] for sid in lock.stops if sid in index_of]
            for a, b in itertools.pairwise(chain):
                solver.Add(routing.NextVar(a) == b)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, first_solution)
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    remaining = max(0.05, time_limit_s - (time.perf_counter() - started))
    params.time_limit.FromMilliseconds(int(remaining * 1000))

    first_plan: list[float] = []
    deadline = started + time_limit_s

    def on_solution() -> None:
        now = time.perf_counter()
        if not first_plan:
            first_plan.append(now - started)
        if on_progress is not None:
            on_progress(Progress(engine="ortools", elapsed_s=now - started, best_cost=routing.CostVar().Value(),
                                 time_left_s=max(0.0, deadline - now)))

    routing.AddAtSolutionCallback(on_solution)
    routing.CloseModelWithParameters(params)
    assignment = None
    if warm_start:
        routes = []
        for v in vehicles:
            seq = [index_of[sid] for sid in warm_start.get(v.id, ()) if sid in index_of]
            routes.append(seq)
        initial = routing.ReadAssignmentFromRoutes(routes, True)
        if initial is not None:
            assignment = routing.SolveFromAssignmentWithParameters(initial, params)
    if assignment is None:
        assignment = routing.SolveWithParameters(params)
    if assignment is None:
        if problem.locks and not relax_locks:
            # A lock that cannot be kept (its window has passed) must not cost the
            # whole plan: keep the pins, drop the sequence, and say so.
            left = max(0.05, time_limit_s - (time.perf_counter() - started))
            result = solve(problem, built, time_limit_s=left, warm_start=warm_start, on_progress=on_progress,
                           first_solution=first_solution, relax_locks=True)
            return EngineResult(result.sequences, result.dropped, "ortools", result.first_plan_s,
                                (*result.notes, "a locked sequence could not be kept; the lock was relaxed"))
        return EngineResult({}, [s.id for s in stops], "ortools", None, ("OR-Tools found no plan",))
    sequences: dict[str, list[str]] = {}
    served: set[str] = set()
    for k, v in enumerate(vehicles):
        index = routing.Start(k)
        seq = []
        index = assignment.Value(routing.NextVar(index))
        while not routing.IsEnd(index):
            node = manager.IndexToNode(index)
            seq.append(stops[node].id)
            index = assignment.Value(routing.NextVar(index))
        sequences[v.id] = seq
        served.update(seq)
    dropped = [s.id for s in stops if s.id not in served]
    return EngineResult(sequences, dropped, "ortools", first_plan[0] if first_plan else time.perf_counter() - started)

