"""Group commit of inbound webhooks: many requests, one transaction, each acknowledged
only once it is committed (apps/integrations/writer.py, services.inbound.inbound_store)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib

import pytest
from asgiref.sync import async_to_sync
from django.http.request import HttpHeaders
from django_tasks_db.models import DBTaskResult

from apps.integrations.models import InboundMessage
from apps.integrations.services.inbound import inbound_prepare, inbound_store
from apps.integrations.writer import InboundWriter
from tests.integrations.conftest import realworld_bytes, run_worker, shopify_headers

DOCS_ORDER = "shopify/docs_sample_orders_create.json"


def _item(connection, event_id: str | None):
    body = realworld_bytes(DOCS_ORDER)
    headers = shopify_headers(body, event_id=event_id or "x")
    if event_id is None:
        del headers["HTTP_X_SHOPIFY_EVENT_ID"], headers["HTTP_X_SHOPIFY_WEBHOOK_ID"]
    return inbound_prepare(connection=connection, headers=HttpHeaders(headers), body=body)


@pytest.mark.django_db
def test_one_batch_stores_each_new_message_once_and_counts_redeliveries(shopify):
    (earlier,) = inbound_store(items=[_item(shopify, "a")])

    stored = inbound_store(items=[_item(shopify, "b"), _item(shopify, "a"), _item(shopify, "b"), _item(shopify, None),
                                  _item(shopify, "c"), _item(shopify, None)])

    b, c = InboundMessage.objects.get(dedupe_key="event:b"), InboundMessage.objects.get(dedupe_key="event:c")
    unkeyed = list(InboundMessage.objects.filter(dedupe_key=None).order_by("id").values_list("pk", flat=True))
    assert [(s.id, s.duplicate) for s in stored] == [
        (b.pk, False), (earlier.id, True), (b.pk, True), (unkeyed[0], False), (c.pk, False), (unkeyed[1], False)]
    assert InboundMessage.objects.get(pk=earlier.id).duplicates == 1 and b.duplicates == 1
    # One processing task per stored message, none for a redelivery.
    queued = sorted(r.args_kwargs["args"][0] for r in DBTaskResult.objects.all())
    assert queued == sorted([earlier.id, b.pk, c.pk, *unkeyed])


@pytest.mark.django_db
def test_a_stored_message_keeps_the_hash_of_the_bytes_received(shopify):
    (stored,) = inbound_store(items=[_item(shopify, "a")])

    assert InboundMessage.objects.get(pk=stored.id).body_sha256 == hashlib.sha256(realworld_bytes(DOCS_ORDER)).hexdigest()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_are_acknowledged_after_their_commit_and_processed_once(shopify):
    writer = InboundWriter()
    items = [_item(shopify, f"e{i}") for i in range(40)] + [_item(shopify, "e0")] * 5

    async def send_all():
        return await asyncio.gather(*(writer.submit(item) for item in items))

    try:
        results = async_to_sync(send_all)()
    finally:
        writer.stop()

    assert sum(not r.duplicate for r in results) == 40
    assert InboundMessage.objects.count() == 40
    assert InboundMessage.objects.get(dedupe_key="event:e0").duplicates == 5
    assert writer.commits < 45  # requests that arrived together shared a commit
    assert run_worker() == 40
    assert set(InboundMessage.objects.values_list("status", flat=True)) == {"processed"}


@pytest.mark.django_db(transaction=True)
def test_no_request_is_answered_before_its_commit_and_one_the_database_refuses_does_not_sink_its_batch(shopify, monkeypatch):
    writer = InboundWriter()
    good = [_item(shopify, f"g{i}") for i in range(3)]
    # An organization that does not exist: the foreign key fails at commit.
    bad = dataclasses.replace(_item(shopify, "bad"), org_id=10**9)

    async def send_all():
        # Queued before the thread starts, so all four are in one batch.
        return await asyncio.gather(*(writer.submit(item) for item in [good[0], bad, *good[1:]]),
                                    return_exceptions=True)

    monkeypatch.setattr(writer, "ensure_started", lambda: None)  # this test flushes by hand
    try:
        loop_results = async_to_sync(_submit_then_flush)(writer, send_all)
    finally:
        writer.stop()

    assert [type(r).__name__ for r in loop_results] == ["Stored", "IntegrityError", "Stored", "Stored"]
    assert sorted(InboundMessage.objects.values_list("dedupe_key", flat=True)) == ["event:g0", "event:g1", "event:g2"]


async def _submit_then_flush(writer, send_all):
    task = asyncio.ensure_future(send_all())
    while writer.pending < 4:
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    assert not task.done()  # nobody is answered before the commit
    await asyncio.get_running_loop().run_in_executor(None, _flush_and_close, writer)
    return await task


def _flush_and_close(writer):
    from django.db import connections

    try:
        writer.flush_now()
    finally:
        connections.close_all()
