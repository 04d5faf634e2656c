"""Raw inbound bodies and headers are personal data: emptied once a message is done with
and past its retention period; the audit record stays (services/retention.py)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.http.request import HttpHeaders
from django.utils import timezone

from apps.integrations.models import InboundMessage
from apps.integrations.services.connections import connection_create
from apps.integrations.services.inbound import inbound_dismiss, inbound_process, inbound_receive
from apps.integrations.services.retention import inbound_purge_raw
from apps.integrations.tasks import inbound_retention
from tests.integrations.conftest import realworld_bytes, shopify_headers

pytestmark = pytest.mark.django_db

DOCS_ORDER = "shopify/docs_sample_orders_create.json"
NOW = timezone.now()


def _received(connection, event_id: str, *, days_ago: float, body: bytes | None = None,
              topic: str = "orders/create") -> InboundMessage:
    body = body if body is not None else realworld_bytes(DOCS_ORDER)
    message = inbound_receive(connection=connection, body=body,
                              headers=HttpHeaders(shopify_headers(body, event_id=event_id, topic=topic))).message
    InboundMessage.objects.filter(pk=message.pk).update(received_at=NOW - timedelta(days=days_ago))
    return message


def _processed(connection, event_id: str, *, days_ago: float, **kwargs) -> InboundMessage:
    """Processed, and (for an applied order) its warning dismissed by a dispatcher: the docs'
    order has no coordinates, which puts it in the attention queue."""
    message = inbound_process(message_id=_received(connection, event_id, days_ago=days_ago, **kwargs).pk)
    return inbound_dismiss(message=message) if message.status == "processed" else message


def test_an_old_processed_message_loses_its_body_and_headers_but_keeps_its_audit_record(shopify, settings):
    settings.INBOUND_RAW_RETENTION_DAYS = 30
    message = _processed(shopify, "old", days_ago=31)

    assert inbound_purge_raw(now=NOW) == 1

    purged = InboundMessage.objects.get(pk=message.pk)
    assert (bytes(purged.body), purged.headers, purged.raw_purged_at) == (b"", {}, NOW)
    assert purged.body_sha256 == hashlib.sha256(realworld_bytes(DOCS_ORDER)).hexdigest()
    assert (purged.connection_id, purged.topic, purged.status, purged.received_at, purged.order_id) == (
        shopify.pk, "orders/create", "processed", message.received_at, message.order_id)


def test_recent_messages_and_messages_still_needing_someone_are_never_touched(shopify, settings):
    settings.INBOUND_RAW_RETENTION_DAYS = 30
    recent = _processed(shopify, "recent", days_ago=29)
    unprocessed = _received(shopify, "waiting", days_ago=90)
    parked = _processed(shopify, "parked", days_ago=90, body=b'{"id": 1, "shipping_address": null}')
    assert parked.status == "needs_attention"
    warned = _processed(shopify, "warned", days_ago=90)
    InboundMessage.objects.filter(pk=warned.pk).update(attention=True)  # applied with a warning, not yet dismissed

    assert inbound_purge_raw(now=NOW) == 0

    for message in (recent, unprocessed, parked, warned):
        kept = InboundMessage.objects.get(pk=message.pk)
        assert bytes(kept.body) and kept.headers and kept.raw_purged_at is None


def test_stale_and_ignored_messages_are_done_with_and_purged(shopify, settings):
    settings.INBOUND_RAW_RETENTION_DAYS = 7
    ignored = _processed(shopify, "ignored", days_ago=8, topic="products/create")
    assert ignored.status == "ignored"

    assert inbound_purge_raw(now=NOW) == 1
    assert InboundMessage.objects.get(pk=ignored.pk).raw_purged_at == NOW


def test_a_connection_can_keep_raw_messages_for_a_shorter_or_longer_period(acme, shopify, settings):
    settings.INBOUND_RAW_RETENTION_DAYS = 30
    brief = connection_create(org=acme, kind="shopify", name="Brief", store="brief.myshopify.com", secret="hush",
                              options={"raw_retention_days": 2})
    long = connection_create(org=acme, kind="shopify", name="Long", store="long.myshopify.com", secret="hush",
                             options={"raw_retention_days": 365})
    default_old = _processed(shopify, "a", days_ago=31)
    brief_old = _processed(brief, "b", days_ago=3)
    long_kept = _processed(long, "c", days_ago=100)

    assert inbound_purge_raw(now=NOW) == 2

    purged = set(InboundMessage.objects.exclude(raw_purged_at=None).values_list("pk", flat=True))
    assert purged == {default_old.pk, brief_old.pk}
    assert long_kept.pk not in purged


def test_a_message_stored_before_hashes_were_kept_gets_its_hash_from_its_body_before_it_goes(shopify, settings):
    settings.INBOUND_RAW_RETENTION_DAYS = 30
    message = _processed(shopify, "legacy", days_ago=40)
    InboundMessage.objects.filter(pk=message.pk).update(body_sha256="")

    inbound_purge_raw(now=NOW)

    assert InboundMessage.objects.get(pk=message.pk).body_sha256 == hashlib.sha256(
        realworld_bytes(DOCS_ORDER)).hexdigest()


def test_purging_twice_changes_nothing_more_and_the_periodic_task_runs_it(shopify, settings):
    settings.INBOUND_RAW_RETENTION_DAYS = 30
    _processed(shopify, "old", days_ago=31)

    assert inbound_retention.call() == 1
    assert inbound_retention.call() == 0


def test_a_retention_period_must_be_whole_days_from_one(acme):
    from apps.common.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed):
        connection_create(org=acme, kind="shopify", name="Zero", store="z.myshopify.com", secret="s",
                          options={"raw_retention_days": 0})
