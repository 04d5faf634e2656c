"""Reconciliation: pull a store's recently changed orders through its API, because
neither Shopify nor WooCommerce guarantees every webhook arrives (WooCommerce never
retries). Each order fetched goes through the same pipeline as a webhook: stored as an
inbound message, processed by a worker, deduplicated against what we already hold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from django.conf import settings
from django.utils import timezone

from apps.common.exceptions import BusinessRuleViolation

from ..adapters import load_json
from ..models import Connection, ConnectionKind
from ..outbound.transport import DestinationRefused, Response, SafeHttpTransport, TransportError
from ..shopify import api as shopify_api
from ..woocommerce import api as woo_api
from .inbound import inbound_receive

MAX_PAGES = 50
DEFAULT_WINDOW = timedelta(hours=24)


class ApiTransport(Protocol):
    def get(self, url: str, *, headers: dict[str, str], timeout: float) -> Response: ...


class _Unbounded(SafeHttpTransport):
    def get(self, url: str, *, headers: dict[str, str], timeout: float) -> Response:
        # An order page is up to a few MB; webhook answers are cut at 4 KB, these are not.
        return self.request("GET", url, body=None, headers=headers, timeout=timeout, max_bytes=20 * 1024 * 1024)


def default_transport() -> ApiTransport:
    return _Unbounded(allowed_networks=settings.WEBHOOK_ALLOWED_NETWORKS)


@dataclass(frozen=True)
class Reconciled:
    fetched: int
    queued: int
    known: int


def _get(transport: ApiTransport, url: str, headers: dict[str, str]) -> tuple[object, dict[str, str]]:
    try:
        response = transport.get(url, headers=headers, timeout=30)
    except (TransportError, DestinationRefused) as exc:
        raise BusinessRuleViolation(f"The store's API could not be reached: {exc}", code="store_unreachable") from None
    if response.status != 200:
        raise BusinessRuleViolation(f"The store's API answered HTTP {response.status}.", code="store_api_error",
                                    status=response.status)
    try:
        return load_json(response.body), response.headers
    except ValueError:
        raise BusinessRuleViolation("The store's API did not answer JSON.", code="store_api_error") from None


def _fetch(connection: Connection, since: datetime, transport: ApiTransport) -> list[dict]:
    orders: list[dict] = []
    if connection.kind == ConnectionKind.SHOPIFY:
        url: str | None = shopify_api.recent_orders_url(shop=connection.store, since=since)
        for _ in range(MAX_PAGES):
            if url is None:
                break
            payload, headers = _get(transport, url, shopify_api.auth_headers(connection.api))
            orders += shopify_api.orders_of(payload)
            url = shopify_api.next_page(headers)
    elif connection.kind == ConnectionKind.WOOCOMMERCE:
        page, pages = 1, 1
        while page <= min(pages, MAX_PAGES):
            url = woo_api.recent_orders_url(store=connection.store, since=since, page=page)
            payload, headers = _get(transport, url, woo_api.auth_headers(connection.api))
            orders += woo_api.orders_of(payload)
            pages = woo_api.total_pages(headers)
            page += 1
    else:
        raise BusinessRuleViolation("Only Shopify and WooCommerce connections can be reconciled.",
                                    code="not_reconcilable")
    return orders


def _as_delivery(connection: Connection, order: dict) -> tuple[dict[str, str], bytes]:
    """The headers and body a webhook for this order would have had, so the message is
    processed and deduplicated exactly like one."""
    body = json.dumps(order, default=lambda v: float(v) if isinstance(v, Decimal) else str(v)).encode()
    if connection.kind == ConnectionKind.SHOPIFY:
        headers = {"X-Shopify-Topic": "orders/updated",
                   "X-Shopify-Event-Id": f"reconcile:{order.get('id')}:{order.get('updated_at')}"}
    else:
        headers = {"X-WC-Webhook-Topic": "order.updated", "X-WC-Webhook-Source": connection.store}
    return headers, body


def connection_reconcile(*, connection: Connection, since: datetime | None = None,
                         transport: ApiTransport | None = None) -> Reconciled:
    if not connection.api:
        raise BusinessRuleViolation("Add the store's API credentials to the connection first.", code="no_api_credentials")
    started = timezone.now()
    since = since or connection.last_reconciled_at or started - DEFAULT_WINDOW
    orders = _fetch(connection, since - timedelta(minutes=5), transport or default_transport())
    queued = 0
    for order in orders:
        headers, body = _as_delivery(connection, order)
        received = inbound_receive(connection=connection, headers=headers, body=body)
        queued += not received.duplicate
    Connection.objects.filter(pk=connection.pk).update(last_reconciled_at=started)
    return Reconciled(fetched=len(orders), queued=queued, known=len(orders) - queued)
