"""Why a stop was left out, in words a dispatcher can act on (pure).

Engines only say *that* a stop was dropped; this module works out *why* by checking
the stop against each vehicle on its own, from the most specific reason to the most
general. A stop that some vehicle could serve alone was dropped for lack of room or
time on the day, and the message says so.
"""

from __future__ import annotations

from .problem import Problem, Stop, Unassigned, Vehicle
from .travel import UNREACHABLE

PRIORITY_NAMES = {0: "low", 1: "normal", 2: "high", 3: "urgent"}


def _fits_alone(problem: Problem, vehicle: Vehicle, stop: Stop) -> str | None:
    """None if ``vehicle`` could serve ``stop`` (and its pair partner) on an otherwise empty route,
    else the first reason it cannot."""
    s = problem.matrix.seconds
    pickup = problem.pickup_of(stop.id)
    partner = problem.stop(stop.delivers_to) if stop.delivers_to else pickup
    chain = [stop] if partner is None else ([stop, partner] if stop.delivers_to else [partner, stop])
    if any(c.pinned_to not in (None, vehicle.id) for c in chain):
        return "pinned"
    if any(c.skills - vehicle.skills for c in chain):
        return "skills"
    demand = (pickup or stop).demand if partner else stop.demand
    if any(d > c for d, c in zip(demand, vehicle.capacity, strict=False)):
        return "capacity"
    here, clock = vehicle.start, vehicle.shift.start
    for c in chain:
        if s[here][c.location] >= UNREACHABLE:
            return "unreachable"
        clock += s[here][c.location]
        if c.window is not None:
            if clock > c.window.end:
                return "window"
            clock = max(clock, c.window.start)
        clock += c.service_s
        here = c.location
    if s[here][vehicle.end] >= UNREACHABLE:
        return "unreachable"
    if clock + s[here][vehicle.end] > vehicle.shift.end:
        return "shift"
    return None


_MESSAGES = {
    "no_vehicle": ("no_vehicle", "There is no vehicle in the plan."),
    "pinned": ("pinned_vehicle_unavailable", "It is pinned to a driver who is not in this plan."),
    "skills": ("skill_missing", "No vehicle has the skills it needs ({skills})."),
    "capacity": ("over_capacity", "Its load is larger than any vehicle's capacity."),
    "unreachable": ("unreachable", "No vehicle can reach it by road."),
    "window": ("window_unreachable", "No vehicle can reach it inside its window."),
    "shift": ("shift_too_short", "No vehicle can serve it and get back before its shift ends."),
}


_ORDER = ["pinned", "skills", "capacity", "unreachable", "window", "shift"]


def explain(problem: Problem, stop_id: str, dropped: set[str] | frozenset[str] = frozenset()) -> Unassigned:
    stop = problem.stop(stop_id)
    if not problem.vehicles:
        code, text = _MESSAGES["no_vehicle"]
        return Unassigned(stop=stop_id, code=code, reason=text)
    found = [_fits_alone(problem, v, stop) for v in problem.vehicles]
    if None in found:
        partner = stop.delivers_to or (problem.pickup_of(stop_id).id if problem.pickup_of(stop_id) else None)
        priority = PRIORITY_NAMES.get(stop.priority, str(stop.priority))
        return Unassigned(
            stop=stop_id, code="no_room",
            reason=("Every vehicle that could take it is full or out of time with stops of equal or higher priority"
                    f" (this one is {priority}); add a vehicle or widen its window."
                    + (f" Its pair partner {partner} could not be placed either." if partner in dropped else "")),
        )
    # Each vehicle fails for its own reason; name the one of the vehicle that came
    # closest (pins and skills fail first, shifts last), which is the one to fix.
    worst = max(found, key=_ORDER.index)
    code, text = _MESSAGES[worst]
    if worst == "skills":
        text = text.format(skills=", ".join(sorted(stop.skills)))
    return Unassigned(stop=stop_id, code=code, reason=text)


def explain_all(problem: Problem, stop_ids: list[str] | tuple[str, ...]) -> list[Unassigned]:
    dropped = set(stop_ids)
    return [explain(problem, s, dropped) for s in stop_ids]
