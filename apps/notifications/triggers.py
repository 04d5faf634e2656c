"""When each trigger fires, and what its message says by default.

Event triggers come from the event log after commit (``on_events``, called by the one
publisher); ETA triggers from the ETA engine's refreshes (``on_etas``). Both only
*request* a message: ``services.message_request`` decides (rule on? opted out? quiet
hours?), and the unique (order, trigger) row makes a second request a no-op.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from apps.events import types as ev

from .models import Trigger

logger = logging.getLogger(__name__)

EVENT_TRIGGERS = {
    ev.ORDER_DISPATCHED: Trigger.SCHEDULED,
    ev.ORDER_OUT_FOR_DELIVERY: Trigger.OUT_FOR_DELIVERY,
    ev.ORDER_DELIVERED: Trigger.DELIVERED,
    ev.ORDER_FAILED: Trigger.FAILED,
}

# Texts in Django template syntax. Context: brand, reference, customer (first name),
# window, eta, eta_window, stops_away, driver, link, failure, next_step.
DEFAULTS: dict[str, dict[str, str]] = {
    Trigger.SCHEDULED: {
        "sms": "{{ brand }}: your order {{ reference }} is scheduled for {{ window }}. Follow it: {{ link }}",
        "subject": "Your delivery from {{ brand }} is scheduled",
        "email": "Hello {{ customer }},\n\nyour order {{ reference }} is scheduled for delivery {{ window }}.\n"
                 "Follow it live: {{ link }}\n\n{{ brand }}",
    },
    Trigger.OUT_FOR_DELIVERY: {
        "sms": "{{ brand }}: your order {{ reference }} is on its way, expected {{ eta_window }}. {{ link }}",
        "subject": "Your order {{ reference }} is out for delivery",
        "email": "Hello {{ customer }},\n\nyour order {{ reference }} is out for delivery, expected "
                 "{{ eta_window }}.\nFollow it live: {{ link }}\n\n{{ brand }}",
    },
    Trigger.ETA_CHANGED: {
        "sms": "{{ brand }}: new time for your order {{ reference }}: {{ eta_window }}. Sorry for the change. {{ link }}",
        "subject": "New delivery time for your order {{ reference }}",
        "email": "Hello {{ customer }},\n\nyour delivery time has changed: now expected {{ eta_window }}.\n"
                 "Follow it live: {{ link }}\n\n{{ brand }}",
    },
    Trigger.ARRIVING_SOON: {
        "sms": "{{ brand }}: {{ driver }} is {{ stops_away }} stop{{ stops_away|pluralize }} away with your order "
               "{{ reference }}, expected {{ eta_window }}. {{ link }}",
        "subject": "Your delivery is arriving soon",
        "email": "Hello {{ customer }},\n\nyour driver is {{ stops_away }} stop{{ stops_away|pluralize }} away, "
                 "expected {{ eta_window }}.\n{{ link }}\n\n{{ brand }}",
    },
    Trigger.DELIVERED: {
        "sms": "{{ brand }}: your order {{ reference }} was delivered. Proof of delivery and rating: {{ link }}",
        "subject": "Your order {{ reference }} was delivered",
        "email": "Hello {{ customer }},\n\nyour order {{ reference }} was delivered.\n"
                 "Proof of delivery, and tell us how we did: {{ link }}\n\n{{ brand }}",
    },
    Trigger.FAILED: {
        "sms": "{{ brand }}: we could not deliver your order {{ reference }} today: {{ failure }} {{ next_step }} {{ link }}",
        "subject": "We could not deliver your order {{ reference }}",
        "email": "Hello {{ customer }},\n\nwe could not deliver your order {{ reference }} today: {{ failure }}\n"
                 "{{ next_step }}\n{{ link }}\n\n{{ brand }}",
    },
}

FAILURE_TEXT = {
    "recipient_absent": "nobody was at home.",
    "refused": "the delivery was refused.",
    "address_not_found": "the driver could not find the address.",
    "access_denied": "the driver could not get access.",
    "damaged": "the parcel was damaged.",
    "unsafe": "it was not safe to deliver.",
    "other": "the delivery could not be completed.",
}
NEXT_STEP = "We will try again on the next delivery day; reply or use the link to change the instructions."


def on_events(events: Sequence[Any]) -> None:
    """After commit: request the messages the events call for. Never raises."""
    from .services import message_request_later

    for event in events:
        trigger = EVENT_TRIGGERS.get(event.type)
        if trigger is None or event.subject_type != "order":
            continue
        try:
            message_request_later(org_id=event.org_id, order_id=int(event.subject_id), trigger=trigger)
        except Exception:
            logger.warning("notification for %s of order %s not requested", trigger, event.subject_id, exc_info=True)


class _Requested:
    """ETA triggers already requested in this process, so a ping does not ask again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[tuple[int, str]] = set()

    def first_time(self, order_id: int, trigger: str) -> bool:
        with self._lock:
            if (order_id, trigger) in self._seen:
                return False
            self._seen.add((order_id, trigger))
            if len(self._seen) > 200_000:  # a long-running process: forget the oldest day
                self._seen.clear()
            return True

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()


requested = _Requested()


def on_etas(plan: Any, etas: Sequence[float]) -> None:
    """After an ETA refresh: arriving soon (within N stops) and ETA changed (moved from
    the first ETA by more than the threshold). In-memory checks only; a request is made
    once per order and trigger per process, and the database dedupes across processes."""
    from .services import message_request_later

    rules = plan.notify
    if rules is None or plan.status != "in_progress":
        return
    for stop, eta, away in zip(plan.stops, etas, plan.stops_away(), strict=True):
        if stop.arrived_at is not None:
            continue
        if away <= rules.arriving_soon_stops and requested.first_time(stop.order_id, Trigger.ARRIVING_SOON):
            message_request_later(org_id=plan.org_id, order_id=stop.order_id, trigger=Trigger.ARRIVING_SOON)
        first = plan.first_etas.get(stop.stop_id)
        if (first is not None and abs(eta - first) > rules.eta_change_threshold_min * 60
                and requested.first_time(stop.order_id, Trigger.ETA_CHANGED)):
            message_request_later(org_id=plan.org_id, order_id=stop.order_id, trigger=Trigger.ETA_CHANGED)
