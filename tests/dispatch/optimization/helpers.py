"""Small problems on a plane: point i at (x, y), one second and one metre per unit."""

from __future__ import annotations

import math
import random

from apps.dispatch.optimization.feasibility import check
from apps.dispatch.optimization.problem import Plan, Problem, Stop, Vehicle, Window
from apps.dispatch.optimization.travel import Matrix

ENGINES = ["pyvrp", "ortools"]


def plane(points: list[tuple[float, float]]) -> Matrix:
    m = [[round(math.dist(a, b)) for b in points] for a in points]
    return Matrix(seconds=m, metres=[row[:] for row in m])


def feasible(problem: Problem, plan: Plan, engine: str | None = None) -> Plan:
    """Assert the independent checker finds nothing wrong (and, if named, that this engine
    made the plan rather than a fallback), and hand the plan back."""
    errors = check(problem, plan)
    assert errors == [], errors
    if engine is not None:
        assert plan.engine in (engine, "insertion"), (plan.engine, plan.notes)
    return plan


def served_by(plan: Plan) -> dict[str, str]:
    return {sid: r.vehicle for r in plan.routes for sid in r.stop_ids}


def reasons(plan: Plan) -> dict[str, str]:
    return {u.stop: u.code for u in plan.unassigned}


def van(vid: str, *, capacity: tuple[int, ...] = (100,), shift: tuple[int, int] = (0, 100_000), at: int = 0,
        skills: frozenset[str] = frozenset(), end: int | None = None) -> Vehicle:
    return Vehicle(id=vid, start=at, end=at if end is None else end, shift=Window(*shift), capacity=capacity,
                   skills=skills)


def random_problem(seed: int, *, stops: int = 40, vehicles: int = 4, windows: bool = True) -> Problem:
    rng = random.Random(seed)
    points = [(50.0, 50.0)] + [(rng.uniform(0, 100), rng.uniform(0, 100)) for _ in range(stops)]
    out = []
    for i in range(1, stops + 1):
        window = None
        if windows:
            start = rng.randrange(0, 600)
            window = Window(start, start + rng.randrange(60, 300))
        out.append(Stop(id=f"s{i}", location=i, service_s=10, window=window, demand=(rng.randrange(1, 10),)))
    return Problem(vehicles=tuple(van(f"v{k}", capacity=(60,), shift=(0, 1_000)) for k in range(vehicles)),
                   stops=tuple(out), matrix=plane(points))
