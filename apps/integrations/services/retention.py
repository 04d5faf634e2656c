"""Retention of raw inbound messages: bodies and headers are personal data (names,
addresses, phone numbers), kept only as long as they can be useful.

Once a message is done with (processed, stale or ignored, and not waiting in the
attention queue) and older than its retention period, its raw body and headers are
emptied. The audit record stays: id, connection (the partner), topic, received_at,
status, reason, the order it touched and the SHA-256 of the body as received, so it
can still be shown which bytes arrived. A message still needing attention, or not
processed yet, is never touched: a person or a worker still needs its body.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import Connection, InboundMessage, InboundStatus

DONE = (InboundStatus.PROCESSED, InboundStatus.STALE, InboundStatus.IGNORED)
BATCH = 500


def _cutoffs(now: datetime) -> Q:
    """Messages past their period: the setting, or the connection's own ``raw_retention_days``."""
    default = now - timedelta(days=settings.INBOUND_RAW_RETENTION_DAYS)
    own = {pk: days for pk, days in Connection.objects.filter(options__has_key="raw_retention_days")
           .values_list("pk", "options__raw_retention_days") if isinstance(days, int) and days > 0}
    past = Q(received_at__lt=default) & ~Q(connection_id__in=own)
    for pk, days in own.items():
        past |= Q(connection_id=pk, received_at__lt=now - timedelta(days=days))
    return past


def inbound_purge_raw(*, now: datetime | None = None) -> int:
    """Empty the raw body and headers of every done message past its retention period;
    return how many. Runs in batches, each locking its rows (skipping rows a worker or a
    person holds): a message reprocessed meanwhile is re-checked under the lock."""
    now = now or timezone.now()
    due = (InboundMessage.objects.filter(_cutoffs(now), status__in=DONE, attention=False, raw_purged_at=None)
           .order_by("id"))
    purged = 0
    while True:
        with transaction.atomic():
            rows = list(due.select_for_update(skip_locked=True, of=("self",))
                        .only("id", "body", "body_sha256")[:BATCH])
            if not rows:
                return purged
            for row in rows:
                # Messages stored before hashes were kept get theirs now, from the body itself.
                row.body_sha256 = row.body_sha256 or hashlib.sha256(bytes(row.body)).hexdigest()
                row.body, row.headers, row.raw_purged_at = b"", {}, now
            InboundMessage.objects.bulk_update(rows, ["body", "headers", "body_sha256", "raw_purged_at"])
        purged += len(rows)
