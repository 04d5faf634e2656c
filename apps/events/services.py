"""The only way events enter the log. Call inside the transaction that makes the change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import Organization

from .models import Event, OrgEventCounter
from .types import ALL as ALL_TYPES


@dataclass(frozen=True)
class NewEvent:
    type: str
    subject_type: str
    subject_id: str | int
    payload: dict[str, Any] = field(default_factory=dict)


def _reserve(org: Organization, count: int) -> int:
    """Reserve ``count`` sequence numbers; return the first. Caller is in a transaction."""
    updated = OrgEventCounter.objects.filter(org=org).update(last=F("last") + count)
    if not updated:
        OrgEventCounter.objects.get_or_create(org=org, defaults={"last": 0})
        OrgEventCounter.objects.filter(org=org).update(last=F("last") + count)
    last = OrgEventCounter.objects.filter(org=org).values_list("last", flat=True).get()
    return last - count + 1


def events_record(*, org: Organization, actor: str, events: Sequence[NewEvent]) -> list[Event]:
    """Append events with consecutive sequence numbers, in one insert."""
    if not events:
        return []
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("events_record must run inside the transaction that makes the change")
    unknown = {e.type for e in events} - ALL_TYPES
    if unknown:
        raise ValueError(f"unknown event types: {sorted(unknown)}")
    first = _reserve(org, len(events))
    now = timezone.now()
    rows = [
        Event(
            org=org, sequence=first + i, type=e.type, subject_type=e.subject_type, subject_id=str(e.subject_id),
            actor=actor, payload=e.payload, created_at=now,
        )
        for i, e in enumerate(events)
    ]
    created = Event.objects.bulk_create(rows)
    # In this same transaction, so they commit with the change or not at all:
    # outbound webhook deliveries (the outbox) and customer notifications (queued jobs;
    # the worker sends only after commit).
    from apps.integrations.outbound.outbox import outbox_record
    from apps.notifications.triggers import on_events

    outbox_record(org_id=org.pk, events=created)
    on_events(created)
    # Live pushes go out only once the change is visible to everyone who reads it; the
    # report summaries are rebuilt from committed rows, so their days are marked stale
    # then too. Neither raises.
    from apps.realtime.publisher import publish_events
    from apps.reports.summary import summary_note_events

    def after_commit() -> None:
        publish_events(created)
        summary_note_events(created)

    transaction.on_commit(after_commit)
    return created


def event_record(*, org: Organization, actor: str, type: str, subject_type: str, subject_id: str | int,
                 payload: dict[str, Any] | None = None) -> Event:
    return events_record(org=org, actor=actor, events=[NewEvent(type, subject_type, subject_id, payload or {})])[0]
