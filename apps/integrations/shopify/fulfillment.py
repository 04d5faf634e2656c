"""Shopify fulfillment-order webhooks that matter to a carrier, as changes to an order we hold.

A fulfillment order is the part of a Shopify order shipped from one location. Its
webhooks name only the fulfillment order (``gid://shopify/FulfillmentOrder/<id>``),
never the order, so the link is learned: from an ``order_id`` when the body carries one
(the REST resource does), from an earlier webhook that named a replacement, or from
Shopify's API (``fulfillment_order_url``) when the connection has API credentials.

What each topic means to us:

* ``placed_on_hold``: the merchant holds the shipment: do not deliver until released
  (a person must act, so it lands in the attention queue).
* ``hold_released``: it may go again (recorded, nothing to change).
* ``cancellation_request_submitted``: the merchant asks the carrier to cancel: done
  while no driver has the order, otherwise a person decides.
* ``cancelled``: cancelled; with a replacement fulfillment order it was only re-issued
  (the replacement is linked to the same order), without one the delivery is off.
* ``moved``: the goods now leave from another location: a person checks the pickup.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from .. import normalize as n
from ..drafts import Action, Draft
from ..normalize import Unusable
from .api import API_VERSION

HOLD = "fulfillment_orders/placed_on_hold"
RELEASED = "fulfillment_orders/hold_released"
CANCEL_REQUESTED = "fulfillment_orders/cancellation_request_submitted"
CANCELLED = "fulfillment_orders/cancelled"
MOVED = "fulfillment_orders/moved"
TOPICS = frozenset({HOLD, RELEASED, CANCEL_REQUESTED, CANCELLED, MOVED})
_GID = re.compile(r"^gid://shopify/FulfillmentOrder/(\d+)$")


def _id(value: Any) -> str:
    match = _GID.match(str(value or ""))
    return match[1] if match else n.external_id(value)


def subject(topic: str, payload: Any) -> dict[str, Any] | None:
    """The fulfillment order the webhook is about."""
    if not isinstance(payload, dict):
        return None
    key = "original_fulfillment_order" if topic == MOVED else "fulfillment_order"
    value = payload.get(key)
    return value if isinstance(value, dict) else None


def subject_id(topic: str, payload: Any) -> str | None:
    try:
        found = subject(topic, payload)
        return _id(found.get("id")) if found else None
    except Unusable:
        return None


def successors(topic: str, payload: dict[str, Any]) -> list[str]:
    """Fulfillment orders the webhook created from the subject: the same order's goods."""
    keys = {CANCELLED: ["replacement_fulfillment_order"], HOLD: ["remaining_fulfillment_order"],
            MOVED: ["moved_fulfillment_order", "remaining_fulfillment_order"]}.get(topic, [])
    found = []
    for key in keys:
        value = payload.get(key)
        if isinstance(value, dict) and value.get("id"):
            try:
                found.append(_id(value["id"]))
            except Unusable:
                continue
    return found


def parse(*, topic: str, payload: Any) -> Draft:
    draft = Draft()
    found = subject(topic, payload)
    if found is None:
        draft.problem("fulfillment_order", "is missing: the webhook does not say which fulfillment order changed")
        return draft
    try:
        draft.fulfillment_order_id = _id(found.get("id"))
    except Unusable as exc:
        draft.problem("fulfillment_order.id", str(exc))
        return draft
    draft.successors = successors(topic, payload)
    if found.get("order_id") not in (None, ""):
        with contextlib.suppress(Unusable):  # then the link comes from elsewhere
            draft.external_id = n.external_id(found["order_id"])
    label = f"Shopify fulfillment order {draft.fulfillment_order_id}"
    if topic == HOLD:
        holds = [h for h in found.get("fulfillment_holds") or [] if isinstance(h, dict)]
        hold = payload.get("created_fulfillment_hold") if isinstance(payload.get("created_fulfillment_hold"), dict) \
            else (holds[0] if holds else {})
        why = ", ".join(p for p in (n.text(hold.get("reason")).replace("_", " "), n.text(hold.get("reason_notes")))
                        if p)
        draft.action = Action.HOLD
        draft.note = f"{label} was put on hold{f' ({why})' if why else ''}: do not deliver until it is released"
    elif topic == RELEASED:
        draft.action = Action.NOTE
        draft.note = f"{label}: hold released, the order may be delivered"
    elif topic == CANCEL_REQUESTED:
        request = payload.get("fulfillment_order_merchant_request")
        message = n.text(request.get("message")) if isinstance(request, dict) else ""
        draft.action = Action.CANCEL_REQUEST
        draft.note = f"the merchant asked to cancel {label}{f': {message}' if message else ''}"
    elif topic == CANCELLED and draft.successors:
        draft.action = Action.NOTE
        draft.note = f"{label} was re-issued as {', '.join(draft.successors)}; the delivery is unchanged"
    elif topic == CANCELLED:
        draft.action = Action.CANCEL_REQUEST
        draft.note = f"{label} was cancelled in Shopify"
    else:  # MOVED
        moved = payload.get("moved_fulfillment_order") if isinstance(payload.get("moved_fulfillment_order"), dict) else {}
        where = moved.get("assigned_location_id") or payload.get("destination_location_id")
        draft.action = Action.HOLD
        draft.note = (f"{label} moved to {'location ' + str(where) if where else 'another location'}: "
                      "check where the goods are picked up")
    return draft


def fulfillment_order_url(*, shop: str, fulfillment_order_id: str) -> str:
    return f"https://{shop}/admin/api/{API_VERSION}/fulfillment_orders/{fulfillment_order_id}.json"


def order_id_of(payload: Any) -> str | None:
    """The order id in the API's answer ``{"fulfillment_order": {"order_id": ...}}``."""
    found = payload.get("fulfillment_order") if isinstance(payload, dict) else None
    if not isinstance(found, dict) or found.get("order_id") in (None, ""):
        return None
    try:
        return n.external_id(found["order_id"])
    except Unusable:
        return None
