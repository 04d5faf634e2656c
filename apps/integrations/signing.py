"""Inbound signature checks shared by the adapters: base64 HMAC-SHA256 of the raw body."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable


def hmac_sha256_b64(secret: str | bytes, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def verify_hmac_sha256_b64(*, secrets: Iterable[str | bytes], body: bytes, header: str | None) -> bool:
    """True when ``header`` is the base64 HMAC-SHA256 of the exact bytes received under
    one of ``secrets``. The header is decoded strictly and compared in constant time;
    a hex digest, a truncated one or stray characters never match."""
    if not header:
        return False
    try:
        sent = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(sent) != hashlib.sha256().digest_size:
        return False
    ok = False
    for secret in secrets:
        if not secret:
            continue
        key = secret.encode() if isinstance(secret, str) else secret
        # No early exit: every secret is tried, so timing says nothing about which matched.
        ok |= hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), sent)
    return ok
