"""Order writes: idempotent ingest (single and bulk), updates and lifecycle actions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.actor import Actor
from apps.common.exceptions import Conflict, ValidationFailed
from apps.events import types as ev
from apps.events.services import NewEvent, event_record, events_record

from ..inputs import OrderIn, OrderPatch, check_order_consistency
from ..lifecycle import ORDER_EDITABLE_STATES, order_transition
from ..models import GeocodeConfidence, Hub, Order, OrderItem, Route, Stop, StopState

ITEM_FIELDS = ("sku", "description", "quantity", "weight_kg", "volume_l")


HASH_EXCLUDE = frozenset({"source", "external_id"})
_THOUSANDTH = Decimal("0.001")


def _canonical(value: Any) -> Any:
    """One spelling per value, so an order read back from the database hashes like
    the JSON it came from: datetimes in UTC, amounts to the gram, enums as values."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value.quantize(_THOUSANDTH))
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


# Fields added after orders were first stored: left out of the hash while at their
# default, so an order stored before they existed still matches its retried payload.
HASH_OMIT_AT_DEFAULT = {"pod_min_photos": 0, "pod_min_age": 0}


def content_hash(fields: dict[str, Any]) -> str:
    body = _canonical({k: v for k, v in fields.items() if k not in HASH_EXCLUDE
                       and not (k in HASH_OMIT_AT_DEFAULT and v == HASH_OMIT_AT_DEFAULT[k])})
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def stored_fields(order: Order) -> dict[str, Any]:
    """The order as its create contract's fields, for hashing after an update."""
    fields = {name: getattr(order, name) for name in OrderIn.model_fields if name not in ("items", "hub")}
    fields["hub"] = order.hub_id
    fields["items"] = [{f: getattr(i, f) for f in ITEM_FIELDS} for i in order.items.order_by("id")]
    return fields


def _order_fields(data: OrderIn | OrderPatch, *, exclude_unset: bool = False) -> dict[str, Any]:
    fields = data.model_dump(exclude={"items", "hub", "source", "external_id"}, exclude_unset=exclude_unset)
    return fields


def _item_rows(items: Sequence[Any]) -> tuple[list[OrderItem], Decimal, Decimal, int]:
    rows = [OrderItem(**item.model_dump()) for item in items]
    weight = sum((r.weight_kg * r.quantity for r in rows), Decimal(0))
    volume = sum((r.volume_l * r.quantity for r in rows), Decimal(0))
    parcels = sum(r.quantity for r in rows)
    return rows, weight, volume, parcels


def _hub_ids(actor: Actor, ids: set[int]) -> set[int]:
    return set(Hub.objects.filter(org=actor.org, pk__in=ids).values_list("pk", flat=True)) if ids else set()


def _event_payload(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.pk, "source": order.source, "external_id": order.external_id,
        "reference": order.reference, "state": order.state, "outcome": order.outcome,
    }


@dataclass(frozen=True)
class IngestResult:
    order: Order
    created: bool


def order_create(*, actor: Actor, data: OrderIn) -> IngestResult:
    """Create an order, or return the existing one if this exact order was already received.

    The same (source, external_id) with different content is a ``Conflict``: the
    caller meant an update and must say so with ``order_update``.
    """
    results = order_bulk_create(actor=actor, orders=[data], field_prefix=None)
    return results[0]


def order_bulk_create(*, actor: Actor, orders: Sequence[OrderIn], field_prefix: str | None = "orders") -> list[IngestResult]:
    """All or nothing: either every order is created (or found identical) or nothing is written.

    Two concurrent requests with the same key race on the unique constraint; the
    loser retries once and then finds the winner's row as an existing order.
    """
    try:
        return _bulk_create_once(actor, orders, field_prefix)
    except IntegrityError:
        return _bulk_create_once(actor, orders, field_prefix)


def _path(prefix: str | None, index: int, field: str) -> str:
    return f"{prefix}.{index}.{field}" if prefix is not None else field


def _bulk_create_once(actor: Actor, orders: Sequence[OrderIn], prefix: str | None) -> list[IngestResult]:
    org = actor.org
    errors: dict[str, list[str]] = {}
    seen: dict[tuple[str, str], int] = {}
    for i, data in enumerate(orders):
        key = (data.source, data.external_id)
        if key in seen:
            errors[_path(prefix, i, "external_id")] = [f"Repeats order {seen[key]} of this request."]
        seen[key] = i
    known_hubs = _hub_ids(actor, {d.hub for d in orders if d.hub is not None})
    for i, data in enumerate(orders):
        if data.hub is not None and data.hub not in known_hubs:
            errors[_path(prefix, i, "hub")] = ["No such hub."]
    if errors:
        raise ValidationFailed(errors)

    hashes = [content_hash(d.model_dump()) for d in orders]
    with transaction.atomic():
        existing = {
            (o.source, o.external_id): o
            for o in Order.objects.filter(org=org, external_id__in={d.external_id for d in orders})
            if (o.source, o.external_id) in seen
        }
        conflicts = [
            i for i, d in enumerate(orders)
            if (d.source, d.external_id) in existing and existing[(d.source, d.external_id)].content_hash != hashes[i]
        ]
        if conflicts:
            first = orders[conflicts[0]]
            details: dict[str, Any] = {"existing_id": existing[(first.source, first.external_id)].pk}
            if prefix is not None:
                details["indexes"] = conflicts
            raise Conflict(
                f"Order {first.source}/{first.external_id} already exists with different content; "
                "update it with PATCH /api/v1/orders/{id}/ instead.",
                code="idempotency_conflict",
                **details,
            )

        new_rows: list[Order] = []
        new_items: list[list[OrderItem]] = []
        for data, digest in zip(orders, hashes, strict=True):
            if (data.source, data.external_id) in existing:
                continue
            items, weight, volume, parcels = _item_rows(data.items)
            new_rows.append(Order(
                org=org, source=data.source, external_id=data.external_id, hub_id=data.hub,
                content_hash=digest, total_weight_kg=weight, total_volume_l=volume, parcel_count=parcels,
                **_order_fields(data),
            ))
            new_items.append(items)
        if new_rows:
            Order.objects.bulk_create(new_rows)
            for order, items in zip(new_rows, new_items, strict=True):
                for item in items:
                    item.order_id = order.pk
            OrderItem.objects.bulk_create([item for items in new_items for item in items])
            events_record(org=org, actor=actor.label, events=[
                NewEvent(ev.ORDER_CREATED, "order", o.pk, _event_payload(o)) for o in new_rows
            ])

    created = {(o.source, o.external_id): o for o in new_rows}
    return [
        IngestResult(order=created[(d.source, d.external_id)], created=True)
        if (d.source, d.external_id) in created
        else IngestResult(order=existing[(d.source, d.external_id)], created=False)
        for d in orders
    ]


def _locked(order: Order) -> Order:
    return Order.objects.select_for_update(no_key=True).get(pk=order.pk, org_id=order.org_id)


@transaction.atomic
def order_update(*, actor: Actor, order: Order, patch: OrderPatch) -> Order:
    """Change the fields sent. Finished orders are history and cannot change."""
    order = _locked(order)
    if order.state not in ORDER_EDITABLE_STATES:
        raise Conflict(
            f"A {order.state} order cannot be changed.", code="order_not_editable", current_state=order.state,
        )
    changes = _order_fields(patch, exclude_unset=True)
    sent = patch.model_fields_set
    if "hub" in sent:
        if patch.hub is not None and not _hub_ids(actor, {patch.hub}):
            raise ValidationFailed({"hub": ["No such hub."]})
        order.hub_id = patch.hub
    merged = {f: changes.get(f, getattr(order, f)) for f in ("lat", "lng", "window_start", "window_end")}
    try:
        check_order_consistency(merged["lat"], merged["lng"], merged["window_start"], merged["window_end"])
    except ValueError as exc:
        raise ValidationFailed({"non_field_errors": [str(exc)]}) from None
    for name, value in changes.items():
        setattr(order, name, value)
    if ("lat" in sent and "geocode_confidence" not in sent) or order.geocode_confidence is None:
        # New coordinates from the shipper are as exact as on create; none means not geocoded.
        order.geocode_confidence = GeocodeConfidence.EXACT if order.lat is not None else GeocodeConfidence.NONE
    if "items" in sent and patch.items is not None:
        items, order.total_weight_kg, order.total_volume_l, order.parcel_count = _item_rows(patch.items)
        order.items.all().delete()
        for item in items:
            item.order = order
        OrderItem.objects.bulk_create(items)
    # The stored hash describes the order as it now is, so the partner re-posting
    # its updated version is recognized as a harmless retry.
    order.content_hash = content_hash(stored_fields(order))
    order.save()
    event_record(org=order.org, actor=actor.label, type=ev.ORDER_UPDATED, subject_type="order", subject_id=order.pk,
                 payload={**_event_payload(order), "changed": sorted(sent)})
    return order


def _close_open_stop(actor: Actor, order: Order, events: list[NewEvent]) -> None:
    """Cancel the order's open stop, if any, and bump its route's version."""
    from .routes import route_bump_version

    for stop in Stop.objects.select_for_update(no_key=True).filter(order=order, state__in=[StopState.PENDING, StopState.ARRIVED]):
        stop.state = StopState.CANCELLED
        stop.completed_at = timezone.now()
        stop.save(update_fields=["state", "completed_at", "updated_at"])
        events.append(NewEvent(ev.STOP_CANCELLED, "stop", stop.pk,
                               {"stop_id": stop.pk, "order_id": order.pk, "route_id": stop.route_id}))
        if stop.route_id:
            route_bump_version(actor=actor, route_id=stop.route_id, events=events, reason="order_cancelled")


def _lock_routes_of(order: Order) -> None:
    """Lock the routes the order is on before the order itself.

    Every writer that touches a route and its orders takes the route first (see
    stops._lock); cancelling in the other order could deadlock against a driver
    completing the same stop.
    """
    route_ids = (Stop.objects.filter(order_id=order.pk, state__in=[StopState.PENDING, StopState.ARRIVED])
                 .exclude(route=None).values_list("route_id", flat=True))
    list(Route.objects.select_for_update(no_key=True).filter(pk__in=route_ids).order_by("pk").values_list("pk", flat=True))


@transaction.atomic
def order_cancel(*, actor: Actor, order: Order, reason: str = "") -> Order:
    _lock_routes_of(order)
    order = _locked(order)
    order_transition(order, "cancel")
    order.completed_at = timezone.now()
    order.failure_notes = reason
    order.save()
    events: list[NewEvent] = []
    _close_open_stop(actor, order, events)
    events.append(NewEvent(ev.ORDER_CANCELLED, "order", order.pk, {**_event_payload(order), "reason": reason}))
    events_record(org=order.org, actor=actor.label, events=events)
    return order


@transaction.atomic
def order_reschedule(*, actor: Actor, order: Order) -> Order:
    """Put a failed order back in the planning pool for another attempt."""
    order = _locked(order)
    failed_reason = order.failure_reason
    order_transition(order, "reschedule")
    order.failure_reason = ""
    order.failure_notes = ""
    order.completed_at = None
    order.save()
    event_record(org=order.org, actor=actor.label, type=ev.ORDER_RESCHEDULED, subject_type="order", subject_id=order.pk,
                 payload={**_event_payload(order), "previous_failure_reason": failed_reason, "attempts": order.attempts})
    return order


@transaction.atomic
def order_return(*, actor: Actor, order: Order) -> Order:
    """A failed order goes back to the shipper: the end of its life with us."""
    order = _locked(order)
    order_transition(order, "return")
    order.save()
    event_record(org=order.org, actor=actor.label, type=ev.ORDER_RETURNED, subject_type="order", subject_id=order.pk,
                 payload=_event_payload(order))
    return order


