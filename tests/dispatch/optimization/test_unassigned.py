"""The optimizer never fails: what it cannot serve comes back with a reason, the least
important stops go first, and a broken engine costs time, not the plan."""

from __future__ import annotations

import pytest

from apps.dispatch.optimization import solve as solve_module
from apps.dispatch.optimization.feasibility import check
from apps.dispatch.optimization.problem import Plan, Problem, Route, Stop, Visit, Window
from apps.dispatch.optimization.solve import repair, solve
from apps.dispatch.optimization.travel import UNREACHABLE, Matrix

from .helpers import ENGINES, feasible, plane, reasons, van

LINE = plane([(0, 0), (100, 0), (200, 0), (300, 0)])


@pytest.mark.parametrize("engine", ENGINES)
def test_each_impossible_stop_says_why(engine):
    stops = (
        Stop("skill", 1, skills=frozenset({"hazmat"})),
        Stop("heavy", 1, demand=(500,)),
        Stop("too_early", 3, window=Window(0, 50)),
        Stop("pinned", 2, pinned_to="ghost"),
        Stop("fine", 2, demand=(1,)),
    )
    problem = Problem(vehicles=(van("v", capacity=(100,)),), stops=stops, matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    assert reasons(plan) == {"skill": "skill_missing", "heavy": "over_capacity", "too_early": "window_unreachable",
                             "pinned": "pinned_vehicle_unavailable"}
    by_stop = {u.stop: u.reason for u in plan.unassigned}
    assert by_stop["too_early"] == "No vehicle can reach it inside its window."
    assert "hazmat" in by_stop["skill"]
    assert plan.sequences["v"] == ("fine",)


def test_a_stop_the_road_network_cannot_reach_is_unassigned_as_unreachable():
    m = Matrix(seconds=[[0, 10, UNREACHABLE], [10, 0, UNREACHABLE], [UNREACHABLE, UNREACHABLE, 0]],
               metres=[[0, 10, UNREACHABLE], [10, 0, UNREACHABLE], [UNREACHABLE, UNREACHABLE, 0]])
    problem = Problem(vehicles=(van("v"),), stops=(Stop("island", 2), Stop("ok", 1)), matrix=m)
    plan = feasible(problem, solve(problem, time_limit_s=0.3))
    assert reasons(plan) == {"island": "unreachable"}


@pytest.mark.parametrize("engine", ENGINES)
def test_when_the_fleet_is_full_the_lowest_priority_stop_is_dropped(engine):
    # Room for two of three identical stops: the low-priority one stays behind.
    stops = (Stop("urgent", 1, demand=(1,), priority=3), Stop("low", 1, demand=(1,), priority=0),
             Stop("normal", 1, demand=(1,), priority=1))
    problem = Problem(vehicles=(van("v", capacity=(2,)),), stops=stops, matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    assert reasons(plan) == {"low": "no_room"}
    assert "low" in plan.unassigned[0].reason


def test_a_problem_without_vehicles_is_a_plan_with_everything_unassigned():
    problem = Problem(vehicles=(), stops=(Stop("a", 1),), matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.2))
    assert reasons(plan) == {"a": "no_vehicle"}


def test_a_crashing_engine_falls_back_to_the_other(monkeypatch):
    real = solve_module._run

    def flaky(name, *args):
        if name == "pyvrp":
            raise RuntimeError("solver crashed")
        return real(name, *args)

    monkeypatch.setattr(solve_module, "_run", flaky)
    problem = Problem(vehicles=(van("v"),), stops=(Stop("a", 1), Stop("b", 2)), matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3))
    assert plan.engine == "ortools" and plan.complete
    assert any("pyvrp failed" in n for n in plan.notes)


def test_an_engine_plan_that_breaks_a_window_is_repaired_not_returned(monkeypatch):
    from apps.dispatch.optimization.engines import EngineResult

    # An engine that ignores windows: b (window closes at 150) is visited after c.
    monkeypatch.setattr(solve_module, "_run",
                        lambda name, *a: EngineResult({"v": ["c", "b"]}, [], name, 0.01))
    problem = Problem(vehicles=(van("v"),), stops=(Stop("b", 1, window=Window(0, 150)), Stop("c", 3)), matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.2))
    assert plan.sequences["v"] == ("c",)
    assert reasons(plan) == {"b": "no_room"}
    assert any("repaired" in n for n in plan.notes)


def test_repair_keeps_pairs_whole():
    problem = Problem(vehicles=(van("v", capacity=(10,)),),
                      stops=(Stop("p", 1, demand=(50,), delivers_to="d"), Stop("d", 2, demand=(50,)), Stop("x", 3)),
                      matrix=LINE)
    kept, removed = repair(problem, {"v": ["p", "x", "d"]})
    assert kept == {"v": ["x"]}
    assert set(removed) == {"p", "d"}


def test_the_checker_is_not_vacuous():
    """Hand-made plans that break each rule are each caught."""
    problem = Problem(vehicles=(van("v", capacity=(5,), shift=(0, 300)),),
                      stops=(Stop("a", 1, window=Window(0, 50), demand=(3,)), Stop("b", 2, demand=(3,)),
                             Stop("p", 1, delivers_to="q"), Stop("q", 2)),
                      matrix=LINE)

    def plan_of(ids, *, arrival_fudge=0):
        clock, here, visits = 0, 0, []
        for sid in ids:
            loc = problem.stop(sid).location
            arrival = clock + LINE.seconds[here][loc] + arrival_fudge
            visits.append(Visit(sid, arrival, arrival, arrival))
            clock, here = arrival, loc
        end = clock + LINE.seconds[here][0]
        dist = sum(LINE.metres[a][b] for a, b in zip([0, *[problem.stop(s).location for s in ids]],
                                                       [*[problem.stop(s).location for s in ids], 0], strict=True))
        return Plan(routes=(Route("v", tuple(visits), 0, end, dist, end),), unassigned=(), cost=0, distance_m=dist,
                    duration_s=end, engine="hand", elapsed_s=0)

    errors = " | ".join(check(problem, plan_of(["a", "b", "q", "p"])))
    assert "after its window closes" in errors  # a at 100 > 50
    assert "leaves with 6" in errors  # 3 + 3 over capacity 5
    assert "is not before delivery" in errors
    assert "after its shift ends" in errors  # back at 400, shift ends at 300
    errors = " | ".join(check(problem, plan_of(["b", "p", "q", "b"])))
    assert "served twice" in errors and "neither served nor unassigned" in errors
    assert "recomputed" in " ".join(check(problem, plan_of(["b"], arrival_fudge=7)))
