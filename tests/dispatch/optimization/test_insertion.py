"""A replan starts from the current plan: the missing stops are inserted at once,
and the engine improves from there."""

from __future__ import annotations

import pytest

from apps.dispatch.optimization.build import build
from apps.dispatch.optimization.insertion import insert_missing
from apps.dispatch.optimization.problem import Lock, Problem, Stop, Window
from apps.dispatch.optimization.solve import solve

from .helpers import feasible, plane, random_problem, van

LINE = plane([(0, 0), (100, 0), (200, 0), (300, 0), (150, 0)])


def test_a_missing_stop_goes_where_it_costs_least_and_keeps_every_window():
    problem = Problem(vehicles=(van("v"),), stops=(Stop("a", 1), Stop("c", 3), Stop("b", 4, window=Window(0, 1_000))),
                      matrix=LINE)
    sequences, left = insert_missing(problem, build(problem), {"v": ["a", "c"]}, ["b"])
    assert sequences == {"v": ["a", "b", "c"]} and left == []


def test_a_stop_that_fits_nowhere_is_left_for_the_engine():
    problem = Problem(vehicles=(van("v", capacity=(1,)),), stops=(Stop("a", 1, demand=(1,)), Stop("b", 2, demand=(1,))),
                      matrix=LINE)
    sequences, left = insert_missing(problem, build(problem), {"v": ["a"]}, ["b"])
    assert sequences == {"v": ["a"]} and left == ["b"]


def test_nothing_is_inserted_in_front_of_a_locked_sequence():
    problem = Problem(vehicles=(van("v"),), stops=(Stop("far", 3), Stop("near", 1)), matrix=LINE,
                      locks=(Lock("v", ("far",)),))
    sequences, _ = insert_missing(problem, build(problem), {"v": ["far"]}, ["near"])
    assert sequences["v"][0] == "far"


def test_a_breakdown_replan_has_a_complete_plan_long_before_the_time_limit():
    problem = random_problem(11, stops=60, vehicles=4, windows=True)
    day = feasible(problem, solve(problem, time_limit_s=1.0))
    broken = "v0"
    survivors = tuple(v for v in problem.vehicles if v.id != broken)
    replan_problem = Problem(vehicles=survivors, stops=problem.stops, matrix=problem.matrix)
    current = {vid: list(seq) for vid, seq in day.sequences.items() if vid != broken}
    seen = []
    plan = feasible(replan_problem, solve(replan_problem, time_limit_s=0.5, warm_start=current,
                                          on_progress=lambda p: seen.append(p.engine)))
    assert seen[0] == "insertion"
    assert plan.first_plan_s is not None and plan.first_plan_s < 0.25
    # The engine never hands back something worse than the inserted plan.
    assert len(plan.unassigned) <= len(day.unassigned) + len(day.sequences[broken])


def _breakdown(seed: int):
    problem = random_problem(seed, stops=60, vehicles=4, windows=True)
    day = feasible(problem, solve(problem, time_limit_s=0.5))
    replan_problem = Problem(vehicles=tuple(v for v in problem.vehicles if v.id != "v0"), stops=problem.stops,
                             matrix=problem.matrix)
    return replan_problem, {vid: list(seq) for vid, seq in day.sequences.items() if vid != "v0"}


def test_the_insertion_engine_returns_the_repaired_current_plan_with_the_orphans_in_it():
    problem, current = _breakdown(12)

    plan = feasible(problem, solve(problem, engine="insertion", warm_start=current))

    assert plan.engine == "insertion" and plan.first_plan_s is not None
    # The survivors' stops keep their order; the orphans are slotted in between.
    for route in plan.routes:
        kept = [s for s in route.stop_ids if s in current[route.vehicle]]
        assert kept == current[route.vehicle]


def test_the_insertion_engine_needs_a_current_plan():
    problem, _ = _breakdown(12)
    with pytest.raises(ValueError):
        solve(problem, engine="insertion")


def test_a_route_that_no_longer_holds_is_cut_where_it_breaks():
    from apps.dispatch.optimization.solve import repair

    problem = Problem(vehicles=(van("v", shift=(0, 1_000)),),
                      stops=(Stop("a", 1, window=Window(0, 150)), Stop("b", 2, window=Window(0, 150)),
                             Stop("c", 3, window=Window(0, 1_000))), matrix=LINE)

    kept, removed = repair(problem, {"v": ["a", "b", "c"]})

    assert kept == {"v": ["a", "c"]} and removed == ["b"]  # b's window closed before the van gets there


def test_a_searched_replan_is_never_worse_than_the_inserted_plan():
    problem, current = _breakdown(13)
    inserted = solve(problem, engine="insertion", warm_start=current)

    plan = feasible(problem, solve(problem, time_limit_s=0.3, warm_start=current))

    assert (len(plan.unassigned), plan.cost) <= (len(inserted.unassigned), inserted.cost)
