"""A WooCommerce order webhook body into a draft of our order.

Two shapes arrive: the current one (the wc/v3 REST representation: ``shipping``,
``date_modified_gmt``) and the legacy API's ``{"order": {...}}`` (``shipping_address``,
``updated_at``) from stores whose webhooks were created long ago.
"""

from __future__ import annotations

from typing import Any

from .. import normalize as n
from ..drafts import Action, Draft
from ..normalize import Unusable

UPSERT_TOPICS = frozenset({"order.created", "order.updated", "order.restored"})
CANCEL_TOPICS = frozenset({"order.deleted"})
# Statuses that mean "do not deliver": the order is cancelled on our side too.
UNPAID_STATUSES = frozenset({"pending", "on-hold", "checkout-draft"})
CANCEL_STATUSES = frozenset({"cancelled", "refunded", "failed", "trash"})


def parse(*, topic: str, payload: Any, options: dict[str, Any]) -> Draft:
    draft = Draft()
    if topic not in UPSERT_TOPICS | CANCEL_TOPICS:
        draft.action = Action.IGNORE
        draft.note = f"topic {topic or '(none)'} does not create or change orders"
        return draft
    if not isinstance(payload, dict):
        draft.problem("body", "is not a JSON object")
        return draft
    legacy = isinstance(payload.get("order"), dict)
    order = payload["order"] if legacy else payload
    try:
        draft.external_id = n.external_id(order.get("id"))
    except Unusable as exc:
        draft.problem("id", str(exc))
        return draft
    # date_modified_gmt is UTC without an offset; date_modified is the store's local time.
    modified = order.get("updated_at") if legacy else order.get("date_modified_gmt")
    draft.put("source_updated_at", n.utc, modified, tz="UTC")
    draft.source_updated_at = draft.fields.pop("source_updated_at", None)
    status = n.text(order.get("status")).lower()
    if topic in CANCEL_TOPICS or (topic in UPSERT_TOPICS and status in CANCEL_STATUSES):
        draft.action = Action.CANCEL
        draft.note = f"{'deleted' if topic in CANCEL_TOPICS else status} in WooCommerce"
        return draft
    if options.get("require_paid") and status in UNPAID_STATUSES:
        draft.action = Action.IGNORE
        draft.note = f"not paid yet (status {status}); waiting for the paid update"
        return draft
    ship = order.get("shipping_address" if legacy else "shipping")
    bill = order.get("billing_address" if legacy else "billing")
    ship = ship if isinstance(ship, dict) else {}
    bill = bill if isinstance(bill, dict) else {}
    if not n.text(ship.get("address_1")):
        draft.problem("shipping.address_1", "is missing: the order has no shipping address")
        return draft
    draft.put("reference", n.text, f"#{order.get('number') or order.get('order_number') or draft.external_id}",
              max_length=128)
    draft.put("customer_name", n.person_name, first=ship.get("first_name"), last=ship.get("last_name"),
              company=ship.get("company"))
    draft.put("address_line1", n.text, ship.get("address_1"), max_length=200)
    line2 = " ".join(p for p in (n.text(ship.get("address_2")), n.text(ship.get("company"))) if p)
    draft.put("address_line2", n.text, line2, max_length=200)
    draft.put("city", n.text, ship.get("city"), max_length=100)
    country = draft.put("country", n.country_code, ship.get("country") or options.get("default_country"))
    if country:
        draft.put("postal_code", n.postal_code, ship.get("postcode"), country)
    draft.put("region", n.text, ship.get("state"), max_length=100)
    phone = ship.get("phone") or bill.get("phone")
    if draft.soft("customer_phone", n.phone_e164, phone, region=country or "US") is None and phone:
        draft.fields.setdefault("custom_fields", {})["phone_as_sent"] = n.text(phone)[:64]
    if email := n.text(bill.get("email")):
        draft.fields["customer_email"] = email
    draft.put("instructions", n.text, order.get("note") if legacy else order.get("customer_note"), max_length=2000)
    weight_unit = options.get("weight_unit", "kg")
    items = []
    for index, line in enumerate(order.get("line_items") or []):
        if not isinstance(line, dict):
            continue
        quantity = line.get("quantity")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            draft.problem(f"line_items.{index}.quantity", f"{quantity!r} is not a positive whole number")
            continue
        try:
            # Woo's order lines carry no weight unless the store adds it as line meta.
            weight = n.weight_kg(line.get("weight"), weight_unit)
        except Unusable as exc:
            draft.problem(f"line_items.{index}.weight", str(exc))
            continue
        sku = n.text(line.get("sku")) or f"woo-{n.text(line.get('variation_id') or line.get('product_id') or index)}"
        items.append({"sku": sku[:64], "description": n.text(line.get("name"))[:200], "quantity": quantity,
                      "weight_kg": weight})
    draft.fields["items"] = items
    return draft
