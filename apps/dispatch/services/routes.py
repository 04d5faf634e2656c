"""Route writes: build a route from orders, change its stops, and move it through its life."""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.common.exceptions import BusinessRuleViolation, Conflict, ValidationFailed
from apps.events import types as ev
from apps.events.services import NewEvent, events_record

from .. import timing
from ..inputs import RouteIn, RoutePatch
from ..lifecycle import ROUTE_EDITABLE_STATUSES, order_transition, route_transition
from ..models import (
    Driver,
    Hub,
    Order,
    OrderState,
    Route,
    RouteStatus,
    Stop,
    StopKind,
    StopOutcome,
    StopState,
    Vehicle,
)

DEFAULT_START = time(8, 0)


def _route_payload(route: Route, **extra: Any) -> dict[str, Any]:
    return {
        "route_id": route.pk, "status": route.status, "version": route.version, "date": route.date.isoformat(),
        "driver_id": route.driver_id, "vehicle_id": route.vehicle_id, **extra,
    }


def _resolve(actor: Actor, model: type, pk: int | None, field: str, errors: dict[str, list[str]]) -> Any:
    if pk is None:
        return None
    obj = model.objects.filter(org=actor.org, pk=pk).first()
    if obj is None:
        errors[field] = [f"No such {model._meta.verbose_name}."]
    return obj


def _resolve_orders(actor: Actor, ids: Sequence[int]) -> list[Order]:
    if len(set(ids)) != len(ids):
        raise ValidationFailed({"orders": ["An order appears more than once."]})
    found = {o.pk: o for o in Order.objects.select_for_update(no_key=True).filter(org=actor.org, pk__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationFailed({"orders": [f"No such order: {', '.join(map(str, missing))}."]})
    return [found[i] for i in ids]


def check_vehicle_fits(vehicle: Vehicle | None, orders: Sequence[Order]) -> None:
    """Raise ``BusinessRuleViolation`` if the orders exceed the vehicle or need skills it lacks."""
    if vehicle is None:
        return
    loads = {
        "weight_kg": (sum((o.total_weight_kg for o in orders), Decimal(0)), vehicle.capacity_weight_kg),
        "volume_l": (sum((o.total_volume_l for o in orders), Decimal(0)), vehicle.capacity_volume_l),
        "parcels": (sum(o.parcel_count for o in orders), vehicle.capacity_parcels),
    }
    for dimension, (load, capacity) in loads.items():
        if load > capacity:
            raise BusinessRuleViolation(
                f"The orders need {load} {dimension} but {vehicle} carries {capacity}.",
                code="capacity_exceeded", dimension=dimension, load=str(load), capacity=str(capacity),
            )
    skills = set(vehicle.skills)
    for order in orders:
        missing = sorted(set(order.required_skills) - skills)
        if missing:
            raise BusinessRuleViolation(
                f"Order {order.pk} needs {', '.join(missing)}, which {vehicle} does not have.",
                code="skill_missing", order_id=order.pk, skills=missing,
            )


def _default_start(hub: Hub, day: date, driver: Driver | None) -> datetime:
    tz = zoneinfo.ZoneInfo(hub.timezone)
    return datetime.combine(day, driver.shift_start if driver else DEFAULT_START, tzinfo=tz)


def route_schedule(route: Route, *, now: datetime | None = None, events: list[NewEvent] | None = None) -> None:
    """Recompute the times of the route's pending stops.

    Without ``now`` this is planning: pending stops get a new ``planned_arrival``
    (and ``eta``) from the route's planned start. With ``now`` the plan is kept and
    only ``eta`` moves: the remaining stops are timed from the last visit, or from
    now if that is later, so a driver running late shows up as late.

    On a dispatched route (published or in progress) the ETAs then come from the ETA
    engine (``apps.eta``): from the driver's live position, with late-risk alerts,
    which join ``events`` (the caller's batch) when given.
    """
    from apps.eta.services import eta_route_refresh

    active = route.status in (RouteStatus.PUBLISHED, RouteStatus.IN_PROGRESS)
    if now is not None and active:
        eta_route_refresh(route=route, now=now, events=events)
        return
    stops = list(route.stops.select_related("order").order_by("sequence", "id"))
    if route.planned_start is None:
        route.planned_start = _default_start(route.hub, route.date, route.driver)
    clock, origin = route.planned_start, (route.start_lat, route.start_lng)
    if now is not None:
        clock = max(clock, now)
    pending = []
    for stop in stops:
        if stop.state == StopState.PENDING:
            pending.append(stop)
        elif stop.state != StopState.CANCELLED:
            clock = max(clock, stop.completed_at or stop.arrived_at or clock)
            if stop.order.lat is not None:
                origin = (stop.order.lat, stop.order.lng)
    visits = [timing.Visit(s.order.lat, s.order.lng, s.order.service_time_s, s.order.window_start) for s in pending]
    arrivals = timing.schedule(clock, origin, visits)
    for stop, arrival in zip(pending, arrivals, strict=True):
        stop.eta = arrival
        if now is None:
            stop.planned_arrival = arrival
    Stop.objects.bulk_update(pending, ["eta"] if now is not None else ["planned_arrival", "eta"])
    if now is not None:
        return
    if active:
        eta_route_refresh(route=route, events=events)
    if pending:
        last = pending[-1]
        back = timing.travel_seconds(last.order.lat or route.end_lat, last.order.lng or route.end_lng,
                                     route.end_lat, route.end_lng)
        route.planned_end = arrivals[-1] + timedelta(seconds=last.order.service_time_s + back)
    elif route.planned_end is None:
        route.planned_end = route.planned_start


def _advance_order_to_route(order: Order, route: Route) -> list[str]:
    """Plan an order onto ``route`` and bring it to the state the route's other orders are in."""
    steps = ["plan"]
    if route.status in (RouteStatus.PUBLISHED, RouteStatus.IN_PROGRESS):
        steps.append("dispatch")
    if route.status == RouteStatus.IN_PROGRESS:
        steps.append("start")
    for step in steps:
        order_transition(order, step)
    return steps


_ORDER_STEP_EVENTS = {"plan": ev.ORDER_PLANNED, "dispatch": ev.ORDER_DISPATCHED, "start": ev.ORDER_OUT_FOR_DELIVERY,
                      "unplan": ev.ORDER_UNPLANNED, "recall": ev.ORDER_PLANNED}


def _order_event(step: str, order: Order, route: Route) -> NewEvent:
    return NewEvent(_ORDER_STEP_EVENTS[step], "order", order.pk,
                    {"order_id": order.pk, "external_id": order.external_id, "state": order.state, "route_id": route.pk})


@transaction.atomic
def route_create(*, actor: Actor, data: RouteIn) -> Route:
    errors: dict[str, list[str]] = {}
    hub = _resolve(actor, Hub, data.hub, "hub", errors)
    driver = _resolve(actor, Driver, data.driver, "driver", errors)
    vehicle = _resolve(actor, Vehicle, data.vehicle, "vehicle", errors)
    if errors:
        raise ValidationFailed(errors)
    orders = _resolve_orders(actor, data.orders)
    check_vehicle_fits(vehicle, orders)
    route = Route.objects.create(
        org=actor.org, hub=hub, driver=driver, vehicle=vehicle, date=date.fromisoformat(data.date), name=data.name,
        start_lat=hub.lat, start_lng=hub.lng, end_lat=hub.lat, end_lng=hub.lng, planned_start=data.planned_start,
    )
    events = [NewEvent(ev.ROUTE_CREATED, "route", route.pk, _route_payload(route, stop_count=len(orders)))]
    stops = []
    for sequence, order in enumerate(orders, start=1):
        for step in _advance_order_to_route(order, route):
            events.append(_order_event(step, order, route))
        stops.append(Stop(org=actor.org, order=order, route=route, kind=StopKind.DELIVERY, sequence=sequence))
    _bulk_save_states(orders)
    Stop.objects.bulk_create(stops)
    route_schedule(route)
    route.save()
    events_record(org=actor.org, actor=actor.label, events=events)
    return route


def _locked(route: Route) -> Route:
    return (Route.objects.select_for_update(no_key=True, of=("self",)).select_related("hub", "driver", "vehicle")
            .get(pk=route.pk, org_id=route.org_id))


def _require_editable(route: Route) -> None:
    if route.status not in ROUTE_EDITABLE_STATUSES:
        raise Conflict(f"A {route.status} route cannot be changed.", code="route_not_editable", current_state=route.status)


@transaction.atomic
def route_update(*, actor: Actor, route: Route, patch: RoutePatch) -> Route:
    route = _locked(route)
    _require_editable(route)
    sent = patch.model_fields_set
    errors: dict[str, list[str]] = {}
    if "driver" in sent:
        route.driver = _resolve(actor, Driver, patch.driver, "driver", errors)
    if "vehicle" in sent:
        route.vehicle = _resolve(actor, Vehicle, patch.vehicle, "vehicle", errors)
    if errors:
        raise ValidationFailed(errors)
    if route.status != RouteStatus.DRAFT and (route.driver is None or route.vehicle is None):
        raise BusinessRuleViolation("A published route needs a driver and a vehicle.", code="route_incomplete")
    if "vehicle" in sent:
        check_vehicle_fits(route.vehicle, _open_orders(route))
    if "name" in sent:
        route.name = patch.name or ""
    if "planned_start" in sent:
        route.planned_start = patch.planned_start
    route.version += 1
    events: list[NewEvent] = []
    route_schedule(route, events=events)
    route.save()
    events.insert(0, NewEvent(ev.ROUTE_UPDATED, "route", route.pk, _route_payload(route, changed=sorted(sent))))
    events_record(org=actor.org, actor=actor.label, events=events)
    return route


def _open_orders(route: Route) -> list[Order]:
    return [s.order for s in route.stops.select_related("order").filter(state__in=[StopState.PENDING, StopState.ARRIVED])]


@transaction.atomic
def route_set_stops(*, actor: Actor, route: Route, order_ids: Sequence[int], expected_version: int | None = None) -> Route:
    """Reorder, add and remove the route's pending stops in one step.

    Stops already visited (arrived, completed, cancelled) keep their place at the
    front. ``expected_version`` lets two dispatchers editing the same route find
    out instead of overwriting each other.
    """
    route = _locked(route)
    _require_editable(route)
    if expected_version is not None and expected_version != route.version:
        raise Conflict(
            f"The route changed since you loaded it (version {route.version}, you had {expected_version}).",
            code="version_conflict", current_version=route.version,
        )
    stops = list(route.stops.select_related("order").order_by("sequence", "id"))
    fixed = [s for s in stops if s.state != StopState.PENDING]
    pending_by_order = {s.order_id: s for s in stops if s.state == StopState.PENDING}
    # A failed attempt does not block another: a re-attempt is a new stop (see Stop).
    visited_orders = {s.order_id for s in fixed if s.state != StopState.CANCELLED and s.outcome != StopOutcome.FAILED}
    clash = [i for i in order_ids if i in visited_orders]
    if clash:
        raise ValidationFailed({"orders": [f"Already visited on this route: {', '.join(map(str, clash))}."]})

    new_ids = [i for i in order_ids if i not in pending_by_order]
    new_orders = {o.pk: o for o in _resolve_orders(actor, new_ids)}
    check_vehicle_fits(route.vehicle, [s.order for s in fixed if s.state == StopState.ARRIVED]
                       + [pending_by_order[i].order if i in pending_by_order else new_orders[i] for i in order_ids])

    events: list[NewEvent] = []
    removed = [s for oid, s in pending_by_order.items() if oid not in set(order_ids)]
    for stop in removed:
        order = Order.objects.select_for_update(no_key=True).get(pk=stop.order_id)
        order_transition(order, "unplan")
        order.save(update_fields=["state", "outcome", "updated_at"])
        events.append(_order_event("unplan", order, route))
        stop.delete()
    added = []
    for oid in new_ids:
        order = new_orders[oid]
        for step in _advance_order_to_route(order, route):
            events.append(_order_event(step, order, route))
        order.save(update_fields=["state", "outcome", "updated_at"])
        added.append(Stop(org=actor.org, order=order, route=route, kind=StopKind.DELIVERY))
    Stop.objects.bulk_create(added)
    by_order = {**{s.order_id: s for s in added}, **{oid: s for oid, s in pending_by_order.items() if oid in set(order_ids)}}
    sequence = [*fixed, *(by_order[i] for i in order_ids)]
    for position, stop in enumerate(sequence, start=1):
        stop.sequence = position
    Stop.objects.bulk_update(sequence, ["sequence"])
    route.version += 1
    late: list[NewEvent] = []
    route_schedule(route, events=late)
    route.save()
    events.append(NewEvent(ev.ROUTE_UPDATED, "route", route.pk, _route_payload(
        route, added=new_ids, removed=[s.order_id for s in removed], order_ids=[s.order_id for s in sequence],
    )))
    events.extend(late)
    events_record(org=actor.org, actor=actor.label, events=events)
    return route


def route_bump_version(*, actor: Actor, route_id: int, events: list[NewEvent], reason: str) -> None:
    """Record that a route's stop list changed because of something else (an order was cancelled)."""
    route = (Route.objects.select_for_update(no_key=True, of=("self",)).select_related("hub", "driver")
             .get(pk=route_id, org=actor.org))
    route.version += 1
    late: list[NewEvent] = []
    route_schedule(route, events=late)
    route.save()
    events.append(NewEvent(ev.ROUTE_UPDATED, "route", route.pk, _route_payload(route, reason=reason)))
    events.extend(late)


def _bulk_save_states(orders: Sequence[Order]) -> None:
    # bulk_update does not apply auto_now, so updated_at is set by hand: clients
    # syncing on it must see every state change.
    now = timezone.now()
    for order in orders:
        order.updated_at = now
    Order.objects.bulk_update(orders, ["state", "outcome", "updated_at"])


def _move_orders(route: Route, action: str, events: list[NewEvent], *, from_state: str) -> None:
    orders = [s.order for s in route.stops.select_related("order").filter(state=StopState.PENDING, order__state=from_state)]
    for order in orders:
        order_transition(order, action)
        events.append(_order_event(action, order, route))
    _bulk_save_states(orders)


@transaction.atomic
def route_publish(*, actor: Actor, route: Route) -> Route:
    """Send a planned route to its driver; its orders become dispatched."""
    route = _locked(route)
    if route.status == RouteStatus.DRAFT:
        problems = []
        if route.driver is None:
            problems.append("a driver")
        if route.vehicle is None:
            problems.append("a vehicle")
        if not route.stops.exists():
            problems.append("at least one stop")
        if problems:
            raise BusinessRuleViolation(f"Before publishing, the route needs {' and '.join(problems)}.",
                                        code="route_incomplete")
    route_transition(route, "publish")
    events: list[NewEvent] = []
    _move_orders(route, "dispatch", events, from_state=OrderState.PLANNED)
    route.save()
    # Dispatched: the ETA engine takes over the route's ETAs (its first ETA of the day).
    from apps.eta.services import eta_route_refresh

    late: list[NewEvent] = []
    eta_route_refresh(route=route, events=late)
    events.append(NewEvent(ev.ROUTE_PUBLISHED, "route", route.pk, _route_payload(route)))
    events.extend(late)
    events_record(org=actor.org, actor=actor.label, events=events)
    return route


@transaction.atomic
def route_unpublish(*, actor: Actor, route: Route) -> Route:
    route = _locked(route)
    route_transition(route, "unpublish")
    events: list[NewEvent] = []
    _move_orders(route, "recall", events, from_state=OrderState.DISPATCHED)
    route.save()
    events.append(NewEvent(ev.ROUTE_UPDATED, "route", route.pk, _route_payload(route, reason="unpublished")))
    events_record(org=actor.org, actor=actor.label, events=events)
    return route


def route_begin(*, route: Route, events: list[NewEvent]) -> None:
    """Start a locked, published route: its dispatched orders go out for delivery and
    its driver goes on duty (setting off is the clearest sign of being at work)."""
    route_transition(route, "start")
    route.started_at = timezone.now()
    _move_orders(route, "start", events, from_state=OrderState.DISPATCHED)
    if route.driver is not None and not route.driver.on_duty:
        Driver.objects.filter(pk=route.driver_id).update(on_duty=True, updated_at=route.started_at)
        route.driver.on_duty = True
        events.append(NewEvent(ev.DRIVER_DUTY_CHANGED, "driver", route.driver_id,
                               {"driver_id": route.driver_id, "on_duty": True}))
    route.save()
    # Setting off is the first departure: the first stop's ETA from here is the one its
    # accuracy is measured against.
    late: list[NewEvent] = []
    route_schedule(route, now=route.started_at, events=late)
    events.append(NewEvent(ev.ROUTE_STARTED, "route", route.pk, _route_payload(route)))
    events.extend(late)


@transaction.atomic
def route_start(*, actor: Actor, route: Route) -> Route:
    """The driver leaves the hub."""
    route = _locked(route)
    events: list[NewEvent] = []
    route_begin(route=route, events=events)
    events_record(org=actor.org, actor=actor.label, events=events)
    return route


def route_finish(*, actor: Actor, route: Route, events: list[NewEvent]) -> None:
    """Complete a locked, started route. Caller checks that no stop is open."""
    route_transition(route, "complete")
    route.completed_at = timezone.now()
    route.save()
    events.append(NewEvent(ev.ROUTE_COMPLETED, "route", route.pk, _route_payload(route)))


@transaction.atomic
def route_complete(*, actor: Actor, route: Route) -> Route:
    route = _locked(route)
    open_count = route.stops.filter(state__in=[StopState.PENDING, StopState.ARRIVED]).count()
    if route.status == RouteStatus.IN_PROGRESS and open_count:
        raise BusinessRuleViolation(f"{open_count} stop(s) are still open; complete, fail or remove them first.",
                                    code="open_stops", open_stops=open_count)
    events: list[NewEvent] = []
    route_finish(actor=actor, route=route, events=events)
    events_record(org=actor.org, actor=actor.label, events=events)
    return route


@transaction.atomic
def route_delete(*, actor: Actor, route: Route) -> None:
    """Only a draft can be deleted; its orders return to the planning pool."""
    route = _locked(route)
    if route.status != RouteStatus.DRAFT:
        raise Conflict(f"Only draft routes can be deleted; this one is {route.status}. Unpublish it first.",
                       code="route_not_draft", current_state=route.status)
    events: list[NewEvent] = []
    _move_orders(route, "unplan", events, from_state=OrderState.PLANNED)
    events.append(NewEvent(ev.ROUTE_DELETED, "route", route.pk, _route_payload(route)))
    route.stops.all().delete()
    route.delete()
    events_record(org=actor.org, actor=actor.label, events=events)
