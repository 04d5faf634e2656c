"""Shopify fulfillment-order webhooks applied to the order they belong to
(the topics and what each means: shopify/fulfillment.py)."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from apps.accounts.actor import Actor
from apps.dispatch.models import OrderState

from ..adapters import load_json
from ..drafts import Action, Draft
from ..models import ConnectionKind, ExternalFulfillmentOrder, ExternalOrder, InboundMessage, InboundStatus
from ..shopify import fulfillment as shopify_fulfillment
from ..shopify.api import auth_headers
from .reconcile import ApiTransport, default_transport

logger = logging.getLogger(__name__)

_WITH_DRIVER = frozenset({OrderState.DISPATCHED, OrderState.OUT_FOR_DELIVERY})


def _remember(connection_id: int, fulfillment_order_ids: list[str], external_id: str) -> None:
    for fulfillment_order_id in fulfillment_order_ids:
        try:
            with transaction.atomic():
                ExternalFulfillmentOrder.objects.update_or_create(
                    connection_id=connection_id, fulfillment_order_id=fulfillment_order_id,
                    defaults={"external_id": external_id})
        except IntegrityError:
            pass  # learned at the same moment by another worker: the same fact


def fulfillment_order_lookup(*, message_id: int, transport: ApiTransport | None = None) -> str | None:
    """Ask Shopify which order a fulfillment-order webhook's subject belongs to, when we
    do not know yet and the connection has API credentials; remember the answer. Network
    I/O: called before the message's transaction, never inside it. Any failure leaves the
    link unknown (the message is then parked with the reason, and can be reprocessed)."""
    topic, status, kind = InboundMessage.objects.values_list("topic", "status", "connection__kind").get(pk=message_id)
    if status != InboundStatus.RECEIVED or kind != ConnectionKind.SHOPIFY or topic not in shopify_fulfillment.TOPICS:
        return None  # every other message: one small query, no body loaded
    message = InboundMessage.objects.select_related("connection").get(pk=message_id)
    connection = message.connection
    if not connection.api.get("token"):
        return None
    try:
        payload = load_json(bytes(message.body))
    except ValueError:
        return None
    subject = shopify_fulfillment.subject_id(message.topic, payload)
    if subject is None or ExternalFulfillmentOrder.objects.filter(connection=connection,
                                                                  fulfillment_order_id=subject).exists():
        return None
    found = shopify_fulfillment.subject(message.topic, payload) or {}
    if found.get("order_id") not in (None, ""):
        return None  # the body names its order
    url = shopify_fulfillment.fulfillment_order_url(shop=connection.store, fulfillment_order_id=subject)
    try:
        response = (transport or default_transport()).get(url, headers=auth_headers(connection.api), timeout=30)
        external_id = shopify_fulfillment.order_id_of(load_json(response.body)) if response.status == 200 else None
    except Exception:  # unreachable, refused, not JSON: the link stays unknown
        logger.warning("looking up Shopify fulfillment order %s failed", subject, exc_info=True)
        return None
    if external_id:
        _remember(connection.pk, [subject], external_id)
    return external_id


def fulfillment_apply(*, message: InboundMessage, draft: Draft, actor: Actor) -> None:
    """Apply a parsed fulfillment-order webhook (caller holds the message's lock)."""
    from .inbound import _cancel, _park

    connection = message.connection
    subject = draft.fulfillment_order_id
    external_id = draft.external_id or (ExternalFulfillmentOrder.objects.filter(
        connection=connection, fulfillment_order_id=subject).values_list("external_id", flat=True).first() or "")
    if not external_id:
        how = ("Shopify's API did not name its order" if connection.api.get("token") else
               "add the store's API credentials to the connection so it can be looked up")
        _park(message, f"{draft.note}; but fulfillment order {subject} is not linked to an order we hold "
                       f"({how}), so nothing was applied. Reprocess once it can be.")
        return
    _remember(connection.pk, [subject, *draft.successors], external_id)
    message.external_id = external_id[:128]
    link = (ExternalOrder.objects.select_for_update().select_related("order")
            .filter(connection=connection, external_id=external_id).first())
    if link is None:
        if draft.action == Action.HOLD:
            _park(message, f"{draft.note}; order {external_id} has not arrived yet: reprocess once it has")
        else:
            message.status, message.attention = InboundStatus.IGNORED, False
            message.reason = f"{draft.note}; order {external_id} is not one we hold, nothing to change"
        return
    order = link.order
    message.order = order
    if draft.action == Action.HOLD:
        with_driver = f" The order is {order.state.replace('_', ' ')}: tell the driver." if order.state in _WITH_DRIVER else ""
        message.status, message.attention = InboundStatus.PROCESSED, True
        message.reason = draft.note + "." + with_driver
    elif draft.action == Action.NOTE:
        message.status, message.attention, message.reason = InboundStatus.PROCESSED, False, draft.note
    elif order.state in _WITH_DRIVER:
        _park(message, f"{draft.note}; the order is {order.state.replace('_', ' ')}, so cancelling it is a "
                       "dispatcher's decision")
    else:
        draft.note = draft.note[:500]
        _cancel(message, link, draft, actor)
