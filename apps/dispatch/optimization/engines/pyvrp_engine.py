"""PyVRP (iterated local search, MIT) behind the engine interface.

Supports windows, several capacity dimensions, shifts, per-vehicle start and end
places, pickup-delivery pairs (shipments), optional stops with prizes and warm
starts. Skills and pins become routing profiles: each set of vehicles that may not
serve some stops gets a copy of the matrix in which those stops cost a fortune to
reach (every stop has its own location, so forbidding one forbids nothing else);
the independent check catches the rare plan that pays it anyway. Locked sequences
are not supported: ``solve`` sends those problems to OR-Tools.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import numpy as np
import pyvrp
from pyvrp.stop import MaxRuntime

from ..build import Built
from ..problem import Problem
from . import EngineResult, Progress

# Reaching a stop a vehicle may not serve costs this much: far above any prize
# (build.py keeps those below ~1e9), far below int64 overflow on a route's sum.
FORBIDDEN = 10**12
PROGRESS_EVERY_S = 0.25
SEARCH_START: Literal["cold", "warm"] = "cold"


def _amount(demand: tuple[int, ...], dims: int) -> list[int]:
    """A stop without a demand weighs nothing in every dimension (PyVRP wants them all)."""
    return list(demand) if demand else [0] * dims


class _Stop:
    """PyVRP's stopping criterion, which it calls with the best cost after every iteration."""

    def __init__(self, started: float, limit_s: float, on_progress: Callable[[Progress], None] | None) -> None:
        self.started, self.limit_s, self.on_progress = started, limit_s, on_progress
        self.runtime = MaxRuntime(max(0.0, limit_s - (time.perf_counter() - started)))
        self.first_plan_s: float | None = None
        self.last_report = 0.0

    def __call__(self, best_cost: float) -> bool:
        now = time.perf_counter()
        if self.first_plan_s is None and best_cost < float("inf"):
            self.first_plan_s = now - self.started
        if self.on_progress is not None and now - self.last_report >= PROGRESS_EVERY_S:
            self.last_report = now
            self.on_progress(Progress(engine="pyvrp", elapsed_s=now - self.started,
                                      best_cost=None if best_cost == float("inf") else int(best_cost),
                                      time_left_s=max(0.0, self.started + self.limit_s - now)))
        return self.runtime(best_cost)


def solve(problem: Problem, built: Built, *, time_limit_s: float, warm_start: Mapping[str, Sequence[str]] | None = None,
          on_progress: Callable[[Progress], None] | None = None, seed: int = 0,
          search_from: Literal["cold", "warm"] | None = None) -> EngineResult:
    started = time.perf_counter()
    skip = set(built.impossible)
    stops = [s for s in problem.stops if s.id not in skip]
    if not stops or not problem.vehicles:
        return EngineResult({v.id: [] for v in problem.vehicles}, [s.id for s in stops], "pyvrp", 0.0)
    dims = problem.dimensions

    depot_locations = sorted({v.start for v in problem.vehicles} | {v.end for v in problem.vehicles})
    depot_index = {loc: i for i, loc in enumerate(depot_locations)}
    loc_map = list(depot_locations)  # PyVRP location -> our matrix location
    plain = [s for s in stops if not s.delivers_to and problem.pickup_of(s.id) is None]
    pairs = [s for s in stops if s.delivers_to]
    stop_location: dict[str, int] = {}
    clients = []
    for s in plain:
        stop_location[s.id] = len(loc_map)
        loc_map.append(s.location)
        clients.append(pyvrp.Client(
            location=stop_location[s.id], delivery=_amount(s.demand, dims), service_duration=s.service_s,
            tw_early=s.window.start if s.window else 0,
            tw_late=s.window.end if s.window else np.iinfo(np.int64).max,
            prize=built.penalty[s.id], required=False, name=s.id,
        ))
    shipments = []
    for p in pairs:
        q = problem.stop(p.delivers_to)
        for x in (p, q):
            stop_location[x.id] = len(loc_map)
            loc_map.append(x.location)
        shipments.append(pyvrp.Shipment(
            pickup_location=stop_location[p.id], delivery_location=stop_location[q.id],
            pickup_tw_early=p.window.start if p.window else 0,
            pickup_tw_late=p.window.end if p.window else np.iinfo(np.int64).max,
            pickup_service_duration=p.service_s,
            delivery_tw_early=q.window.start if q.window else 0,
            delivery_tw_late=q.window.end if q.window else np.iinfo(np.int64).max,
            delivery_service_duration=q.service_s, amount=_amount(p.demand, dims),
            prize=built.penalty[p.id] + built.penalty[q.id], required=False, name=p.id,
        ))

    index = np.asarray(loc_map)
    cost_src = problem.matrix.metres if problem.objective == "distance" else problem.matrix.seconds
    cost = np.asarray(cost_src, dtype=np.int64)[np.ix_(index, index)]
    duration = np.asarray(problem.matrix.seconds, dtype=np.int64)[np.ix_(index, index)]
    # Service times count from a vehicle's point of view in the duration matrix only
    # through the clients' service_duration; the diagonal must be zero.
    np.fill_diagonal(cost, 0)
    np.fill_diagonal(duration, 0)

    # A profile per distinct (forbidden stops, stops that cost a reassignment): skills
    # and pins forbid, a replan's "stay with your driver" charges on arrival.
    profiles: dict[tuple[frozenset[int], frozenset[int]], int] = {(frozenset(), frozenset()): 0}
    vehicle_profile = []
    for k, v in enumerate(problem.vehicles):
        forbidden = frozenset(stop_location[s.id] for s in stops if k not in built.allowed[s.id])
        moved = frozenset(stop_location[s.id] for s in stops if problem.reassign(s, v.id))
        vehicle_profile.append(profiles.setdefault((forbidden, moved), len(profiles)))
    distance_matrices, duration_matrices = [], []
    for forbidden, moved in profiles:
        if forbidden or moved:
            c, d = cost.copy(), duration.copy()
            if moved:
                c[:, sorted(moved)] += problem.reassign_cost
            if forbidden:
                c[:, sorted(forbidden)] = FORBIDDEN
                d[:, sorted(forbidden)] = FORBIDDEN
            np.fill_diagonal(c, 0)
            np.fill_diagonal(d, 0)
            distance_matrices.append(c)
            duration_matrices.append(d)
        else:
            distance_matrices.append(cost)
            duration_matrices.append(duration)

    # Identical vehicles share a vehicle type; routes map back to them in order.
    type_key: dict[tuple, int] = {}
    type_members: list[list[str]] = []
    vehicle_types = []
    for k, v in enumerate(problem.vehicles):
        key = (v.start, v.end, v.shift, v.capacity, v.fixed_cost, vehicle_profile[k])
        if key not in type_key:
            type_key[key] = len(type_members)
            type_members.append([])
            vehicle_types.append({
                "capacity": list(v.capacity), "start_depot": depot_index[v.start], "end_depot": depot_index[v.end],
                "fixed_cost": v.fixed_cost, "tw_early": v.shift.start, "tw_late": v.shift.end, "profile": vehicle_profile[k],
            })
        type_members[type_key[key]].append(v.id)
    data = pyvrp.ProblemData(
        locations=[pyvrp.Location(0, 0) for _ in loc_map],
        clients=clients,
        depots=[pyvrp.Depot(location=i) for i in range(len(depot_locations))],
        vehicle_types=[pyvrp.VehicleType(num_available=len(members), **spec)
                       for members, spec in zip(type_members, vehicle_types, strict=True)],
        distance_matrices=distance_matrices, duration_matrices=duration_matrices, shipments=shipments,
    )

    initial = None
    if warm_start:
        initial = _initial_solution(data, problem, warm_start, plain, pairs, type_key, type_members, vehicle_profile)
    stop = _Stop(started, time_limit_s, on_progress)
    if search_from is None:
        # Where moving a stop to another driver costs (a replan), the current plan is
        # worth staying near: walking from it found a 3-10 % cheaper plan than the cold
        # walk at 0.2-0.5 CPU s in bench/replan.py's end-to-end fleet. Where it costs
        # nothing, the cold walk converges better (docs/optimization.md).
        charged = problem.reassign_cost and any(s.current_vehicle is not None for s in stops)
        search_from = "warm" if charged else SEARCH_START
    best = search(data, stop, seed=seed, warm=initial, start=search_from)
    sequences: dict[str, list[str]] = {v.id: [] for v in problem.vehicles}
    notes: tuple[str, ...] = ()
    if not best.is_feasible():
        # The search never found a plan within every constraint: report nothing
        # served, and let the caller fall back.
        return EngineResult(sequences, [s.id for s in stops], "pyvrp", None, ("PyVRP found no feasible plan",))
    next_member = [0] * len(type_members)
    for route in best.routes():
        t = route.vehicle_type()
        vehicle_id = type_members[t][next_member[t]]
        next_member[t] += 1
        seq = []
        for activity in route:
            if activity.is_client():
                seq.append(plain[activity.idx].id)
            elif activity.is_pickup():
                seq.append(pairs[activity.idx].id)
            elif activity.is_delivery():
                seq.append(pairs[activity.idx].delivers_to)
        sequences[vehicle_id] = seq
    served = {sid for seq in sequences.values() for sid in seq}
    return EngineResult(sequences, [s.id for s in stops if s.id not in served], "pyvrp",
                        stop.first_plan_s if stop.first_plan_s is not None else time.perf_counter() - started, notes)


def search(data: pyvrp.ProblemData, stop: Callable[[float], bool], *, seed: int = 0,
           warm: pyvrp.Solution | None = None, start: Literal["cold", "warm"] | None = None) -> pyvrp.Solution:
    """PyVRP's iterated local search (late-acceptance hill climbing) as ``pyvrp.solve``
    runs it (same operators, penalties and parameters), except for where it starts.

    Handed a good plan (a replan's inserted plan) as its initial solution, PyVRP's loop
    walks from that plan and measured worse than PyVRP from scratch at the same CPU
    budget: 0.35 % vs 0.08 % above the best found at 5 CPU s in the breakdown scenario
    (docs/optimization.md). So by default (``start="cold"``) the walk starts where PyVRP
    starts without one, and the warm plan is only the best so far: the result is never
    worse than the warm plan, and the search is PyVRP's cold search. ``start="warm"``
    walks from the warm plan (PyVRP's own behaviour): the right walk for a short search
    that must stay close to the drivers' current routes (a replan's first plan).
    """
    from pyvrp import PenaltyManager, RandomNumberGenerator, Solution
    from pyvrp.search import LocalSearch, PerturbationManager, compute_neighbours
    from pyvrp.solve import SolveParams

    start = start or SEARCH_START
    params = SolveParams()
    rng = RandomNumberGenerator(seed=seed)
    ls = LocalSearch(data, rng, compute_neighbours(data, params.neighbourhood), PerturbationManager(params.perturbation))
    for op in params.operators:
        if op.supports(data):
            ls.add_operator(op(data))
    pm = PenaltyManager(params.penalty.midpoint_penalties(data), params.penalty)
    ils = params.ils
    if warm is not None and start == "warm":
        curr = warm
    else:
        curr = ls(Solution.make_random(data, rng), pm.max_cost_evaluator(), exhaustive=True)
    init = curr
    best = curr
    cost_eval = pm.cost_evaluator()
    if warm is not None and warm.is_feasible() and (not best.is_feasible() or cost_eval.cost(warm) <= cost_eval.cost(best)):
        best = warm
    history: list = [None] * ils.history_length
    idx = stale = 0
    while not stop(cost_eval.cost(best)):
        if stale == ils.num_iters_no_improvement:
            history, idx, stale, curr = [None] * ils.history_length, 0, 0, best
        stale += 1
        cost_eval = pm.cost_evaluator()
        cand = ls(curr, cost_eval, exhaustive=False)
        pm.register(cand)
        if cost_eval.cost(cand) < cost_eval.cost(best):
            best, stale = cand, 0
            if ils.exhaustive_on_best:
                cand = ls(cand, cost_eval, exhaustive=True)
                if cand.is_feasible():
                    best = cand
        cand_cost = cost_eval.penalised_cost(cand)
        curr_cost = cost_eval.penalised_cost(curr)
        late = history[idx % len(history)]
        late_cost = cost_eval.penalised_cost(late if late is not None else init)
        if cand_cost < late_cost or cand_cost < curr_cost:
            curr, curr_cost = cand, cand_cost
        if late is None or curr_cost < late_cost:
            history[idx % len(history)] = curr
        idx += 1
    return best


def _initial_solution(data, problem: Problem, warm_start: Mapping[str, Sequence[str]], plain, pairs,
                      type_key, type_members, vehicle_profile):
    client_of = {s.id: i for i, s in enumerate(plain)}
    pickup_of = {s.id: i for i, s in enumerate(pairs)}
    delivery_of = {s.delivers_to: i for i, s in enumerate(pairs)}
    type_of = {vid: t for t, members in enumerate(type_members) for vid in members}
    routes = []
    for v in problem.vehicles:
        activities = []
        seen_pickups: set[int] = set()
        for sid in warm_start.get(v.id, ()):
            if sid in client_of:
                activities.append(pyvrp.Activity(pyvrp.ActivityType.CLIENT, client_of[sid]))
            elif sid in pickup_of:
                seen_pickups.add(pickup_of[sid])
                activities.append(pyvrp.Activity(pyvrp.ActivityType.PICKUP, pickup_of[sid]))
            elif sid in delivery_of and delivery_of[sid] in seen_pickups:
                activities.append(pyvrp.Activity(pyvrp.ActivityType.DELIVERY, delivery_of[sid]))
        # A pickup whose delivery is not on the same route would be an invalid warm start.
        delivered = {a.idx for a in activities if a.is_delivery()}
        activities = [a for a in activities if not (a.is_pickup() and a.idx not in delivered)]
        if activities:
            routes.append(pyvrp.Route(data, activities, type_of[v.id]))
    try:
        return pyvrp.Solution(data, routes)
    except (RuntimeError, ValueError, IndexError):
        return None  # an unusable warm start is not worth failing over: start cold
