"""The customer's side of an order, reached only through a tracking token.

``tracking_snapshot`` is everything a tracking page shows, built for one order and
nothing else (the privacy rules are in ``privacy.py``); ``preferences_set`` and
``rating_submit`` are the two things a customer can do there.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.common.exceptions import Conflict, InvalidTransition, ValidationFailed
from apps.dispatch.models import Order, OrderOutcome, OrderState, Stop, StopState
from apps.events import types as ev
from apps.events.models import Event
from apps.events.services import NewEvent, events_record

from .models import DeliveryPreferences, DeliveryRating
from .pod import pod_display_url
from .privacy import delivery_block
from .selectors import tracking_settings

# Before the driver sets off, the customer may still change how to deliver.
EDITABLE_STATES = (OrderState.CREATED, OrderState.PLANNED, OrderState.DISPATCHED)

TIMELINE = [
    ("ordered", "Order received", (ev.ORDER_CREATED,)),
    ("scheduled", "Scheduled", (ev.ORDER_DISPATCHED,)),
    ("out_for_delivery", "Out for delivery", (ev.ORDER_OUT_FOR_DELIVERY,)),
    ("completed", "Delivered", (ev.ORDER_DELIVERED, ev.ORDER_FAILED)),
]


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _timeline(order: Order) -> list[dict[str, Any]]:
    """The order's steps with when each happened (the last time, after a reschedule)."""
    reached: dict[str, datetime] = {}
    for kind, at in (Event.objects.filter(org_id=order.org_id, subject_type="order", subject_id=str(order.pk))
                     .order_by("sequence").values_list("type", "created_at")):
        reached[kind] = at
    steps = []
    for key, label, kinds in TIMELINE:
        at = max((reached[k] for k in kinds if k in reached), default=None)
        if key == "completed" and order.outcome == OrderOutcome.FAILED:
            label = "Delivery attempted"
        steps.append({"step": key, "label": label, "at": _iso(at), "done": at is not None})
    return steps


def _delivery(order: Order, now: float) -> dict[str, Any] | None:
    """The live part, while the order is on a dispatched route and not yet completed."""
    from apps.eta.plans import driver_position, plan_load

    if order.state not in (OrderState.DISPATCHED, OrderState.OUT_FOR_DELIVERY):
        return None
    stop = (Stop.objects.filter(order=order, state__in=(StopState.PENDING, StopState.ARRIVED))
            .select_related("route__driver").order_by("-id").first())
    if stop is None or stop.route is None:
        return None
    plan = plan_load(route=stop.route)
    if plan is None:
        return None
    index = next((i for i, s in enumerate(plan.stops) if s.stop_id == stop.pk), None)
    if index is None:
        return None
    position = driver_position(plan.driver_id)
    etas = plan.predict(position=position, now=now)
    away = plan.stops_away()[index]
    from django.conf import settings

    fresh = position is not None and now - position.at <= settings.ETA_POSITION_MAX_AGE_S
    visible = fresh and plan.visibility.driver_visible(stops_away=away, eta=etas[index], now=now)
    late = plan.late(etas)[index]
    return delivery_block(eta=etas[index], now=now, stops_away=away, late_risk=late,
                          driver_first_name=plan.driver_first_name,
                          position=(position.lat, position.lng, position.at) if position else None,
                          driver_visible=visible)


def _preferences(order: Order) -> dict[str, Any]:
    prefs = DeliveryPreferences.objects.filter(order=order).first()
    return {
        "instructions": prefs.instructions if prefs else "",
        "gate_code": prefs.gate_code if prefs else "",
        "pin_lat": prefs.pin_lat if prefs else None,
        "pin_lng": prefs.pin_lng if prefs else None,
        "pin_confirmed_at": _iso(prefs.pin_confirmed_at) if prefs else None,
        "editable": order.state in EDITABLE_STATES,
    }


def tracking_snapshot(*, order: Order) -> dict[str, Any]:
    """What the customer's tracking page shows (docs/tracking.md). Only this order's
    data; the driver by first name, their position only under the privacy rules."""
    rules = tracking_settings(org_id=order.org_id)
    delivery = _delivery(order, time.time())
    delivered = order.state == OrderState.COMPLETED and order.outcome == OrderOutcome.DELIVERED
    rating = DeliveryRating.objects.filter(order=order).values("score", "comment").first()
    return {
        "order": {
            "reference": order.reference or order.external_id,
            "state": order.state,
            "outcome": order.outcome,
            "failure_reason": order.failure_reason,
            "window_start": _iso(order.window_start),
            "window_end": _iso(order.window_end),
            "completed_at": _iso(order.completed_at),
            "address": order.address_text,
            "lat": order.lat,
            "lng": order.lng,
        },
        "eta": delivery["eta"] if delivery else None,
        "delivery": delivery,
        "timeline": _timeline(order),
        "preferences": _preferences(order),
        "brand": {"name": rules.brand_name or order.org.name, "logo_url": rules.logo_url or None,
                  "colour": rules.brand_colour},
        "pod_url": pod_display_url(order=order) if delivered and rules.show_pod else None,
        "rating": rating,
        "can_rate": delivered and rating is None,
    }


def _order_payload(order: Order, **extra: Any) -> dict[str, Any]:
    stop = order.stops.filter(route__isnull=False).order_by("-id").values_list("route_id", flat=True).first()
    return {"order_id": order.pk, "external_id": order.external_id, "state": order.state, "route_id": stop,
            "via": "tracking_page", **extra}


@transaction.atomic
def preferences_set(*, order: Order, instructions: str | None = None, gate_code: str | None = None,
                    pin: tuple[float, float] | None = None) -> DeliveryPreferences:
    """Save what the customer says about delivering their order; only before the driver
    sets off (the order is not out for delivery yet). Fields left None keep their value.
    Records ``order.preferences_updated`` (with the route, so the driver's app hears it)."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    if order.state not in EDITABLE_STATES:
        raise InvalidTransition(subject="delivery", current_state=order.state, attempted="change the instructions of")
    errors: dict[str, list[str]] = {}
    if instructions is not None and len(instructions) > 500:
        errors["instructions"] = ["At most 500 characters."]
    if gate_code is not None and len(gate_code) > 32:
        errors["gate_code"] = ["At most 32 characters."]
    if pin is not None and not (-90 <= pin[0] <= 90 and -180 <= pin[1] <= 180):
        errors["pin"] = ["Latitude -90..90 and longitude -180..180."]
    if errors:
        raise ValidationFailed(errors)
    prefs, _ = DeliveryPreferences.objects.get_or_create(order=order, defaults={"org_id": order.org_id})
    changed = []
    if instructions is not None and instructions != prefs.instructions:
        prefs.instructions = instructions
        changed.append("instructions")
    if gate_code is not None and gate_code != prefs.gate_code:
        prefs.gate_code = gate_code
        changed.append("gate_code")
    if pin is not None:
        prefs.pin_lat, prefs.pin_lng, prefs.pin_confirmed_at = pin[0], pin[1], timezone.now()
        changed.append("pin")
    prefs.save()
    if changed:
        events_record(org=order.org, actor="system", events=[NewEvent(
            ev.ORDER_PREFERENCES_UPDATED, "order", order.pk, _order_payload(order, changed=changed))])
    return prefs


@transaction.atomic
def rating_submit(*, order: Order, score: int, comment: str = "") -> DeliveryRating:
    """The customer's rating of a delivered order: once (409 after that)."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    if not (order.state == OrderState.COMPLETED and order.outcome == OrderOutcome.DELIVERED):
        raise InvalidTransition(subject="delivery", current_state=order.state, attempted="rate")
    errors: dict[str, list[str]] = {}
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        errors["score"] = ["A whole number from 1 to 5."]
    if not isinstance(comment, str) or len(comment) > 1000:
        errors["comment"] = ["Text of at most 1000 characters."]
    if errors:
        raise ValidationFailed(errors)
    if DeliveryRating.objects.filter(order=order).exists():
        raise Conflict("This delivery has already been rated.", code="already_rated")
    rating = DeliveryRating.objects.create(order=order, org_id=order.org_id, score=score, comment=comment)
    events_record(org=order.org, actor="system", events=[NewEvent(
        ev.ORDER_RATED, "order", order.pk, _order_payload(order, score=score, has_comment=bool(comment)))])
    return rating
