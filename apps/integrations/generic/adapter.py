"""A generic connection's adapter, built from its mapping's newest version."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..adapters import Adapter, load_json
from ..drafts import Draft
from ..models import Connection, MappingVersion
from ..signing import verify_hmac_sha256_b64, verify_standard_webhook
from . import mapping as engine


def verify_with(signature: dict[str, Any], *, secrets: Iterable[str], body: bytes, headers: Mapping[str, str]) -> bool:
    """HMAC of the raw body as the mapping describes it (sha256 or sha512, base64 or hex,
    with an optional prefix such as ``sha256=``); compared in constant time. Or, with
    ``{"scheme": "standard-webhooks"}``, the Standard Webhooks headers and time window
    (apps/integrations/signing.py); the connection's secret is then the sender's
    ``whsec_…`` secret."""
    if signature.get("scheme") == "standard-webhooks":
        return verify_standard_webhook(secrets=secrets, body=body, headers=headers, now=time.time())
    sent = (headers.get(signature["header"]) or "").strip()
    prefix = signature.get("prefix", "")
    if not sent or not sent.startswith(prefix):
        return False
    sent = sent[len(prefix):]
    algorithm, encoding = signature.get("algorithm", "sha256"), signature.get("encoding", "base64")
    if algorithm == "sha256" and encoding == "base64":
        return verify_hmac_sha256_b64(secrets=secrets, body=body, header=sent)
    ok = False
    for secret in secrets:
        if not secret:
            continue
        digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm))
        expected = digest.hexdigest() if encoding == "hex" else base64.b64encode(digest.digest()).decode()
        ok |= hmac.compare_digest(expected.encode(), sent.encode())
    return ok


def _dedupe(spec: dict[str, Any], headers: Mapping[str, str], body: bytes) -> str | None:
    rule = spec.get("dedupe")
    if not isinstance(rule, dict):
        return None
    if "header" in rule:
        value = (headers.get(rule["header"]) or "").strip()
        return f"header:{value}"[:255] if value else None
    try:
        payload = load_json(body)
    except ValueError:
        return None
    parts = [engine.resolve(payload, p) for p in rule["paths"]]
    if any(p in (None, "") for p in parts):
        return None
    return "|".join(json.dumps(p, default=str) if not isinstance(p, str) else p for p in parts)[:255]


def build(connection: Connection) -> Adapter:
    version: MappingVersion | None = connection.mapping.current if connection.mapping_id else None
    spec: dict[str, Any] = version.spec if version is not None else {}
    signature = spec.get("signature") if isinstance(spec.get("signature"), dict) else None
    topic_header = (spec.get("topic") or {}).get("header") if isinstance(spec.get("topic"), dict) else None

    def verify(*, secrets: Iterable[str], body: bytes, headers: Mapping[str, str]) -> bool:
        # A mapping without a signature rule verifies nothing, so nothing is accepted.
        return signature is not None and verify_with(signature, secrets=secrets, body=body, headers=headers)

    def parse(*, topic: str, payload: Any, options: dict[str, Any]) -> Draft:
        if version is None:
            draft = Draft()
            draft.problem("mapping", "the connection has no mapping")
            return draft
        draft = engine.parse(spec=spec, topic=topic, payload=payload, options=options)
        draft.mapping_version = version  # type: ignore[attr-defined]
        return draft

    return Adapter(
        kind="generic", verify=verify,
        topic=lambda headers: (headers.get(topic_header) or "").strip() if topic_header else "",
        dedupe_key=lambda headers, body: _dedupe(spec, headers, body), parse=parse,
    )
