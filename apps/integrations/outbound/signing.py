"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec 1.0).

    webhook-id:        msg_…, the same on every attempt (the receiver's idempotency key)
    webhook-timestamp: integer Unix seconds of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"> [space v1,… for each valid secret]

Secrets are ``whsec_`` + base64 of 32 random bytes; the HMAC key is the decoded bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Iterable

PREFIX = "whsec_"


def secret_new() -> str:
    return PREFIX + base64.b64encode(_secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    if "." in msg_id:
        raise ValueError("webhook ids must not contain '.'")
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest()).decode()


def headers(*, secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers, signed with every currently valid secret (rotation overlap)."""
    signatures = [sign(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets if s]
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": " ".join(signatures)}
