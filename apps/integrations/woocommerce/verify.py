"""WooCommerce: signature, the activation ping, and the idempotency key."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..signing import verify_hmac_sha256_b64

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
TOPIC_HEADER = "X-WC-Webhook-Topic"

_PING = re.compile(rb"^webhook_id=\d{1,20}$")
# WooCommerce signs with wp_specialchars_decode($secret, ENT_QUOTES): a secret typed
# with these characters is stored HTML-escaped and signed unescaped.
_WP_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#039;", "'"), ("&#39;", "'"), ("&amp;", "&"))


def signing_key(secret: str) -> str:
    for entity, char in _WP_ENTITIES:
        secret = secret.replace(entity, char)
    return secret


def is_ping(body: bytes, headers: Mapping[str, str]) -> bool:
    """The unsigned form body WooCommerce posts when a webhook is created or activated;
    it must get a 200 or the store refuses to activate the webhook."""
    return not headers.get(SIGNATURE_HEADER) and bool(_PING.match(body.strip()))


def verify(*, secrets: Iterable[str], body: bytes, headers: Mapping[str, str]) -> bool:
    """``X-WC-Webhook-Signature`` = base64(HMAC-SHA256(secret, raw JSON body))."""
    keys = [signing_key(s) for s in secrets if s]
    return verify_hmac_sha256_b64(secrets=keys, body=body, header=headers.get(SIGNATURE_HEADER))


def topic(headers: Mapping[str, str]) -> str:
    return (headers.get(TOPIC_HEADER) or "").strip()


def dedupe_key(headers: Mapping[str, str], payload: Any) -> str | None:
    """Store + topic + order id + modification time. The delivery id is new on every
    delivery (a hash of webhook id and time), so it cannot tell a redelivery apart."""
    order = payload.get("order", payload) if isinstance(payload, dict) else None
    if not isinstance(order, dict) or order.get("id") is None:
        return None
    modified = order.get("date_modified_gmt") or order.get("updated_at") or order.get("date_modified") or ""
    store = (headers.get("X-WC-Webhook-Source") or "").strip()
    return f"{store}|{topic(headers)}|{order['id']}|{modified}"[:255]
