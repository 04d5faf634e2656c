"""The transactional outbox: one delivery row per event and subscribed endpoint, written
by ``events_record`` inside the transaction that records the event. A rolled-back change
leaves no delivery; a committed one always has its deliveries and their tasks."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from apps.events.models import Event

from ..models import WebhookDelivery, WebhookEndpoint
from .taxonomies import status_for


def subscribed(patterns: list[str], event_type: str) -> bool:
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def ordering_key(event: Event) -> str:
    """Events of one order (its stops' too) share a key, so they reach an endpoint in order."""
    if event.subject_type == "order":
        return f"order:{event.subject_id}"
    order_id = event.payload.get("order_id") if isinstance(event.payload, dict) else None
    if order_id is not None:
        return f"order:{order_id}"
    return f"{event.subject_type}:{event.subject_id}"


def _order_id(event: Event) -> str | None:
    if event.subject_type == "order":
        return str(event.subject_id)
    order_id = event.payload.get("order_id") if isinstance(event.payload, dict) else None
    return str(order_id) if order_id is not None else None


def _order_sources(events: Sequence[Event]) -> dict[str, str]:
    """Each event's order source, for endpoints of a shipper's key (one query)."""
    from apps.dispatch.models import Order

    ids = {i for e in events if (i := _order_id(e)) is not None and i.isdigit()}
    return {str(pk): source for pk, source in Order.objects.filter(pk__in=ids).values_list("pk", "source")}


def payload_for(event: Event, endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "type": event.type,
        "timestamp": event.created_at.isoformat().replace("+00:00", "Z"),
        "status": status_for(event_type=event.type, taxonomy=endpoint.taxonomy, partner_codes=endpoint.status_mapping),
        "data": {"sequence": event.sequence, "subject_type": event.subject_type, "subject_id": event.subject_id,
                 **(event.payload if isinstance(event.payload, dict) else {})},
    }


def outbox_record(*, org_id: int, events: Sequence[Event]) -> list[WebhookDelivery]:
    """Caller is inside the event's transaction (events_record)."""
    from ..tasks import deliver_webhook

    endpoints = list(WebhookEndpoint.objects.filter(org_id=org_id, active=True))
    if not endpoints:
        return []
    now = timezone.now()
    sources = _order_sources(events) if any(e.order_source for e in endpoints) else {}
    rows = [
        WebhookDelivery(
            org_id=org_id, endpoint=endpoint, event=event, webhook_id=f"msg_{uuid.uuid4().hex}", event_type=event.type,
            ordering_key=ordering_key(event), payload=payload_for(event, endpoint), next_attempt_at=now,
        )
        for event in events for endpoint in endpoints
        if subscribed(endpoint.event_types, event.type)
        and (not endpoint.order_source or sources.get(_order_id(event)) == endpoint.order_source)
    ]
    if not rows:
        return []
    created = WebhookDelivery.objects.bulk_create(rows)
    # Only the first pending delivery of each (endpoint, order) may go; the rest wait
    # for it and are queued when it finishes (services.outbound._next_in_line).
    heads: dict[tuple[int, str], WebhookDelivery] = {}
    for row in created:
        heads.setdefault((row.endpoint_id, row.ordering_key), row)
    waiting = set(WebhookDelivery.objects.filter(
        endpoint_id__in={k[0] for k in heads}, ordering_key__in={k[1] for k in heads}, status="pending",
    ).exclude(pk__in=[r.pk for r in created]).values_list("endpoint_id", "ordering_key"))
    for key, row in heads.items():
        if key not in waiting:
            deliver_webhook.using(queue_name="webhooks").enqueue(row.pk)
    return created
