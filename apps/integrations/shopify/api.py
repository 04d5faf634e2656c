"""Shopify's Admin REST API, for reconciliation: pure request builders and response parsers."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode

API_VERSION = "2026-04"
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


def recent_orders_url(*, shop: str, since: datetime, limit: int = 250) -> str:
    query = urlencode({"status": "any", "updated_at_min": since.isoformat(), "limit": limit, "order": "updated_at asc"})
    return f"https://{shop}/admin/api/{API_VERSION}/orders.json?{query}"


def auth_headers(api: dict[str, str]) -> dict[str, str]:
    return {"X-Shopify-Access-Token": api.get("token", ""), "Accept": "application/json"}


def orders_of(payload: object) -> list[dict]:
    if not isinstance(payload, dict) or not isinstance(payload.get("orders"), list):
        raise ValueError("expected {\"orders\": [...]}")
    return [o for o in payload["orders"] if isinstance(o, dict)]


def next_page(headers: dict[str, str]) -> str | None:
    """Cursor pagination: the Link header's rel=next URL."""
    match = _NEXT.search(headers.get("link", ""))
    return match[1] if match else None
