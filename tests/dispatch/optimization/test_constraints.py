"""Each promise the problem makes is kept in the plan, by each engine, and checked
independently of the solver (feasibility.check)."""

from __future__ import annotations

import pytest

from apps.dispatch.optimization.problem import Lock, Problem, Stop, Window
from apps.dispatch.optimization.solve import solve

from .helpers import ENGINES, feasible, plane, random_problem, reasons, served_by, van

LINE = plane([(0, 0), (100, 0), (200, 0), (300, 0), (0, 100), (100, 100), (200, 100)])


@pytest.mark.parametrize("engine", ENGINES)
def test_every_stop_is_served_inside_its_window(engine):
    # Visiting in index order would be shortest, but the windows force 3 before 1.
    stops = (
        Stop("one", 1, service_s=10, window=Window(500, 600)),
        Stop("two", 2, service_s=10, window=Window(600, 700)),
        Stop("three", 3, service_s=10, window=Window(0, 320)),
    )
    problem = Problem(vehicles=(van("v"),), stops=stops, matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    visits = {v.stop: v for r in plan.routes for v in r.visits}
    assert plan.complete
    for stop in stops:
        assert stop.window.start <= visits[stop.id].start <= stop.window.end
    assert plan.sequences["v"].index("three") < plan.sequences["v"].index("one")


@pytest.mark.parametrize("engine", ENGINES)
def test_no_vehicle_carries_more_than_its_capacity_in_any_dimension(engine):
    # Weight fits three stops per van, volume two: the volume dimension decides.
    stops = tuple(Stop(f"s{i}", i, demand=(10, 40)) for i in range(1, 7))
    problem = Problem(vehicles=(van("a", capacity=(30, 80)), van("b", capacity=(30, 80)), van("c", capacity=(30, 80))),
                      stops=stops, matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    assert plan.complete
    assert all(len(r.visits) <= 2 for r in plan.routes)


@pytest.mark.parametrize("engine", ENGINES)
def test_stops_that_need_a_skill_go_to_the_vehicle_that_has_it(engine):
    stops = (Stop("cold", 1, skills=frozenset({"refrigerated"})), Stop("plain", 6),
             Stop("lift", 3, skills=frozenset({"tail_lift"})))
    fleet = (van("fridge", skills=frozenset({"refrigerated"})), van("lifter", skills=frozenset({"tail_lift"})))
    problem = Problem(vehicles=fleet, stops=stops, matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    assert served_by(plan)["cold"] == "fridge"
    assert served_by(plan)["lift"] == "lifter"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_vehicle_is_back_before_its_shift_ends(engine):
    # The far stop (300 away and back) does not fit a 500 s shift; the near ones do.
    stops = (Stop("near", 1, service_s=50), Stop("far", 3, service_s=50))
    problem = Problem(vehicles=(van("short", shift=(0, 500)),), stops=stops, matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    assert plan.sequences["short"] == ("near",)
    assert reasons(plan) == {"far": "shift_too_short"}
    assert plan.routes[0].arrival <= 500


@pytest.mark.parametrize("engine", ENGINES)
def test_a_mid_day_vehicle_starts_where_it_is_when_it_is_free(engine):
    # The van is at point 3 from t=1000: nothing is served before then, travel counts from there.
    stops = (Stop("x", 2, window=Window(0, 5_000)),)
    problem = Problem(vehicles=(van("late", at=3, end=0, shift=(1_000, 10_000)),), stops=stops, matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    visit = plan.routes[0].visits[0]
    assert visit.arrival == 1_100  # 100 units from point 3 to point 2
    assert plan.routes[0].arrival == visit.departure + 200


@pytest.mark.parametrize("engine", ENGINES)
def test_a_pickup_comes_before_its_delivery_on_the_same_vehicle(engine):
    stops = (
        Stop("pick", 3, demand=(50,), delivers_to="drop"),
        Stop("drop", 1, demand=(50,)),
        Stop("parcel", 2, demand=(60,)),
    )
    # 110 units do not fit in 100 at once; the pair's load is only on board between its two stops.
    problem = Problem(vehicles=(van("v", capacity=(100,)),), stops=stops, matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    seq = plan.sequences["v"]
    assert set(seq) == {"pick", "drop", "parcel"}
    assert seq.index("pick") < seq.index("drop")
    assert seq.index("parcel") < seq.index("pick")  # the depot parcel is gone before the pickup


@pytest.mark.parametrize("engine", ENGINES)
def test_a_stop_pinned_to_a_driver_stays_with_that_driver(engine):
    stops = (Stop("mine", 1, pinned_to="far_van"), Stop("other", 2))
    problem = Problem(vehicles=(van("near_van"), van("far_van", at=6, end=6)), stops=stops, matrix=LINE)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    assert served_by(plan)["mine"] == "far_van"


def test_a_locked_sequence_is_kept_even_when_it_is_longer():
    # Point order 3, 1, 2 is worse than 1, 2, 3; the lock says 3 then 1 first.
    stops = (Stop("a", 1), Stop("b", 2), Stop("c", 3))
    problem = Problem(vehicles=(van("v"), van("w")), stops=stops, matrix=LINE, locks=(Lock("v", ("c", "a")),))
    plan = feasible(problem, solve(problem, time_limit_s=0.3))
    assert plan.engine == "ortools"
    assert plan.sequences["v"][:2] == ("c", "a")


def test_a_lock_that_cannot_be_kept_leaves_its_stop_out_with_the_reason():
    stops = (Stop("a", 1, window=Window(0, 150)), Stop("c", 3))
    problem = Problem(vehicles=(van("v"),), stops=stops, matrix=LINE, locks=(Lock("v", ("c", "a")),))
    plan = feasible(problem, solve(problem, time_limit_s=0.3))
    assert plan.sequences["v"][:1] == ("c",)
    assert reasons(plan) == {"a": "lock_unkeepable"}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_warm_start_from_the_current_plan_is_used_and_kept_feasible(engine):
    problem = random_problem(3)
    first = feasible(problem, solve(problem, time_limit_s=0.5, engine=engine), engine)
    again = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine, warm_start=first.sequences), engine)
    # Starting from a plan, the search can only keep or improve what it was given.
    assert len(again.unassigned) <= len(first.unassigned)
    assert (len(again.unassigned), again.cost) <= (len(first.unassigned), first.cost) or again.cost <= first.cost * 1.02


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("engine", ENGINES)
def test_random_problems_give_feasible_plans_that_account_for_every_stop(engine, seed):
    problem = random_problem(seed, stops=30, vehicles=3)
    plan = feasible(problem, solve(problem, time_limit_s=0.3, engine=engine), engine)
    assert {u.stop for u in plan.unassigned} | set(served_by(plan)) == {s.id for s in problem.stops}
    assert all(u.reason for u in plan.unassigned)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_replan_keeps_stops_with_their_driver_unless_moving_saves_more_than_the_reassignment(engine):
    # Two vans at the depot; "x" sits on van b's route although serving it next to
    # near_a would be cheaper: with a reassignment cost above the saving it stays with b.
    pts = plane([(0, 0), (100, 0), (110, 0), (0, 100)])
    stops = (Stop("near_a", 1, current_vehicle="a"), Stop("x", 2, current_vehicle="b"),
             Stop("near_b", 3, current_vehicle="b"))
    sticky = Problem(vehicles=(van("a"), van("b")), stops=stops, matrix=pts, reassign_cost=500)
    now = {"a": ["near_a"], "b": ["x", "near_b"]}
    plan = feasible(sticky, solve(sticky, time_limit_s=0.3, engine=engine, warm_start=now), engine)
    assert served_by(plan) == {"near_a": "a", "x": "b", "near_b": "b"}
    # Without the cost, x joins near_a (it is 10 away from it): the cheaper plan moves it.
    free = Problem(vehicles=(van("a"), van("b")), stops=stops, matrix=pts)
    plan = feasible(free, solve(free, time_limit_s=0.3, engine=engine, warm_start=now), engine)
    assert served_by(plan)["x"] == served_by(plan)["near_a"]
