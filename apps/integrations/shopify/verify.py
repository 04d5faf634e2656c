"""Shopify: who sent it, what it is, and its idempotency key. Header names are
case-insensitive (``headers`` is Django's ``request.headers``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..signing import verify_hmac_sha256_b64

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
TOPIC_HEADER = "X-Shopify-Topic"


def verify(*, secrets: Iterable[str], body: bytes, headers: Mapping[str, str]) -> bool:
    """``X-Shopify-Hmac-Sha256`` = base64(HMAC-SHA256(client secret, raw body))."""
    return verify_hmac_sha256_b64(secrets=secrets, body=body, header=headers.get(HMAC_HEADER))


def topic(headers: Mapping[str, str]) -> str:
    # The docs' sample body is the same for every order topic (even orders/create has
    # cancelled_at set), so only the header says what happened.
    return (headers.get(TOPIC_HEADER) or "").strip()


def dedupe_key(headers: Mapping[str, str]) -> str | None:
    """The event id names the change (one per event, shared by every subscription);
    older deliveries carry only the webhook id, which is stable across retries."""
    if event := (headers.get("X-Shopify-Event-Id") or "").strip():
        return f"event:{event}"[:255]
    if webhook := (headers.get("X-Shopify-Webhook-Id") or "").strip():
        return f"webhook:{webhook}"[:255]
    return None
