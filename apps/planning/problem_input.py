"""From rows to the optimizer's problem and back (the adapter between the database and
``apps.dispatch.optimization``).

Times become seconds from midnight of the plan's date in the hub's time zone;
loads become integers per dimension (grams, millilitres, parcels). Stop ids are
``o<order id>``, vehicle ids ``d<driver id>``, so a plan maps straight back to rows.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from apps.dispatch.models import Driver, Hub, Order, Route, StopState
from apps.dispatch.optimization.problem import Lock, Plan, Problem, Unassigned, Vehicle, Window
from apps.dispatch.optimization.problem import Stop as PStop
from apps.dispatch.optimization.travel import Point, TravelTimeProvider, cached_default_provider

DAY_S = 86_400
# A replan moves a stop to another driver only if that saves this much driving: each
# move is a surprise for two drivers (and a reroute on both phones).
REASSIGN_COST_S = 600


def stop_id(order_id: int) -> str:
    return f"o{order_id}"


def vehicle_id(driver_id: int) -> str:
    return f"d{driver_id}"


def order_of(sid: str) -> int:
    return int(sid[1:])


def driver_of(vid: str) -> int:
    return int(vid[1:])


@dataclass
class PlanningInput:
    problem: Problem
    epoch: datetime
    hub: Hub
    drivers: dict[str, Driver]
    orders: dict[str, Order]
    points: list[Point]
    # Orders the optimizer never sees (no coordinates), already with their reason.
    skipped: list[Unassigned] = field(default_factory=list)
    # A replan: the route each vehicle is driving, and its current open sequence.
    routes: dict[str, Route] = field(default_factory=dict)
    current: dict[str, list[str]] = field(default_factory=dict)

    def at(self, seconds: int) -> datetime:
        return self.epoch + timedelta(seconds=seconds)

    def seconds(self, moment: datetime) -> int:
        return int((moment - self.epoch).total_seconds())


def epoch_of(hub: Hub, day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zoneinfo.ZoneInfo(hub.timezone))


def capacity(vehicle) -> tuple[int, int, int]:
    return (int(vehicle.capacity_weight_kg * 1000), int(vehicle.capacity_volume_l * 1000), int(vehicle.capacity_parcels))


def demand(order: Order) -> tuple[int, int, int]:
    return (int(Decimal(order.total_weight_kg) * 1000), int(Decimal(order.total_volume_l) * 1000), int(order.parcel_count))


def _window(order: Order, epoch: datetime) -> Window | None:
    if order.window_start is None and order.window_end is None:
        return None
    start = int((order.window_start - epoch).total_seconds()) if order.window_start else 0
    end = int((order.window_end - epoch).total_seconds()) if order.window_end else 2 * DAY_S
    return Window(max(start, -DAY_S), max(min(end, 3 * DAY_S), max(start, -DAY_S)))


def _shift(driver: Driver, epoch: datetime) -> Window:
    start = driver.shift_start.hour * 3600 + driver.shift_start.minute * 60
    end = driver.shift_end.hour * 3600 + driver.shift_end.minute * 60
    if end <= start:
        end += DAY_S  # a night shift ends the next morning
    return Window(start, end)


def _stop_for(order: Order, location: int, epoch: datetime, *, priority: int | None = None,
              pinned_to: str | None = None) -> PStop:
    return PStop(id=stop_id(order.pk), location=location, service_s=order.service_time_s, window=_window(order, epoch),
                 demand=demand(order), skills=frozenset(order.required_skills or ()),
                 priority=order.priority if priority is None else priority, pinned_to=pinned_to)


def day_input(*, hub: Hub, day: date, drivers: Iterable[Driver], orders: Iterable[Order],
              provider: TravelTimeProvider | None = None, now: datetime | None = None) -> PlanningInput:
    """Plan the day from the hub: every driver with a vehicle starts and ends there,
    no earlier than ``now`` (planning today at noon does not send vans into the morning)."""
    epoch = epoch_of(hub, day)
    earliest = max(0, int((now - epoch).total_seconds())) if now is not None else 0
    points: list[Point] = [(hub.lat, hub.lng)]
    vehicles, by_vehicle = [], {}
    for driver in drivers:
        if driver.current_vehicle is None:
            continue
        vid = vehicle_id(driver.pk)
        by_vehicle[vid] = driver
        v = driver.current_vehicle
        shift = _shift(driver, epoch)
        shift = Window(min(max(shift.start, earliest), shift.end), shift.end)
        vehicles.append(Vehicle(id=vid, start=0, end=0, shift=shift, capacity=capacity(v),
                                skills=frozenset(v.skills or ())))
    stops, by_stop, skipped = [], {}, []
    for order in orders:
        sid = stop_id(order.pk)
        by_stop[sid] = order
        if order.lat is None or order.lng is None:
            skipped.append(Unassigned(sid, "no_coordinates", "The address has no coordinates; geocode or correct it."))
            continue
        points.append((order.lat, order.lng))
        stops.append(_stop_for(order, len(points) - 1, epoch))
    matrix = (provider or cached_default_provider()).matrix(points)
    problem = Problem(vehicles=tuple(vehicles), stops=tuple(stops), matrix=matrix, objective="duration")
    return PlanningInput(problem=problem, epoch=epoch, hub=hub, drivers=by_vehicle, orders=by_stop, points=points,
                         skipped=skipped)


@dataclass(frozen=True)
class Position:
    """Where a vehicle is and from when it is free, for a replan."""

    point: Point
    free_at: datetime


def route_stops_loaded(route: Route) -> list:
    """The route's stops with their orders, in sequence: from a prefetch when the caller
    made one (the replan job reads them once for positions and problem), else queried."""
    cache = getattr(route, "_prefetched_objects_cache", {})
    if "stops" in cache:
        return list(cache["stops"])
    return list(route.stops.select_related("order").order_by("sequence", "id"))


def replan_input(*, hub: Hub, day: date, routes: Sequence[Route], positions: dict[int, Position],
                 unavailable: set[int], extra_orders: Sequence[Order] = (), urgent: set[int] | frozenset[int] = frozenset(),
                 pins: dict[int, str] | None = None, provider: TravelTimeProvider | None = None) -> PlanningInput:
    """Re-plan the open stops of ``routes`` (plus ``extra_orders``) over their drivers.

    Completed and in-progress (arrived) stops are not in the problem: each vehicle
    starts where it is, when it is free. Drivers in ``unavailable`` get no vehicle:
    their open stops go to the others. ``pins`` maps a stop id to "driver" (stays with
    its current driver) or "sequence" (stays with its driver, in its current order,
    before the unpinned stops).
    """
    pins = pins or {}
    epoch = epoch_of(hub, day)
    points: list[Point] = [(hub.lat, hub.lng)]
    vehicles, by_vehicle, by_route, current = [], {}, {}, {}
    stops: list[PStop] = []
    by_stop: dict[str, Order] = {}
    locks = []
    for route in routes:
        driver = route.driver
        open_stops = [s for s in route_stops_loaded(route) if s.state == StopState.PENDING]
        vid = vehicle_id(driver.pk) if driver else f"r{route.pk}"
        current[vid] = [stop_id(s.order_id) for s in open_stops]
        by_route[vid] = route  # every route, also one whose driver is out: its stops leave it
        available = driver is not None and driver.pk not in unavailable and route.vehicle is not None
        if available:
            by_vehicle[vid] = driver
            pos = positions.get(driver.pk) or Position((route.start_lat, route.start_lng), epoch)
            points.append(pos.point)
            start_index = len(points) - 1
            shift = _shift(driver, epoch)
            free = max(shift.start, int((pos.free_at - epoch).total_seconds()))
            vehicles.append(Vehicle(id=vid, start=start_index, end=0, shift=Window(min(free, shift.end), shift.end),
                                    capacity=capacity(route.vehicle), skills=frozenset(route.vehicle.skills or ())))
        sequence_locked = []
        for s in open_stops:
            order = s.order
            sid = stop_id(order.pk)
            if order.lat is None or order.lng is None:
                continue  # stays where it is: the optimizer cannot move what it cannot place
            points.append((order.lat, order.lng))
            pin = pins.get(sid) if available else None
            stop = _stop_for(order, len(points) - 1, epoch, pinned_to=vid if pin else None)
            stops.append(replace(stop, current_vehicle=vid) if available else stop)
            by_stop[sid] = order
            if pin == "sequence":
                sequence_locked.append(sid)
        if sequence_locked:
            locks.append(Lock(vehicle=vid, stops=tuple(sequence_locked)))
    for order in extra_orders:
        sid = stop_id(order.pk)
        if sid in by_stop or order.lat is None or order.lng is None:
            continue
        points.append((order.lat, order.lng))
        stops.append(_stop_for(order, len(points) - 1, epoch, priority=3 if order.pk in urgent else None))
        by_stop[sid] = order
    matrix = (provider or cached_default_provider()).matrix(points)
    problem = Problem(vehicles=tuple(vehicles), stops=tuple(stops), matrix=matrix, locks=tuple(locks), objective="duration",
                      reassign_cost=REASSIGN_COST_S)
    return PlanningInput(problem=problem, epoch=epoch, hub=hub, drivers=by_vehicle, orders=by_stop, points=points,
                         routes=by_route, current=current)


def plan_to_json(pi: PlanningInput, plan: Plan) -> dict[str, Any]:
    """The draft the console shows and ``plan_publish`` turns into routes."""
    routes = []
    for r in plan.routes:
        if not r.visits and r.vehicle not in pi.routes:
            continue
        driver = pi.drivers[r.vehicle]
        route = pi.routes.get(r.vehicle)
        routes.append({
            "driver_id": driver.pk, "driver_name": driver.name,
            "vehicle_id": route.vehicle_id if route else driver.current_vehicle_id,
            "route_id": route.pk if route else None,
            "start": pi.at(r.departure).isoformat(), "end": pi.at(r.arrival).isoformat(),
            "distance_m": r.distance_m, "duration_s": r.duration_s,
            "start_point": list(pi.points[pi.problem.vehicle(r.vehicle).start]),
            "stops": [{
                "order_id": order_of(v.stop), "arrival": pi.at(v.arrival).isoformat(), "start": pi.at(v.start).isoformat(),
                "lat": pi.orders[v.stop].lat, "lng": pi.orders[v.stop].lng,
                "window_end": pi.orders[v.stop].window_end.isoformat() if pi.orders[v.stop].window_end else None,
            } for v in r.visits],
        })
    unassigned = [{"order_id": order_of(u.stop), "code": u.code, "reason": u.reason}
                  for u in [*pi.skipped, *plan.unassigned]]
    return {
        "routes": routes, "unassigned": unassigned,
        "totals": {"routes": sum(1 for r in routes if r["stops"]), "stops": sum(len(r["stops"]) for r in routes),
                   "unassigned": len(unassigned), "distance_m": plan.distance_m, "duration_s": plan.duration_s},
        "engine": plan.engine, "elapsed_s": round(plan.elapsed_s, 3),
        "first_plan_s": None if plan.first_plan_s is None else round(plan.first_plan_s, 3), "notes": list(plan.notes),
    }

