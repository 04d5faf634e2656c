"""The one publisher: after a transaction commits, send its events to the groups
that should see them.

Publishing waits for the commit because a client that hears about a change must be
able to read it; and it never raises into the request, because live pushes are
at-most-once by contract (a full channel, Redis restarting): clients converge by
resyncing from the event log, which is the part that may not be lost.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from apps.events.models import Event

from .groups import driver_group, org_group, track_group
from .messages import event_message

logger = logging.getLogger(__name__)

# A transaction with more events than this (a bulk import) is announced, not
# streamed: clients fetch a fresh snapshot instead of parsing thousands of events.
MAX_EVENTS_PER_PUSH = 200


def audiences(events: Sequence[Event]) -> dict[str, list[Event]]:
    """Which group gets which events. Drivers get their routes' events and their own."""
    from apps.dispatch.models import Route

    route_ids = {e.payload.get("route_id") for e in events if e.payload.get("route_id")}
    route_drivers = dict(Route.objects.filter(pk__in=route_ids).exclude(driver=None).values_list("pk", "driver_id"))
    out: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        out[org_group(event.org_id)].append(event)
        driver_id = route_drivers.get(event.payload.get("route_id"))
        if event.subject_type == "driver":
            driver_id = int(event.subject_id)
        if driver_id:
            out[driver_group(driver_id)].append(event)
        if event.subject_type == "order" and event.type.startswith("order."):
            out[track_group(int(event.subject_id))].append(event)
    return out


def _group_message(events: list[Event]) -> dict[str, Any]:
    if len(events) > MAX_EVENTS_PER_PUSH:
        return {"type": "lastmile.invalidate", "seq": events[-1].sequence}
    return {"type": "lastmile.events", "events": [event_message(e) for e in events]}


def publish_events(events: Sequence[Event]) -> None:
    if not events:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        for group, group_events in audiences(events).items():
            async_to_sync(layer.group_send)(group, _group_message(group_events))
    except Exception:  # a push is best-effort; the log has the events
        logger.warning("live publish of %d events failed; clients will resync", len(events), exc_info=True)


def send_control(group: str, message: dict[str, Any]) -> None:
    """A control message (not an event) to one group, e.g. to close revoked sessions."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": "lastmile.control", **message})
    except Exception:
        logger.warning("control message to %s failed", group, exc_info=True)
