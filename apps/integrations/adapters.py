"""The one registry of inbound adapters: a connection's kind names its module set."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from .drafts import Draft
from .models import Connection, ConnectionKind
from .shopify import parse as shopify_parse
from .shopify import verify as shopify_verify
from .woocommerce import parse as woo_parse
from .woocommerce import verify as woo_verify


def load_json(body: bytes) -> Any:
    """Exact numbers: integers stay integers of any size, decimals stay decimals
    (never a float that would round a 19-digit id or a price)."""
    return json.loads(body, parse_float=Decimal)


@dataclass(frozen=True)
class Adapter:
    kind: str
    verify: Callable[..., bool]
    topic: Callable[[Mapping[str, str]], str]
    dedupe_key: Callable[[Mapping[str, str], bytes], str | None]
    parse: Callable[..., Draft]


def _woo_dedupe(headers: Mapping[str, str], body: bytes) -> str | None:
    try:
        return woo_verify.dedupe_key(headers, load_json(body))
    except ValueError:
        return None


def _generic(connection: Connection) -> Adapter:
    from .generic import adapter

    return adapter.build(connection)


ADAPTERS: dict[str, Callable[[Connection], Adapter]] = {
    ConnectionKind.SHOPIFY: lambda connection: Adapter(
        kind="shopify", verify=shopify_verify.verify,
        topic=shopify_verify.topic, dedupe_key=lambda h, b: shopify_verify.dedupe_key(h), parse=shopify_parse.parse,
    ),
    ConnectionKind.WOOCOMMERCE: lambda connection: Adapter(
        kind="woocommerce", verify=woo_verify.verify, topic=woo_verify.topic,
        dedupe_key=_woo_dedupe, parse=woo_parse.parse,
    ),
    ConnectionKind.GENERIC: _generic,
}


def adapter_for(connection: Connection) -> Adapter:
    return ADAPTERS[connection.kind](connection)


def connection_secrets(connection: Connection) -> Iterable[str]:
    """The current secret, and the previous one until its grace period ends."""
    yield connection.secret
    if connection.previous_secret and (
        connection.previous_secret_expires_at is None or connection.previous_secret_expires_at > timezone.now()
    ):
        yield connection.previous_secret
