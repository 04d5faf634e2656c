"""The integrations page in a real browser: a store's order that could not be applied is
fixed and reprocessed from the needs-attention queue."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from apps.dispatch.models import Order
from apps.integrations.models import InboundMessage
from apps.integrations.services.connections import connection_create
from tests.factories import PASSWORD
from tests.integrations.conftest import realworld_json, run_worker, sign

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_dispatcher_fixes_a_parked_shopify_order_and_it_becomes_an_order(page: Page, asgi_live_server, acme, dave):
    shop = connection_create(org=acme, kind="shopify", name="Acme Shop", store="acme.myshopify.com", secret="hush")
    payload = realworld_json("shopify/docs_sample_orders_create.json")
    payload["shipping_address"]["zip"] = "4OOO3"  # letter O for zero: not a US ZIP
    body = json.dumps(payload).encode()
    # The store delivers over HTTP to the live server; a worker processes it.
    answer = page.request.post(f"{asgi_live_server.url}/hooks/{shop.token}", data=body, headers={
        "Content-Type": "application/json", "X-Shopify-Hmac-Sha256": sign("hush", body),
        "X-Shopify-Topic": "orders/create", "X-Shopify-Event-Id": "e2e-1"})
    assert answer.status == 200
    run_worker()
    assert InboundMessage.objects.get().status == "needs_attention"

    page.goto(f"{asgi_live_server.url}/console/integrations/")
    page.get_by_label("Username").fill("dave")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/integrations/$"))

    expect(page.get_by_test_id("attention-count")).to_have_text("1")
    message = page.get_by_test_id("attention-message")
    expect(message).to_contain_text("Acme Shop · orders/create · order 820982911946154508")
    expect(message).to_contain_text("'4OOO3' is not a valid US postal code")
    message.locator(".msg-head").click()
    expect(page.get_by_test_id("raw-body")).to_contain_text('"zip": "4OOO3"')
    page.locator("input[data-field=postal_code]").fill("40003")
    page.get_by_role("button", name="Save fix and reprocess").click()

    # Applied: it leaves the blocking state; the offline geocoder keeps it in the queue as a warning.
    expect(message.locator(".status")).to_have_text("processed")
    assert Order.objects.get().postal_code == "40003"
    message.get_by_role("button", name="Dismiss").click()  # still open after the refresh
    expect(page.get_by_text("Nothing needs attention.")).to_be_visible()


def test_an_admin_replays_a_dead_letter_from_the_delivery_log(page: Page, asgi_live_server, acme, alice):
    from apps.accounts.actor import system_actor
    from apps.dispatch.inputs import OrderIn
    from apps.dispatch.services.orders import order_create
    from apps.integrations.models import DeliveryAttempt, WebhookDelivery
    from apps.integrations.services.outbound import endpoint_create
    from tests.factories import order_payload

    endpoint_create(org=acme, url="https://partner.example.com/hooks", event_types=["order.*"])
    order_create(actor=system_actor(acme), data=OrderIn.model_validate(order_payload()))
    delivery = WebhookDelivery.objects.get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="dead", attempts=8, last_status_code=503)
    DeliveryAttempt.objects.create(delivery=delivery, status_code=503, latency_ms=120, error="HTTP 503")

    page.goto(f"{asgi_live_server.url}/console/integrations/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("tab", name="Outbound webhooks").click()

    row = page.get_by_test_id("delivery")
    expect(row).to_contain_text("order.created → https://partner.example.com/hooks")
    expect(row).to_contain_text(delivery.webhook_id)
    row.locator(".msg-head").click()
    expect(row.locator(".attempts")).to_contain_text("503")
    row.get_by_role("button", name="Replay").click()

    expect(page.get_by_text("No deliveries.")).to_be_visible()  # no longer a dead letter
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
