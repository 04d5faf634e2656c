"""The one entry point: ``solve(problem, time_limit_s=...) -> Plan``. It never fails.

Engine choice (measured, docs/optimization.md): PyVRP for every problem it can
express (everything but locked sequences), OR-Tools for the rest. Whatever an engine
returns is timed by ``schedule`` and re-checked by ``feasibility``; a plan that
breaks a promise is repaired by dropping the offending stops (with a reason), never
returned as is. If an engine raises or finds nothing, the other engine gets the
time that is left; if both fail the plan has no routes and every stop says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Literal

from . import feasibility, reasons
from .build import Built, build
from .engines import EngineResult, Progress
from .insertion import insert_missing
from .problem import Plan, Problem, Unassigned
from .schedule import make_plan, route_cost, time_route

log = logging.getLogger(__name__)

# "insertion": a replan's first plan only (the current plan repaired, the missing
# stops inserted), in milliseconds, without any search.
EngineName = Literal["auto", "pyvrp", "ortools", "insertion"]
# Where PyVRP's search walks from after a warm start (pyvrp_engine.search): "cold" by
# default (better plans at a given CPU budget); "warm" stays near the current plan, for
# a short search that only has to fit in what insertion could not place.
SearchFrom = Literal["cold", "warm"]
# The fallback engine always gets at least this long, even past the budget: a
# plan a little late beats no plan.
MIN_FALLBACK_S = 0.2


def choose_engine(problem: Problem) -> str:
    return "ortools" if problem.locks else "pyvrp"


def _run(name: str, problem: Problem, built: Built, time_limit_s: float, warm_start, on_progress,
         search_from: SearchFrom | None = None) -> EngineResult:
    if name == "pyvrp":
        from .engines import pyvrp_engine

        return pyvrp_engine.solve(problem, built, time_limit_s=time_limit_s, warm_start=warm_start, on_progress=on_progress,
                                  search_from=search_from)
    from .engines import ortools_engine

    return ortools_engine.solve(problem, built, time_limit_s=time_limit_s, warm_start=warm_start, on_progress=on_progress)


def solve(problem: Problem, *, time_limit_s: float = 5.0, engine: EngineName = "auto",
          warm_start: Mapping[str, Sequence[str]] | None = None,
          on_progress: Callable[[Progress], None] | None = None, search_from: SearchFrom | None = None) -> Plan:
    started = time.perf_counter()
    original = problem
    problem, lock_dropped = keep_feasible_locks(problem)
    built = build(problem)
    primary = choose_engine(problem) if engine == "auto" else engine
    order = [primary, "ortools" if primary == "pyvrp" else "pyvrp"]
    if problem.locks:
        order = ["ortools"]  # PyVRP cannot keep a locked sequence
    notes: list[str] = []
    seeded: EngineResult | None = None
    if warm_start is not None:
        seeded = _seed(problem, built, warm_start, started, on_progress)
        warm_start = seeded.sequences
        if engine == "insertion":
            return _finish(original, built, seeded, started, seeded.first_plan_s, notes, lock_dropped)
    elif engine == "insertion":
        raise ValueError("the insertion engine repairs a current plan: pass warm_start")
    for position, name in enumerate(order):
        left = time_limit_s - (time.perf_counter() - started)
        if position > 0:
            left = max(left, MIN_FALLBACK_S)
        offset = time.perf_counter() - started
        try:
            result = _run(name, problem, built, left, warm_start, on_progress, search_from)
        except Exception as exc:  # a solver bug must not cost the dispatcher the plan
            log.exception("engine %s failed", name)
            notes.append(f"{name} failed: {exc}")
            continue
        notes.extend(result.notes)
        if result.first_plan_s is None and len(result.dropped) + len(built.impossible) >= len(problem.stops) > 0:
            continue  # found nothing at all: try the other engine
        first_plan_s = None if result.first_plan_s is None else offset + result.first_plan_s
        if seeded is not None:
            # The inserted plan was ready first; keep it if the engine did no better.
            first_plan_s = seeded.first_plan_s
            if _score(problem, built, seeded) < _score(problem, built, result):
                result = replace(seeded, notes=(*result.notes, f"{name} did not improve on the inserted plan"))
        return _finish(original, built, result, started, first_plan_s, notes, lock_dropped)
    if seeded is not None:
        return _finish(original, built, seeded, started, seeded.first_plan_s, notes, lock_dropped)
    empty = EngineResult({v.id: [] for v in problem.vehicles},
                         [s.id for s in problem.stops if s.id not in built.impossible], "none", None)
    return _finish(original, built, empty, started, None, [*notes, "no engine produced a plan"], lock_dropped)


def _score(problem: Problem, built: Built, result: EngineResult) -> tuple[int, int]:
    """Lower is better: the penalty of what is left out, then the cost of what is served."""
    cost = sum(route_cost(problem, vid, seq) for vid, seq in result.sequences.items())
    return (sum(built.penalty.get(s, 0) for s in result.dropped), cost)


def _seed(problem: Problem, built: Built, warm_start: Mapping[str, Sequence[str]], started: float,
          on_progress: Callable[[Progress], None] | None) -> EngineResult:
    """The current plan, repaired where it no longer holds, with the missing stops
    inserted: a complete plan in milliseconds, and the engine's warm start."""
    known = {s.id for s in problem.stops} - set(built.impossible)
    vehicles = {v.id for v in problem.vehicles}
    current = {vid: [s for s in seq if s in known] for vid, seq in warm_start.items() if vid in vehicles}
    # Locked stops lead their vehicle's route, in lock order, wherever they were.
    for lock in problem.locks:
        locked = set(lock.stops)
        for vid in current:
            current[vid] = [s for s in current[vid] if s not in locked]
        current[lock.vehicle] = [*lock.stops, *current.get(lock.vehicle, [])]
    kept, _removed = repair(problem, current)
    served = {s for seq in kept.values() for s in seq}
    missing = [s.id for s in problem.stops if s.id in known and s.id not in served]
    sequences, left = insert_missing(problem, built, kept, missing)
    elapsed = time.perf_counter() - started
    if on_progress is not None:
        on_progress(Progress(engine="insertion", elapsed_s=elapsed, best_cost=None, time_left_s=0.0, unassigned=len(left)))
    return EngineResult(sequences, left, "insertion", elapsed)


LOCK_BROKEN = Unassigned(stop="", code="lock_unkeepable",
                         reason="It is locked into a sequence that cannot be kept (its window or the shift would be"
                                " missed); change or remove the lock.")


def keep_feasible_locks(problem: Problem) -> tuple[Problem, list[str]]:
    """Cut each lock at its first stop that cannot be kept even on an otherwise empty route.

    Those stops (and their pair partners) leave the problem and are reported as
    unassigned with the lock as the reason: moving a stop the dispatcher locked
    would break a promise silently; leaving it out says so.
    """
    if not problem.locks:
        return problem, []
    dropped: list[str] = []
    locks = []
    for lock in problem.locks:
        kept: list[str] = []
        for sid in lock.stops:
            if _route_ok(problem, lock.vehicle, [*kept, sid], partial=True):
                kept.append(sid)
            else:
                break
        dropped += [sid for sid in lock.stops if sid not in kept]
        if kept:
            locks.append(replace(lock, stops=tuple(kept)))
    for sid in list(dropped):
        stop = problem.stop(sid)
        pickup = problem.pickup_of(sid)
        for partner in (stop.delivers_to, pickup.id if pickup else None):
            if partner and partner not in dropped:
                dropped.append(partner)
    if not dropped:
        return problem, []
    gone = set(dropped)
    locks = [replace(lock, stops=tuple(s for s in lock.stops if s not in gone)) for lock in locks]
    return replace(problem, stops=tuple(s for s in problem.stops if s.id not in gone),
                   locks=tuple(lock for lock in locks if lock.stops)), dropped


def _finish(problem: Problem, built: Built, result: EngineResult, started: float, first_plan_s: float | None,
            notes: list[str], lock_dropped: Sequence[str] = ()) -> Plan:
    sequences = {k: list(v) for k, v in result.sequences.items()}
    dropped = [*built.impossible, *result.dropped]
    locked_out = [replace(LOCK_BROKEN, stop=sid) for sid in lock_dropped]
    plan = _plan(problem, sequences, dropped, result.engine, started, first_plan_s, notes, locked_out)
    errors = feasibility.check(problem, plan)
    if errors:
        log.warning("engine %s returned a plan that breaks %d rule(s); repairing: %s", result.engine, len(errors), errors[:5])
        sequences, removed = repair(problem, sequences)
        plan = _plan(problem, sequences, [*dropped, *removed], result.engine, started, first_plan_s,
                     [*notes, f"repaired: {len(removed)} stop(s) removed"], locked_out)
    return plan


def _plan(problem: Problem, sequences, dropped: Sequence[str], engine: str, started: float,
          first_plan_s: float | None, notes: Sequence[str], extra: Sequence[Unassigned] = ()) -> Plan:
    unassigned: list[Unassigned] = [*extra, *reasons.explain_all(problem, list(dict.fromkeys(dropped)))]
    return make_plan(problem, sequences, unassigned, engine=engine, elapsed_s=time.perf_counter() - started,
                     first_plan_s=first_plan_s, notes=notes)


def repair(problem: Problem, sequences: Mapping[str, Sequence[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """Keep, route by route and in order, each stop that the route can still take; drop the rest.

    Always ends feasible (an empty route is), at the cost of the dropped stops.
    """
    kept: dict[str, list[str]] = {}
    removed: list[str] = []
    seen: set[str] = set()
    for vehicle in problem.vehicles:
        whole = list(sequences.get(vehicle.id, ()))
        if whole and not seen.intersection(whole) and len(set(whole)) == len(whole) and _route_ok(
                problem, vehicle.id, whole):
            # The common case in a replan: the route still holds as it is. One check
            # instead of one per prefix (the prefix walk was most of the first plan's
            # time: bench/replan.py, 200 stops).
            kept[vehicle.id] = whole
            seen.update(whole)
            continue
        route: list[str] = []
        for sid in sequences.get(vehicle.id, ()):
            stop = problem.stop(sid)
            if sid in seen or (problem.pickup_of(sid) and problem.pickup_of(sid).id not in route):
                removed.append(sid)
                continue
            candidate = [*route, sid]
            if stop.delivers_to:
                # Judge a pickup together with its delivery placed right after it.
                later = [x for x in sequences.get(vehicle.id, ()) if x == stop.delivers_to]
                if not later:
                    removed.append(sid)
                    continue
            if _route_ok(problem, vehicle.id, candidate if not stop.delivers_to else [*candidate, stop.delivers_to]):
                route.append(sid)
                seen.add(sid)
            else:
                removed.append(sid)
        # A pickup kept without its delivery is undone.
        for sid in list(route):
            s = problem.stop(sid)
            if s.delivers_to and s.delivers_to not in route:
                route.remove(sid)
                removed.append(sid)
        # Without the triangle inequality (road matrices) removing a stop can make a
        # later one late; shorten from the end until the route holds.
        while route and not _route_ok(problem, vehicle.id, route):
            removed.append(route.pop())
            for sid in list(route):
                s = problem.stop(sid)
                if s.delivers_to and s.delivers_to not in route:
                    route.remove(sid)
                    removed.append(sid)
        kept[vehicle.id] = route
    served = {s for r in kept.values() for s in r}
    removed = [s for s in dict.fromkeys(removed) if s not in served]
    return kept, removed


def _route_ok(problem: Problem, vehicle_id: str, stop_ids: Sequence[str], partial: bool = False) -> bool:
    """Does this one route keep every promise (checked alone: pairs and locks across routes aside)?"""
    route = time_route(problem, vehicle_id, stop_ids)
    sub = Plan(routes=(route,), unassigned=(), cost=0, distance_m=0, duration_s=0, engine="repair", elapsed_s=0)
    return not [e for e in feasibility.check(problem, sub, whole=False) if not (partial and "pinned" in e)]
