"""The shapes pushed to WebSocket clients (documented in docs/realtime.md)."""

from __future__ import annotations

from typing import Any

from apps.events.models import Event


def event_message(event: Event) -> dict[str, Any]:
    return {
        "seq": event.sequence,
        "type": event.type,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "actor": event.actor,
        "payload": event.payload,
        "at": event.created_at.isoformat(),
    }
