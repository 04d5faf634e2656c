"""Inbound signature checks shared by the adapters: base64 HMAC-SHA256 of the raw body,
and Standard Webhooks (an id and a timestamp signed with the body, in a time window)."""

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


# --- Standard Webhooks (standardwebhooks.com; Svix and others send it) ----------------------

# The spec's window, both ways: a replay older than this, or a timestamp from a clock
# running this far ahead, is refused (stripe-python only bounds the past).
STANDARD_WEBHOOKS_TOLERANCE_S = 300


def standard_webhooks_key(secret: str) -> bytes | None:
    """The HMAC key of a Standard Webhooks secret: base64 (padding optional, as the
    reference library allows), optionally prefixed ``whsec_``."""
    encoded = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True) or None
    except (binascii.Error, ValueError):
        return None


def verify_standard_webhook(*, secrets: Iterable[str], body: bytes, headers, now: float,
                            tolerance_s: int = STANDARD_WEBHOOKS_TOLERANCE_S) -> bool:
    """True when the ``webhook-signature`` header holds a ``v1`` HMAC-SHA256 of
    ``{webhook-id}.{webhook-timestamp}.{body}`` under one of ``secrets``, and the timestamp
    is within ``tolerance_s`` of ``now`` either way. The header may carry several
    space-separated signatures (a sender rotating its secret); one valid is enough, the
    others are ignored. An id containing ``.`` is refused: it would make the signed
    content ambiguous. ``headers`` is looked up with lower-case names."""
    msg_id = (headers.get("webhook-id") or "").strip()
    stamp = (headers.get("webhook-timestamp") or "").strip()
    sent = (headers.get("webhook-signature") or "").strip()
    if not msg_id or "." in msg_id or not stamp.isascii() or not stamp.isdigit() or not sent:
        return False
    if abs(now - int(stamp)) > tolerance_s:
        return False
    signatures = []
    for entry in sent.split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue  # another scheme (v1a is asymmetric); not ours to check
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(decoded) == hashlib.sha256().digest_size:
            signatures.append(decoded)
    if not signatures:
        return False
    content = msg_id.encode() + b"." + stamp.encode() + b"." + body
    ok = False
    for secret in secrets:
        key = standard_webhooks_key(secret) if secret else None
        if key is None:
            continue
        expected = hmac.new(key, content, hashlib.sha256).digest()
        for signature in signatures:  # no early exit: timing says nothing about which matched
            ok |= hmac.compare_digest(expected, signature)
    return ok
