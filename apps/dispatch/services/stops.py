"""What a driver does at a stop: arrive, complete, fail."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.common.exceptions import InvalidTransition, ValidationFailed
from apps.events import types as ev
from apps.events.services import NewEvent, events_record

from ..lifecycle import order_transition, stop_transition
from ..models import FailureReason, Order, OrderOutcome, Route, RouteStatus, Stop, StopKind, StopState
from .routes import route_begin, route_finish, route_schedule


def _stop_payload(stop: Stop, **extra: Any) -> dict[str, Any]:
    return {
        "stop_id": stop.pk, "order_id": stop.order_id, "route_id": stop.route_id, "kind": stop.kind,
        "state": stop.state, "outcome": stop.outcome, "sequence": stop.sequence, **extra,
    }


def _lock(stop: Stop) -> tuple[Stop, Route]:
    """Lock the route first, then the stop: every writer takes them in that order, so
    a driver completing a stop and a dispatcher reordering the route cannot deadlock.

    The locks are FOR NO KEY UPDATE (as PostgreSQL's own UPDATE takes): rows inserted
    elsewhere that merely reference the route or stop (a prediction, a proof, an
    exception) check their foreign key with FOR KEY SHARE, which FOR UPDATE would block
    until our commit; under load that wait closed a cycle with the organization's event
    counter and PostgreSQL killed one of the transactions (found by bench/load.py)."""
    if stop.route_id is None:
        raise InvalidTransition(subject="stop", current_state="unassigned", attempted="work on")
    route = Route.objects.select_for_update(no_key=True, of=("self",)).select_related("hub", "driver").get(pk=stop.route_id)
    stop = Stop.objects.select_for_update(no_key=True, of=("self",)).select_related("order").get(pk=stop.pk)
    if route.status == RouteStatus.DRAFT:
        raise InvalidTransition(subject="stop on a route that", current_state="not yet published", attempted="work on")
    if route.status == RouteStatus.COMPLETED:
        raise InvalidTransition(subject="stop on a route that", current_state="completed", attempted="work on")
    return stop, route


def _ensure_started(actor: Actor, route: Route, events: list[NewEvent]) -> None:
    """Working a stop on a published route means the driver has set off; record that."""
    if route.status == RouteStatus.PUBLISHED:
        route_begin(route=route, events=events)


def _after_visit(actor: Actor, route: Route, events: list[NewEvent]) -> None:
    """Finish the route after its last stop; otherwise move the remaining stops' ETAs."""
    if not route.stops.filter(state__in=[StopState.PENDING, StopState.ARRIVED]).exists():
        route_finish(actor=actor, route=route, events=events)
    else:
        route_schedule(route, now=timezone.now(), events=events)


# A device clock this far ahead of the server's is wrong, not early (as for pings).
MAX_CLOCK_AHEAD = timedelta(minutes=2)


def _happened_at(occurred_at: datetime | None) -> datetime:
    """When the driver did it. A driver app that worked offline syncs later and says when
    each action happened on the device; the stop keeps that time (reports judge
    punctuality by it), while the event's ``created_at`` says when the server learned of it."""
    now = timezone.now()
    if occurred_at is None:
        return now
    if occurred_at.tzinfo is None:
        raise ValidationFailed({"occurred_at": ["Give a time zone (an offset or Z)."]})
    if occurred_at > now + MAX_CLOCK_AHEAD:
        raise ValidationFailed({"occurred_at": ["This is in the future; check the device clock."]})
    return min(occurred_at, now)


@transaction.atomic
def stop_arrive(*, actor: Actor, stop: Stop, occurred_at: datetime | None = None) -> Stop:
    stop, route = _lock(stop)
    events: list[NewEvent] = []
    _ensure_started(actor, route, events)
    stop_transition(stop, "arrive")
    stop.arrived_at = _happened_at(occurred_at)
    stop.save()
    events.append(NewEvent(ev.STOP_ARRIVED, "stop", stop.pk, _stop_payload(stop)))
    route_schedule(route, now=stop.arrived_at, events=events)
    events_record(org=actor.org, actor=actor.label, events=events)
    return stop


def _close(actor: Actor, stop: Stop, route: Route, action: str, events: list[NewEvent], *,
           occurred_at: datetime | None, **fields: Any) -> None:
    stop_transition(stop, action)
    stop.completed_at = _happened_at(occurred_at)
    for name, value in fields.items():
        setattr(stop, name, value)
    stop.save()
    stop_event = ev.STOP_COMPLETED if action == "complete" else ev.STOP_FAILED
    events.append(NewEvent(stop_event, "stop", stop.pk, _stop_payload(stop, failure_reason=stop.failure_reason)))
    if stop.kind == StopKind.DELIVERY:
        order: Order = Order.objects.select_for_update(no_key=True).get(pk=stop.order_id)
        order_transition(order, "deliver" if action == "complete" else "fail")
        order.outcome = OrderOutcome.DELIVERED if action == "complete" else OrderOutcome.FAILED
        order.failure_reason = fields.get("failure_reason", "")
        order.failure_notes = fields.get("notes", "") if action == "fail" else ""
        order.completed_at = stop.completed_at
        order.attempts += 1
        order.save()
        events.append(NewEvent(
            ev.ORDER_DELIVERED if action == "complete" else ev.ORDER_FAILED, "order", order.pk,
            {"order_id": order.pk, "external_id": order.external_id, "state": order.state, "outcome": order.outcome,
             "failure_reason": order.failure_reason, "stop_id": stop.pk, "route_id": route.pk},
        ))


@transaction.atomic
def stop_complete(*, actor: Actor, stop: Stop, notes: str = "", occurred_at: datetime | None = None) -> Stop:
    stop, route = _lock(stop)
    events: list[NewEvent] = []
    _ensure_started(actor, route, events)
    _close(actor, stop, route, "complete", events, occurred_at=occurred_at, notes=notes)
    _after_visit(actor, route, events)
    events_record(org=actor.org, actor=actor.label, events=events)
    return stop


@transaction.atomic
def stop_fail(*, actor: Actor, stop: Stop, reason: FailureReason | str, notes: str = "",
              occurred_at: datetime | None = None) -> Stop:
    stop, route = _lock(stop)
    events: list[NewEvent] = []
    _ensure_started(actor, route, events)
    _close(actor, stop, route, "fail", events, occurred_at=occurred_at, failure_reason=str(reason), notes=notes)
    _after_visit(actor, route, events)
    events_record(org=actor.org, actor=actor.label, events=events)
    return stop
