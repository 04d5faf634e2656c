"""Connections: create one per store or partner system, rotate its secret."""

from __future__ import annotations

import re
import secrets as _secrets
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.models import Organization
from apps.common.exceptions import Conflict, ValidationFailed

from ..models import Connection, ConnectionKind, Mapping

_SOURCE = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
_SLUG = re.compile(r"[^A-Za-z0-9_.\-]+")
OPTION_KEYS = frozenset({"default_country", "weight_unit", "dimension_unit", "timezone", "require_paid",
                         "raw_retention_days"})
# Shopify may sign with the old secret for up to an hour after a rotation.
ROTATION_GRACE = timedelta(hours=24)


def default_source(kind: str, store: str, name: str) -> str:
    """``shopify:acme-shop.myshopify.com``-like, within the order source alphabet."""
    base = store.split("://", 1)[-1].strip("/") or name
    return f"{kind}:{_SLUG.sub('-', base).strip('-')}"[:64]


def connection_create(*, org: Organization, kind: str, name: str, store: str = "", secret: str = "",
                      source: str = "", options: dict[str, Any] | None = None,
                      mapping: Mapping | None = None) -> Connection:
    errors: dict[str, list[str]] = {}
    if kind not in ConnectionKind.values:
        errors["kind"] = [f"Must be one of {', '.join(ConnectionKind.values)}."]
    if not name.strip():
        errors["name"] = ["Give the connection a name."]
    source = source or default_source(kind, store, name)
    if not _SOURCE.match(source):
        errors["source"] = ["Letters, digits and _ . : - only, at most 64."]
    unknown = set(options or {}) - OPTION_KEYS
    if unknown:
        errors["options"] = [f"Unknown options: {', '.join(sorted(unknown))}."]
    retention = (options or {}).get("raw_retention_days")
    if retention is not None and (type(retention) is not int or not 1 <= retention <= 3650):
        errors["options"] = ["raw_retention_days must be a whole number of days from 1 to 3650."]
    if kind == ConnectionKind.GENERIC and mapping is None:
        errors["mapping"] = ["A generic connection needs a mapping."]
    if mapping is not None and mapping.org_id != org.pk:
        errors["mapping"] = ["No such mapping."]
    if kind in (ConnectionKind.SHOPIFY, ConnectionKind.WOOCOMMERCE) and not secret:
        errors["secret"] = ["Paste the webhook signing secret the store shows (Shopify: the app's client secret)."]
    if errors:
        raise ValidationFailed(errors)
    try:
        with transaction.atomic():
            return Connection.objects.create(
                org=org, kind=kind, name=name.strip(), store=store.strip(), source=source,
                secret=secret or f"whsec_{_secrets.token_urlsafe(32)}", options=options or {}, mapping=mapping,
            )
    except IntegrityError:
        raise Conflict(f"A connection with source {source!r} already exists.", code="duplicate_source") from None


def connection_rotate_secret(*, connection: Connection, secret: str = "",
                             grace: timedelta = ROTATION_GRACE) -> Connection:
    """New secret now; the old one stays valid for ``grace`` while the partner switches."""
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_expires_at = timezone.now() + grace
        locked.secret = secret or f"whsec_{_secrets.token_urlsafe(32)}"
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return locked
