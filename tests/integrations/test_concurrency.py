"""Races on real threads (they matter on PostgreSQL, where rows lock individually)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.http.request import HttpHeaders
from django.utils import timezone

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import OrderIn
from apps.dispatch.models import Order
from apps.dispatch.services.orders import order_create
from apps.integrations.models import InboundMessage, WebhookDelivery
from apps.integrations.services.inbound import inbound_process, inbound_receive
from apps.integrations.services.outbound import delivery_attempt, endpoint_create
from tests.dispatch.test_concurrency import _race
from tests.factories import order_payload
from tests.integrations.conftest import realworld_bytes, shopify_headers

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("attempt", range(3))
def test_two_concurrent_deliveries_of_one_event_store_one_message(shopify, attempt):
    body = realworld_bytes("shopify/docs_sample_orders_create.json")
    headers = HttpHeaders(shopify_headers(body, event_id=f"race-{attempt}"))

    results = _race(*[lambda: inbound_receive(connection=shopify, headers=headers, body=body)] * 2)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.duplicate for r in results) == [False, True]
    assert InboundMessage.objects.count() == 1
    assert InboundMessage.objects.get().duplicates == 1


def test_two_workers_processing_one_message_apply_it_once(shopify):
    body = realworld_bytes("shopify/docs_sample_orders_create.json")
    message = inbound_receive(connection=shopify, headers=HttpHeaders(shopify_headers(body)), body=body).message

    results = _race(*[lambda: inbound_process(message_id=message.pk)] * 2)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert Order.objects.count() == 1
    assert InboundMessage.objects.get().attempts == 1


def test_two_workers_never_send_one_delivery_twice(acme):
    endpoint_create(org=acme, url="https://partner.example.com/", event_types=["*"])
    order_create(actor=system_actor(acme), data=OrderIn.model_validate(order_payload()))
    delivery = WebhookDelivery.objects.get()
    sent = []

    class Partner:
        def post(self, url, *, body, headers, timeout):
            sent.append(headers["webhook-id"])
            from apps.integrations.outbound.transport import Response

            return Response(200)

    now = timezone.now() + timedelta(seconds=1)
    results = _race(*[lambda: delivery_attempt(delivery_id=delivery.pk, transport=Partner(), now=now)] * 2)

    assert sorted(r.status for r in results) == ["sent", "skipped"], results
    assert sent == [delivery.webhook_id]
