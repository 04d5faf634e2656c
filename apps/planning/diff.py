"""The before/after of a replan, for the dispatcher (pure, given the planning input).

Who gets which stop, in which order, and what it costs: distance, driving time, late
visits and visits at risk, both sides timed from where each van is now on the same
matrix, so the numbers compare.
"""

from __future__ import annotations

from typing import Any

from apps.dispatch.optimization.problem import Problem
from apps.dispatch.optimization.schedule import time_route

from .problem_input import PlanningInput, driver_of, order_of

# A visit starting within this long of its window's end is "at risk" in the diff.
AT_RISK_S = 15 * 60


def _metrics(problem: Problem, sequences: dict[str, list[str]]) -> dict[str, Any]:
    distance = duration = late = at_risk = 0
    known = {s.id for s in problem.stops}
    for vid, seq in sequences.items():
        seq = [s for s in seq if s in known]
        if not seq or vid not in {v.id for v in problem.vehicles}:
            continue
        r = time_route(problem, vid, seq)
        distance += r.distance_m
        duration += r.duration_s
        for visit in r.visits:
            window = problem.stop(visit.stop).window
            if window is None:
                continue
            if visit.start > window.end:
                late += 1
            elif visit.start > window.end - AT_RISK_S:
                at_risk += 1
    return {"distance_m": distance, "duration_s": duration, "late": late, "at_risk": at_risk}


def replan_diff(pi: PlanningInput, before_problem: Problem, after: dict[str, list[str]],
                unassigned: list[dict[str, Any]]) -> dict[str, Any]:
    """What the replan changes, for the dispatcher: who gets which stop, in which order, at what cost."""
    before = {vid: list(seq) for vid, seq in pi.current.items()}
    owner_before = {sid: vid for vid, seq in before.items() for sid in seq}
    owner_after = {sid: vid for vid, seq in after.items() for sid in seq}
    moved = []
    for sid, vid in owner_after.items():
        old = owner_before.get(sid)
        if old != vid:
            moved.append({"order_id": order_of(sid), "from_driver_id": driver_of(old) if old and old[0] == "d" else None,
                          "to_driver_id": driver_of(vid)})
    for sid, old in owner_before.items():
        if sid not in owner_after:
            moved.append({"order_id": order_of(sid), "from_driver_id": driver_of(old) if old[0] == "d" else None,
                          "to_driver_id": None})
    routes = []
    for vid in sorted(set(before) | set(after)):
        b, a = before.get(vid, []), after.get(vid, [])
        route = pi.routes.get(vid)
        routes.append({
            "driver_id": driver_of(vid) if vid[0] == "d" else None, "route_id": route.pk if route else None,
            "before": [order_of(s) for s in b], "after": [order_of(s) for s in a],
            "sequence_changed": [s for s in b if s in a] != [s for s in a if s in b],
        })
    return {
        "moved": moved, "routes": routes, "unassigned": unassigned,
        "before": _metrics(before_problem, before), "after": _metrics(before_problem, after),
    }


