"""Reads, always from the caller's organization."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from apps.accounts.actor import Actor
from apps.common.exceptions import ValidationFailed

from .models import Connection, InboundMessage, InboundStatus, Mapping


def connection_list(*, actor: Actor) -> QuerySet[Connection]:
    return Connection.objects.filter(org=actor.org)


def mapping_list(*, actor: Actor) -> QuerySet[Mapping]:
    return Mapping.objects.filter(org=actor.org).prefetch_related("versions")


def message_list(*, actor: Actor, params: Any) -> QuerySet[InboundMessage]:
    rows = InboundMessage.objects.filter(org=actor.org).select_related("connection").defer("body")
    attention = params.get("attention")
    if attention is not None:
        if attention not in ("true", "false"):
            raise ValidationFailed({"attention": ["true or false."]})
        rows = rows.filter(attention=attention == "true")
    if status := params.get("status"):
        if status not in InboundStatus.values:
            raise ValidationFailed({"status": [f"One of {', '.join(InboundStatus.values)}."]})
        rows = rows.filter(status=status)
    if connection := params.get("connection"):
        if not (connection.isascii() and connection.isdigit()) or int(connection) > 2**63 - 1:
            raise ValidationFailed({"connection": ["Must be an id."]})
        rows = rows.filter(connection_id=int(connection))
    if external_id := params.get("external_id"):
        rows = rows.filter(external_id=external_id)
    return rows


def outbox_oldest_pending() -> datetime | None:
    """When the oldest webhook delivery still waiting to be made was written (all
    organizations): the outbox lag an operator alerts on (apps/common/metrics.py)."""
    from django.db.models import Min

    from .models import DeliveryStatus, WebhookDelivery

    return WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).aggregate(oldest=Min("created_at"))["oldest"]
