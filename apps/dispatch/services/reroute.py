"""Re-route several routes at once: a replan's stops move between drivers in one pass.

``route_set_stops`` edits one route at a time: every stop a route loses goes back to
the pool (its order unplanned, the stop deleted) and every stop it gains is a new
stop whose order is planned, dispatched and started again, each step an event. For a
breakdown that is two passes over nine routes and four events per moved stop, and
each driver's socket then replays them (docs/performance.md, "Re-planning after a
breakdown"). Here a stop that moves between two routes in the same state simply
changes route: its order's state does not change, so no order event is recorded;
each changed route gets one ``route.updated`` carrying its whole new stop list, which
is what a driver's app shows.

The new times follow right after: each changed route's schedule and ETAs (the ETA
engine, its late-risk events and customer notifications) are refreshed in a
transaction of their own once the reroute is committed and published. Measured in
bench/replan.py, refreshing them inside the reroute held the drivers' messages back
by the ETA engine's after-commit work (live pushes, notification jobs) for ten routes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from django.db import transaction
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.common.exceptions import Conflict, ValidationFailed
from apps.events import types as ev
from apps.events.services import NewEvent, events_record

from ..lifecycle import order_transition
from ..models import Order, Route, Stop, StopKind, StopOutcome, StopState
from .routes import (
    _advance_order_to_route,
    _bulk_save_states,
    _order_event,
    _require_editable,
    _resolve_orders,
    _route_payload,
    check_vehicle_fits,
    route_schedule,
)

log = logging.getLogger(__name__)


def route_stops_payload(stops: Sequence[Stop]) -> list[dict]:
    """A route's stops in their new order: enough for a driver's app to re-sort its
    list. Addresses and customers stay out of the log (it feeds partners' webhooks);
    a stop the app has not seen is fetched like any other."""
    return [{"stop_id": s.pk, "order_id": s.order_id, "sequence": s.sequence, "state": s.state} for s in stops]


@transaction.atomic
def routes_reroute(*, actor: Actor, sequences: Mapping[int, Sequence[int]],
                   expected_versions: Mapping[int, int | None] | None = None, reason: str = "replan") -> list[Route]:
    """Give each route in ``sequences`` exactly these pending orders, in this order.

    Orders may move between the routes named here (their stop changes route and
    keeps its history), come from the pool (planned onto the route with their usual
    events) or leave every route (back to the pool, as ``route_set_stops`` does).
    Visited stops keep their place at the front. All or nothing: a route whose
    version is not the one expected, or that can no longer be edited, aborts the
    whole change (409). Returns the routes whose stops changed, versions bumped.
    """
    expected_versions = expected_versions or {}
    ids = sorted(sequences)
    # One lock order for every caller (by id), so two reroutes cannot deadlock.
    routes = {r.pk: r for r in Route.objects.select_for_update(of=("self",)).select_related("hub", "driver", "vehicle")
              .filter(org=actor.org, pk__in=ids).order_by("pk")}
    missing = [pk for pk in ids if pk not in routes]
    if missing:
        raise ValidationFailed({"routes": [f"No such route: {', '.join(map(str, missing))}."]})
    for pk in ids:
        route = routes[pk]
        _require_editable(route)
        expected = expected_versions.get(pk)
        if expected is not None and expected != route.version:
            raise Conflict("The route changed while re-planning.", code="version_conflict", route_id=pk,
                           current_version=route.version)
    wanted = [oid for pk in ids for oid in sequences[pk]]
    if len(set(wanted)) != len(wanted):
        raise ValidationFailed({"orders": ["An order appears on more than one route."]})
    stops = list(Stop.objects.select_related("order").filter(route_id__in=ids).order_by("route_id", "sequence", "id"))
    pending = {s.order_id: s for s in stops if s.state == StopState.PENDING}
    fixed = {pk: [s for s in stops if s.route_id == pk and s.state != StopState.PENDING] for pk in ids}
    # A failed attempt does not block another: a re-attempt is a new stop (see Stop).
    visited = {s.order_id for pk in ids for s in fixed[pk] if s.state != StopState.CANCELLED
               and s.outcome != StopOutcome.FAILED}
    clash = [oid for oid in wanted if oid in visited]
    if clash:
        raise ValidationFailed({"orders": [f"Already visited: {', '.join(map(str, clash))}."]})
    new_ids = [oid for oid in wanted if oid not in pending]
    new_orders = {o.pk: o for o in _resolve_orders(actor, new_ids)}

    events: list[NewEvent] = []
    target = {oid: pk for pk in ids for oid in sequences[pk]}
    dropped = [s for oid, s in pending.items() if oid not in target]
    moved_orders: list[Order] = []
    for stop in dropped:
        order_transition(stop.order, "unplan")
        moved_orders.append(stop.order)
        events.append(_order_event("unplan", stop.order, routes[stop.route_id]))
    before = {pk: [s.order_id for s in stops if s.route_id == pk and s.state == StopState.PENDING] for pk in ids}
    created: list[Stop] = []
    by_order: dict[int, Stop] = {}
    for oid in wanted:
        route = routes[target[oid]]
        stop = pending.get(oid)
        if stop is not None and stop.route_id != route.pk and routes[stop.route_id].status != route.status:
            # Between a started and a not yet started route the order's state differs:
            # it leaves through the pool, as a dispatcher's edit would take it.
            order_transition(stop.order, "unplan")
            events.append(_order_event("unplan", stop.order, routes[stop.route_id]))
            for step in _advance_order_to_route(stop.order, route):
                events.append(_order_event(step, stop.order, route))
            moved_orders.append(stop.order)
        if stop is None:
            order = new_orders[oid]
            for step in _advance_order_to_route(order, route):
                events.append(_order_event(step, order, route))
            moved_orders.append(order)
            stop = Stop(org=actor.org, order=order, route=route, kind=StopKind.DELIVERY)
            created.append(stop)
        stop.route = route
        by_order[oid] = stop
    for pk in ids:
        arrived = [s.order for s in fixed[pk] if s.state == StopState.ARRIVED]
        check_vehicle_fits(routes[pk].vehicle, arrived + [by_order[oid].order for oid in sequences[pk]])
    _bulk_save_states(moved_orders)
    Stop.objects.filter(pk__in=[s.pk for s in dropped]).delete()
    Stop.objects.bulk_create(created)
    kept = [by_order[oid] for oid in wanted if oid in pending]
    changed = [pk for pk in ids if list(sequences[pk]) != before[pk]]
    for pk in ids:
        for position, stop in enumerate([*fixed[pk], *(by_order[oid] for oid in sequences[pk])], start=1):
            stop.sequence = position
    moved_at = timezone.now()  # bulk_update skips auto_now; clients syncing on it must see the move
    for stop in kept:
        stop.updated_at = moved_at
    Stop.objects.bulk_update([*kept, *(s for pk in ids for s in fixed[pk])], ["route", "sequence", "updated_at"])
    Stop.objects.bulk_update(created, ["sequence"])
    out = []
    for pk in changed:
        route = routes[pk]
        route.version += 1
        route.save(update_fields=["version", "updated_at"])
        now_on = [*fixed[pk], *(by_order[oid] for oid in sequences[pk])]
        events.append(NewEvent(ev.ROUTE_UPDATED, "route", route.pk, _route_payload(
            route, reason=reason, added=[o for o in sequences[pk] if o not in before[pk]],
            removed=[o for o in before[pk] if o not in sequences[pk]],
            order_ids=[s.order_id for s in now_on], stops=route_stops_payload(now_on))))
        out.append(route)
    events_record(org=actor.org, actor=actor.label, events=events)
    # Registered after the events' publish, so it runs after it.
    transaction.on_commit(lambda: routes_times_refresh(actor=actor, route_ids=[r.pk for r in out]), robust=True)
    return out


def routes_times_refresh(*, actor: Actor, route_ids: Sequence[int]) -> None:
    """Re-time each route (planned arrivals, then ETAs from the driver's position), one
    transaction per route. A route that fails keeps its old times and the ETA engine's
    next refresh (the driver's next ping) corrects them."""
    for pk in route_ids:
        try:
            with transaction.atomic():
                route = (Route.objects.select_for_update(of=("self",)).select_related("hub", "driver", "vehicle")
                         .get(pk=pk, org=actor.org))
                late: list[NewEvent] = []
                route_schedule(route, events=late)
                route.save()
                events_record(org=actor.org, actor=actor.label, events=late)
        except Exception:
            log.warning("re-timing route %s after a reroute failed", pk, exc_info=True)

