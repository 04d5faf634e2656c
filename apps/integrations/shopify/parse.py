"""A Shopify order webhook body into a draft of our order."""

from __future__ import annotations

import re
from typing import Any

from .. import normalize as n
from ..drafts import Action, Draft
from ..normalize import Unusable
from . import fulfillment

# orders/edited carries an order_edit, not an order; the orders/updated that follows every edit does.
UPSERT_TOPICS = frozenset({"orders/create", "orders/updated", "orders/paid"})
CANCEL_TOPICS = frozenset({"orders/cancelled", "orders/delete"})
PAID = frozenset({"paid", "partially_paid", "partially_refunded"})
_GID = re.compile(r"^gid://shopify/Order/(\d+)$")


def order_id(payload: dict[str, Any]) -> str:
    """The numeric id, from the GraphQL gid when present: it is a string, so no JSON
    tool on the way can have rounded it (Shopify ids exceed 2^53)."""
    match = _GID.match(str(payload.get("admin_graphql_api_id") or ""))
    if match:
        return match[1]
    return n.external_id(payload.get("id"))


def parse(*, topic: str, payload: Any, options: dict[str, Any]) -> Draft:
    if topic in fulfillment.TOPICS:
        return fulfillment.parse(topic=topic, payload=payload)
    draft = Draft()
    if topic not in UPSERT_TOPICS | CANCEL_TOPICS:
        draft.action = Action.IGNORE
        draft.note = f"topic {topic or '(none)'} does not create or change orders"
        return draft
    if not isinstance(payload, dict):
        draft.problem("body", "is not a JSON object")
        return draft
    try:
        draft.external_id = order_id(payload)
    except Unusable as exc:
        draft.problem("id", str(exc))
        return draft
    draft.put("source_updated_at", n.utc, payload.get("updated_at"))
    draft.source_updated_at = draft.fields.pop("source_updated_at", None)
    if topic in CANCEL_TOPICS:
        draft.action = Action.CANCEL
        draft.note = text_reason(payload)
        return draft
    status = n.text(payload.get("financial_status")).lower()
    if options.get("require_paid") and status not in PAID:
        # orders/create is not proof of payment; orders/paid (or an update) follows.
        draft.action = Action.IGNORE
        draft.note = f"not paid yet (financial_status {status or 'missing'}); waiting for orders/paid"
        return draft
    _order_fields(draft, payload, options)
    return draft


def text_reason(payload: dict[str, Any]) -> str:
    reason = n.text(payload.get("cancel_reason"))
    return f"cancelled in Shopify ({reason})" if reason else "cancelled in Shopify"


def _order_fields(draft: Draft, payload: dict[str, Any], options: dict[str, Any]) -> None:
    ship = payload.get("shipping_address")
    if not isinstance(ship, dict):
        draft.problem("shipping_address", "is missing: the order has nothing to deliver to")
        return
    draft.put("reference", n.text, payload.get("name"), max_length=128)
    draft.put("customer_name", n.person_name, first=ship.get("first_name"), last=ship.get("last_name"),
              full=ship.get("name"), company=ship.get("company"))
    draft.put("address_line1", n.text, ship.get("address1"), max_length=200)
    line2 = " ".join(p for p in (n.text(ship.get("address2")), n.text(ship.get("company"))) if p)
    draft.put("address_line2", n.text, line2, max_length=200)
    draft.put("city", n.text, ship.get("city"), max_length=100)
    country = draft.put("country", n.country_code,
                        ship.get("country_code") or ship.get("country") or options.get("default_country"))
    region = country or options.get("default_country") or "US"
    if country:
        draft.put("postal_code", n.postal_code, ship.get("zip"), country)
    draft.put("region", n.text, ship.get("province_code") or ship.get("province"), max_length=100)
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    phone = ship.get("phone") or payload.get("phone") or customer.get("phone")
    if draft.soft("customer_phone", n.phone_e164, phone, region=region) is None and phone:
        draft.fields.setdefault("custom_fields", {})["phone_as_sent"] = n.text(phone)[:64]
    email = n.text(payload.get("email") or payload.get("contact_email") or customer.get("email"))
    if email:
        draft.fields["customer_email"] = email
    draft.put("instructions", n.text, payload.get("note"), max_length=2000)
    lat, lng = ship.get("latitude"), ship.get("longitude")
    if lat not in (None, "") and lng not in (None, ""):
        # Shopify's own geocode of the address; the REST fixture sends them as strings.
        try:
            draft.fields["lat"], draft.fields["lng"] = float(lat), float(lng)
        except (TypeError, ValueError):
            draft.problem("lat", f"coordinates {lat!r}, {lng!r} are not numbers", blocking=False)
    items = []
    for index, line in enumerate(payload.get("line_items") or []):
        if not isinstance(line, dict) or line.get("requires_shipping") is False:
            continue  # gift cards, digital goods and services are not delivered
        quantity = line.get("current_quantity", line.get("quantity"))
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            draft.problem(f"items.{index}.quantity", f"{quantity!r} is not a whole number")
            continue
        if quantity < 1:
            continue  # removed from the order by an edit
        try:
            weight = n.weight_kg(line.get("grams"), "g")
        except Unusable as exc:
            draft.problem(f"items.{index}.weight_kg", str(exc))
            continue
        sku = n.text(line.get("sku")) or f"shopify-{n.text(line.get('variant_id') or line.get('id'))}"
        items.append({"sku": sku[:64], "description": n.text(line.get("title") or line.get("name"))[:200],
                      "quantity": quantity, "weight_kg": weight})
    draft.fields["items"] = items
