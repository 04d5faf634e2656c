"""Outbound webhooks: endpoints, and delivering the outbox at least once.

One attempt is: claim the delivery (a row lock and a claim time), send outside any
transaction, then record the outcome. A worker that dies between send and record
leaves the claim behind: its job, run again by another worker once the lease lapses,
takes the claim over (apps/common/jobs.py), and ``webhooks_sweep`` re-queues whatever is
still claimed after ``CLAIM_TIMEOUT``; the partner sees the same ``webhook-id`` again (at
least once, never a new id).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Organization
from apps.common import metrics
from apps.common.exceptions import Conflict, ValidationFailed
from apps.common.jobs import job_is_rerun, rerun_claim_cutoff
from apps.events.types import ALL as EVENT_TYPES

from ..models import DeliveryAttempt, DeliveryStatus, Taxonomy, WebhookDelivery, WebhookEndpoint
from ..outbound import signing
from ..outbound.transport import DestinationRefused, Response, SafeHttpTransport, Transport, TransportError

logger = logging.getLogger(__name__)

# Seconds to wait after the 1st, 2nd, … failed attempt: the Standard Webhooks example
# schedule, stretched so the last attempt comes more than a day after the first even
# with the smallest jitter (sum 99,305 s = 27.6 h). Jitter only lengthens a wait.
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.25
MAX_RETRY_AFTER = timedelta(hours=24)
# Longer than the send timeout: a claim this old belongs to a worker that died.
CLAIM_TIMEOUT = timedelta(seconds=120)


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> timedelta:
    """The wait after failed attempt number ``attempt`` (1-based), jittered upwards."""
    base = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
    return timedelta(seconds=base * (1 + (rng or random).uniform(0, JITTER)))


def parse_retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    """``Retry-After`` as seconds or an HTTP date, capped at a day."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return max(timedelta(0), min(wait, MAX_RETRY_AFTER))


# --- endpoints ---------------------------------------------------------------------------


def _check_types(event_types: Iterable[str]) -> list[str]:
    bad = []
    for pattern in event_types:
        if pattern == "*" or pattern in EVENT_TYPES:
            continue
        if pattern.endswith(".*") and any(t.startswith(pattern[:-1]) for t in EVENT_TYPES):
            continue
        bad.append(pattern)
    return bad


def endpoint_create(*, org: Organization, url: str, event_types: list[str], description: str = "",
                    taxonomy: str = Taxonomy.LASTMILE, status_mapping: dict[str, str] | None = None,
                    order_source: str = "") -> WebhookEndpoint:
    errors: dict[str, list[str]] = {}
    if not url.startswith(("https://", "http://")):
        errors["url"] = ["An http(s) URL."]
    if bad := _check_types(event_types):
        errors["event_types"] = [f"Unknown event types: {', '.join(bad)} (see docs/events.md; 'order.*' and '*' work)."]
    if not event_types:
        errors["event_types"] = ["Subscribe to at least one event type."]
    unknown = sorted(set(status_mapping or {}) - EVENT_TYPES)
    if unknown:
        errors["status_mapping"] = [f"Not event types: {', '.join(unknown)}."]
    if errors:
        raise ValidationFailed(errors)
    return WebhookEndpoint.objects.create(
        org=org, url=url, event_types=event_types, description=description, taxonomy=taxonomy,
        status_mapping=status_mapping or {}, secret=signing.secret_new(), order_source=order_source,
    )


def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, grace: timedelta = timedelta(hours=24)) -> WebhookEndpoint:
    """A new secret; until ``grace`` passes every request is signed with both."""
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret, locked.secret = locked.secret, signing.secret_new()
        locked.previous_secret_expires_at = timezone.now() + grace
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return locked


def endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """Switch a disabled endpoint back on; what waited for it goes out in order."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True, disabled_reason="")
    endpoint.refresh_from_db()
    _queue_heads(endpoint_id=endpoint.pk)
    return endpoint


def endpoint_secrets(endpoint: WebhookEndpoint, *, now: datetime) -> list[str]:
    valid = [endpoint.secret]
    if endpoint.previous_secret and (endpoint.previous_secret_expires_at or now) > now:
        valid.append(endpoint.previous_secret)
    return valid


# --- delivering ---------------------------------------------------------------------------


def default_transport() -> Transport:
    return SafeHttpTransport(allowed_networks=settings.WEBHOOK_ALLOWED_NETWORKS)


@dataclass(frozen=True)
class Outcome:
    status: str  # sent, retry, dead, waiting, skipped


def _claim(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint")
                    .filter(pk=delivery_id).first())
        if delivery is None or delivery.status != DeliveryStatus.PENDING or not delivery.endpoint.active:
            return None
        if delivery.next_attempt_at > now:
            return None  # a retry task for that time is queued
        if delivery.claimed_at and delivery.claimed_at > now - CLAIM_TIMEOUT and not (
                job_is_rerun() and delivery.claimed_at < rerun_claim_cutoff(now=now)):
            return None  # another worker is sending it (unless it is this job's dead earlier run)
        ahead = WebhookDelivery.objects.filter(endpoint_id=delivery.endpoint_id, ordering_key=delivery.ordering_key,
                                               status=DeliveryStatus.PENDING, pk__lt=delivery.pk).exists()
        if ahead:
            return None  # an earlier status of this order goes first; it queues us when done
        delivery.claimed_at = now
        delivery.attempts += 1
        delivery.save(update_fields=["claimed_at", "attempts"])
    return delivery


def delivery_attempt(*, delivery_id: int, transport: Transport | None = None, now: datetime | None = None) -> Outcome:
    """Try to deliver once. Safe to call twice for the same delivery: the claim lets one through."""
    now = now or timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return Outcome("skipped")
    endpoint = delivery.endpoint
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = signing.headers(secrets=endpoint_secrets(endpoint, now=now), msg_id=delivery.webhook_id,
                              timestamp=int(now.timestamp()), body=body)
    response: Response | None = None
    error = ""
    try:
        response = (transport or default_transport()).post(endpoint.url, body=body, headers=headers,
                                                            timeout=settings.WEBHOOK_TIMEOUT_S)
    except (TransportError, DestinationRefused) as exc:
        error = str(exc)[:500]
    return _record(delivery, headers, response, error, now)


def _record(delivery: WebhookDelivery, headers: dict[str, str], response: Response | None, error: str,
            now: datetime) -> Outcome:
    from ..tasks import deliver_webhook

    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint").get(pk=delivery.pk)
        endpoint = delivery.endpoint
        DeliveryAttempt.objects.create(
            delivery=delivery, request_headers={k: v for k, v in headers.items() if k != "webhook-signature"},
            status_code=response.status if response else None,
            response_body=response.body[:1000].decode("utf-8", errors="replace") if response else "",
            latency_ms=response.latency_ms if response else 0, error=error,
        )
        delivery.claimed_at = None
        delivery.last_status_code = response.status if response else None
        code = response.status if response else None
        if code is not None and 200 <= code < 300:
            delivery.status, delivery.delivered_at, delivery.last_error = DeliveryStatus.SUCCEEDED, now, ""
            outcome = "sent"
        elif code == 410:
            # Gone: the partner removed the endpoint. Stop sending to it at all.
            endpoint.active, endpoint.disabled_reason = False, f"410 Gone at {now.isoformat()}"
            endpoint.save(update_fields=["active", "disabled_reason"])
            delivery.status, delivery.last_error = DeliveryStatus.DEAD, "410 Gone: endpoint disabled"
            outcome = "dead"
        else:
            delivery.last_error = error or (f"HTTP {code} (redirects are not followed)" if code and 300 <= code < 400
                                            else f"HTTP {code}")
            if delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = DeliveryStatus.DEAD
                outcome = "dead"
            else:
                wait = retry_delay(delivery.attempts)
                asked = parse_retry_after(response.headers.get("retry-after") if response else None, now=now)
                if asked is not None and asked > wait:
                    wait = asked
                delivery.next_attempt_at = now + wait
                deliver_webhook.using(queue_name="webhooks", run_after=delivery.next_attempt_at).enqueue(delivery.pk)
                outcome = "retry"
        delivery.save()
        if delivery.status != DeliveryStatus.PENDING:
            _next_in_line(delivery)
    metrics.webhook_deliveries.labels(result=outcome).inc()
    return Outcome(outcome)


def _next_in_line(delivery: WebhookDelivery) -> None:
    from ..tasks import deliver_webhook

    following = (WebhookDelivery.objects.filter(endpoint_id=delivery.endpoint_id, ordering_key=delivery.ordering_key,
                                                status=DeliveryStatus.PENDING, pk__gt=delivery.pk)
                 .order_by("pk").values_list("pk", flat=True).first())
    if following is not None:
        deliver_webhook.using(queue_name="webhooks").enqueue(following)


def _queue_heads(*, endpoint_id: int | None = None, org_id: int | None = None) -> int:
    """Queue the first pending delivery of every (endpoint, order) line."""
    from ..tasks import deliver_webhook

    rows = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, endpoint__active=True)
    if endpoint_id is not None:
        rows = rows.filter(endpoint_id=endpoint_id)
    if org_id is not None:
        rows = rows.filter(org_id=org_id)
    heads: dict[tuple[int, str], int] = {}
    for pk, endpoint, key in rows.order_by("pk").values_list("pk", "endpoint_id", "ordering_key"):
        heads.setdefault((endpoint, key), pk)
    for pk in heads.values():
        deliver_webhook.using(queue_name="webhooks").enqueue(pk)
    return len(heads)


# --- replay and recovery -------------------------------------------------------------------


def delivery_replay(*, deliveries: Iterable[WebhookDelivery]) -> int:
    """Send again, with the same webhook-id and a fresh attempt budget. A delivery that is
    still pending is left alone (it is on its way)."""
    ids = [d.pk for d in deliveries]
    now = timezone.now()
    with transaction.atomic():
        rows = list(WebhookDelivery.objects.select_for_update().filter(pk__in=ids)
                    .exclude(status=DeliveryStatus.PENDING))
        for row in rows:
            row.status, row.attempts, row.next_attempt_at, row.claimed_at = DeliveryStatus.PENDING, 0, now, None
            row.save(update_fields=["status", "attempts", "next_attempt_at", "claimed_at"])
        orgs = {r.org_id for r in rows}
        for org_id in orgs:
            _queue_heads(org_id=org_id)
    if not rows and ids:
        raise Conflict("Those deliveries are still pending; they will be sent.", code="not_replayable")
    return len(rows)


def webhooks_sweep(*, now: datetime | None = None) -> int:
    """Re-queue deliveries whose worker died (claim expired) or whose task was lost:
    every pending line head that is due. Harmless to run often: claims dedupe."""
    from ..tasks import deliver_webhook

    now = now or timezone.now()
    due = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now,
                                         endpoint__active=True).exclude(claimed_at__gt=now - CLAIM_TIMEOUT)
    heads: dict[tuple[int, str], int] = {}
    for pk, endpoint, key in (WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, endpoint__active=True)
                              .order_by("pk").values_list("pk", "endpoint_id", "ordering_key")):
        heads.setdefault((endpoint, key), pk)
    due_ids = set(due.values_list("pk", flat=True))
    queued = 0
    for pk in heads.values():
        if pk in due_ids:
            deliver_webhook.using(queue_name="webhooks").enqueue(pk)
            queued += 1
    return queued


def delivery_log(*, endpoint: WebhookEndpoint) -> Any:
    return endpoint.deliveries.order_by("-id")
