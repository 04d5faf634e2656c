"""Our events in the common tracking vocabularies, and a partner's own codes on top.

AfterShip tags and EasyPost tracker statuses (../shared/research/mission-anchors.md §2.3).
Events with no meaning for a shipment's status (hubs, vehicles, routes) map to None.
"""

from __future__ import annotations

from apps.events import types as ev

from ..models import Taxonomy

AFTERSHIP: dict[str, str] = {
    ev.ORDER_CREATED: "InfoReceived",
    ev.ORDER_UPDATED: "InfoReceived",
    ev.ORDER_PLANNED: "InfoReceived",
    ev.ORDER_UNPLANNED: "InfoReceived",
    ev.ORDER_DISPATCHED: "InTransit",
    ev.ORDER_RESCHEDULED: "InTransit",
    ev.ORDER_OUT_FOR_DELIVERY: "OutForDelivery",
    ev.STOP_ARRIVED: "OutForDelivery",
    ev.ORDER_DELIVERED: "Delivered",
    ev.ORDER_FAILED: "AttemptFail",
    ev.STOP_FAILED: "AttemptFail",
    ev.ORDER_CANCELLED: "Exception",
    ev.ORDER_RETURNED: "Exception",
}

EASYPOST: dict[str, str] = {
    ev.ORDER_CREATED: "pre_transit",
    ev.ORDER_UPDATED: "pre_transit",
    ev.ORDER_PLANNED: "pre_transit",
    ev.ORDER_UNPLANNED: "pre_transit",
    ev.ORDER_DISPATCHED: "in_transit",
    ev.ORDER_RESCHEDULED: "in_transit",
    ev.ORDER_OUT_FOR_DELIVERY: "out_for_delivery",
    ev.STOP_ARRIVED: "out_for_delivery",
    ev.ORDER_DELIVERED: "delivered",
    ev.ORDER_FAILED: "failure",
    ev.STOP_FAILED: "failure",
    ev.ORDER_CANCELLED: "cancelled",
    ev.ORDER_RETURNED: "return_to_sender",
}

AFTERSHIP_TAGS = frozenset({"Pending", "InfoReceived", "InTransit", "OutForDelivery", "AttemptFail", "Delivered",
                            "AvailableForPickup", "Exception", "Expired"})
EASYPOST_STATUSES = frozenset({"unknown", "pre_transit", "in_transit", "out_for_delivery", "delivered",
                               "available_for_pickup", "return_to_sender", "failure", "cancelled", "error"})

TABLES = {Taxonomy.AFTERSHIP: AFTERSHIP, Taxonomy.EASYPOST: EASYPOST}


def status_for(*, event_type: str, taxonomy: str, partner_codes: dict[str, str]) -> str | None:
    """The partner's code for an event: its own mapping first, then the chosen taxonomy;
    the Lastmile taxonomy is the event type itself."""
    if event_type in partner_codes:
        return partner_codes[event_type]
    if taxonomy == Taxonomy.LASTMILE:
        return event_type
    return TABLES[taxonomy].get(event_type)
