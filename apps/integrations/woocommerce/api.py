"""WooCommerce's REST API (wc/v3), for reconciliation: pure request builders and parsers."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import urlencode


def recent_orders_url(*, store: str, since: datetime, page: int = 1, per_page: int = 100) -> str:
    query = urlencode({"modified_after": since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "dates_are_gmt": "true",
                       "orderby": "modified", "order": "asc", "per_page": per_page, "page": page})
    return f"{store.rstrip('/')}/wp-json/wc/v3/orders?{query}"


def auth_headers(api: dict[str, str]) -> dict[str, str]:
    token = base64.b64encode(f"{api.get('key', '')}:{api.get('secret', '')}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Accept": "application/json"}


def orders_of(payload: object) -> list[dict]:
    if not isinstance(payload, list):
        raise ValueError("expected a list of orders")
    return [o for o in payload if isinstance(o, dict)]


def total_pages(headers: dict[str, str]) -> int:
    raw = headers.get("x-wp-totalpages", "1")
    return int(raw) if raw.isdigit() else 1
