"""Shopify order webhooks: verified over the raw bytes, stored, acknowledged, applied once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django_tasks_db.models import DBTaskResult

from apps.dispatch.models import Order
from apps.events.models import Event
from apps.integrations.models import ExternalOrder, InboundMessage
from tests.integrations.conftest import (
    SHOPIFY_SECRET,
    deliver,
    realworld_bytes,
    realworld_json,
    run_worker,
    shopify_headers,
)

pytestmark = pytest.mark.django_db

DOCS_ORDER = "shopify/docs_sample_orders_create.json"


def _nothing_stored():
    assert InboundMessage.objects.count() == 0
    assert DBTaskResult.objects.count() == 0
    assert Order.objects.count() == 0


def test_a_signed_order_is_acknowledged_before_it_is_processed(web, shopify):
    body = realworld_bytes(DOCS_ORDER)

    response = deliver(web, shopify, body, shopify_headers(body))

    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    message = InboundMessage.objects.get()
    assert bytes(message.body) == body
    assert message.headers["X-Shopify-Topic"] == "orders/create"
    assert message.status == "received"
    assert Order.objects.count() == 0  # processing is the worker's job


def test_the_docs_sample_becomes_an_order_with_normalized_fields(web, shopify):
    body = realworld_bytes(DOCS_ORDER)
    deliver(web, shopify, body, shopify_headers(body))

    assert run_worker() == 1

    order = Order.objects.get()
    # The gid is authoritative: the scraped "id" lost its last digits as a JS float.
    assert order.external_id == "820982911946154508"
    assert order.source == "shopify:acme-shop.myshopify.com"
    assert order.reference == "#9999"
    assert order.customer_name == "Steve Shipper"
    assert order.address_line1 == "123 Shipping Street"
    assert order.address_line2 == "Shipping Company"
    assert (order.city, order.postal_code, order.region, order.country) == ("Shippington", "40003", "KY", "US")
    assert order.customer_email == "jon@example.com"
    assert order.customer_phone == ""  # 555-555-SHIP is not a real number
    assert order.custom_fields["phone_as_sent"] == "555-555-SHIP"
    assert order.state == "created"  # orders/create, although the sample body says cancelled
    skus = list(order.items.values_list("sku", "quantity", "weight_kg"))
    assert [s for s, _, _ in skus] == ["SKU2006-001", "LENS-PROTECT-2YR", "CASE-LEATHER-PREM", "SKU2006-020", "SKU2006-035"]
    assert float(order.total_weight_kg) == pytest.approx(1.6)  # grams to kilograms
    message = InboundMessage.objects.get()
    assert message.status == "processed"
    # No coordinates and an offline geocoder: created unplaced, and flagged for a person.
    assert order.lat is None and order.geocode_confidence == "none"
    assert message.attention is True
    assert "offline geocoder" in message.reason
    assert Event.objects.get(type="order.created").actor == f"integration:{shopify.pk}"


def test_the_rest_fixture_keeps_the_shops_coordinates(web, shopify):
    body = json.dumps(realworld_json("shopify/shopify_python_api_order_fixture.json")["order"]).encode()
    deliver(web, shopify, body, shopify_headers(body))
    run_worker()

    order = Order.objects.get()
    assert order.external_id == "450789469"
    assert (order.lat, order.lng, order.geocode_confidence) == (45.41634, -75.6868, "exact")
    assert order.customer_name == "Bob Norman"
    assert order.parcel_count == 3
    message = InboundMessage.objects.get()
    assert message.status == "processed"
    assert "customer_phone" in message.reason  # 555-625-1199 is fictional


def test_the_anonymized_real_exemplar_lands_in_the_attention_queue_with_its_reasons(web, shopify):
    body = realworld_bytes("shopify/gadget_anonymized_real_exemplar_order_2024-01.json")
    deliver(web, shopify, body, shopify_headers(body))
    run_worker()

    message = InboundMessage.objects.get()
    assert message.status == "needs_attention"
    assert message.attention is True
    fields = {p["field"] for p in message.problems if p["blocking"]}
    assert "country" in fields  # "example string"
    assert Order.objects.count() == 0


def test_an_order_edit_payload_is_recorded_and_ignored(web, shopify):
    body = realworld_bytes("shopify/docs_sample_orders_edited.json")
    deliver(web, shopify, body, shopify_headers(body, topic="orders/edited"))
    run_worker()

    message = InboundMessage.objects.get()
    assert message.status == "ignored"
    assert Order.objects.count() == 0


# --- tampering: 401 and nothing stored --------------------------------------------------


def _tampered_variants(body: bytes):
    good = shopify_headers(body)
    one_byte = bytearray(body)
    one_byte[len(one_byte) // 2] ^= 0x01
    reserialized = json.dumps(json.loads(body), separators=(",", ":")).encode()
    hex_digest = {**good, "HTTP_X_SHOPIFY_HMAC_SHA256": __import__("hashlib").sha256(body).hexdigest()}
    import hashlib
    import hmac as _hmac

    hex_hmac = {**good, "HTTP_X_SHOPIFY_HMAC_SHA256": _hmac.new(b"hush", body, hashlib.sha256).hexdigest()}
    missing = {k: v for k, v in good.items() if k != "HTTP_X_SHOPIFY_HMAC_SHA256"}
    return {
        "one byte changed": (bytes(one_byte), good),
        "re-serialized JSON": (reserialized, good),
        "missing header": (body, missing),
        "hex HMAC instead of base64": (body, hex_hmac),
        "hex of a plain hash": (body, hex_digest),
        "wrong secret": (body, shopify_headers(body, secret="not-hush")),
        "empty header": (body, {**good, "HTTP_X_SHOPIFY_HMAC_SHA256": ""}),
    }


@pytest.mark.parametrize("variant", ["one byte changed", "re-serialized JSON", "missing header",
                                     "hex HMAC instead of base64", "hex of a plain hash", "wrong secret", "empty header"])
@pytest.mark.parametrize("sample", [DOCS_ORDER, "shopify/gadget_anonymized_real_exemplar_order_2024-01.json"])
def test_a_tampered_delivery_is_refused_and_nothing_is_stored(web, shopify, sample, variant):
    body, headers = _tampered_variants(realworld_bytes(sample))[variant]

    response = deliver(web, shopify, body, headers)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    _nothing_stored()


def test_an_unknown_connection_url_is_a_404_with_nothing_stored(web, shopify):
    body = realworld_bytes(DOCS_ORDER)
    response = web.post("/hooks/not-a-real-token-123/", data=body, content_type="application/json",
                        **shopify_headers(body))

    assert response.status_code == 404
    _nothing_stored()


# --- idempotency, staleness, topics -----------------------------------------------------


def test_a_redelivery_with_the_same_event_id_is_acknowledged_and_dropped(web, shopify):
    body = realworld_bytes(DOCS_ORDER)
    first = deliver(web, shopify, body, shopify_headers(body, event_id="evt-42"))
    again = deliver(web, shopify, body, shopify_headers(body, event_id="evt-42"))

    assert first.status_code == again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert InboundMessage.objects.get().duplicates == 1
    assert DBTaskResult.objects.count() == 1
    run_worker()
    assert Order.objects.count() == 1


def test_the_same_order_under_a_new_event_id_creates_nothing_new(web, shopify):
    body = realworld_bytes(DOCS_ORDER)
    deliver(web, shopify, body, shopify_headers(body, event_id="evt-1"))
    deliver(web, shopify, body, shopify_headers(body, event_id="evt-2", topic="orders/updated"))
    run_worker()

    assert Order.objects.count() == 1
    assert [m.status for m in InboundMessage.objects.order_by("id")] == ["processed", "processed"]
    assert Event.objects.filter(type="order.updated").count() == 0  # same updated_at: already applied


def _order_body(**changes) -> bytes:
    payload = realworld_json(DOCS_ORDER)
    for key, value in changes.items():
        if key.startswith("ship_"):
            payload["shipping_address"][key.removeprefix("ship_")] = value
        else:
            payload[key] = value
    return json.dumps(payload).encode()


def test_a_newer_update_changes_the_order_and_an_older_retry_is_recorded_but_not_applied(web, shopify):
    created = _order_body(updated_at="2026-11-23T09:00:00+01:00")
    newer = _order_body(updated_at="2026-11-23T10:00:00+01:00", ship_address1="456 Newer Road")
    older = _order_body(updated_at="2026-11-23T09:30:00+01:00", ship_address1="789 Stale Lane")
    deliver(web, shopify, created, shopify_headers(created, event_id="e1"))
    deliver(web, shopify, newer, shopify_headers(newer, event_id="e2", topic="orders/updated"))
    deliver(web, shopify, older, shopify_headers(older, event_id="e3", topic="orders/updated"))
    run_worker()

    order = Order.objects.get()
    assert order.address_line1 == "456 Newer Road"
    stale = InboundMessage.objects.get(dedupe_key="event:e3")
    assert stale.status == "stale"
    assert stale.order == order
    assert ExternalOrder.objects.get().source_updated_at.isoformat() == "2026-11-23T09:00:00+00:00"


def test_an_update_keeps_what_a_dispatcher_set(web, shopify, acme_hub):
    created = _order_body(updated_at="2026-11-23T09:00:00+01:00")
    deliver(web, shopify, created, shopify_headers(created, event_id="e1"))
    run_worker()
    Order.objects.update(hub=acme_hub, priority=3)
    newer = _order_body(updated_at="2026-11-23T10:00:00+01:00", note="Leave at the back door")
    deliver(web, shopify, newer, shopify_headers(newer, event_id="e2", topic="orders/updated"))
    run_worker()

    order = Order.objects.get()
    assert order.instructions == "Leave at the back door"
    assert (order.hub, order.priority) == (acme_hub, 3)


def test_orders_cancelled_cancels_the_order(web, shopify):
    created = _order_body(updated_at="2026-11-23T09:00:00+01:00")
    cancelled = _order_body(updated_at="2026-11-23T11:00:00+01:00")
    deliver(web, shopify, created, shopify_headers(created, event_id="e1"))
    deliver(web, shopify, cancelled, shopify_headers(cancelled, event_id="e2", topic="orders/cancelled"))
    run_worker()

    order = Order.objects.get()
    assert order.state == "cancelled"
    assert "customer" in order.failure_notes


def test_a_change_to_an_order_already_on_its_way_waits_for_a_person(web, shopify):
    created = _order_body(updated_at="2026-11-23T09:00:00+01:00")
    deliver(web, shopify, created, shopify_headers(created, event_id="e1"))
    run_worker()
    Order.objects.update(state="out_for_delivery")
    newer = _order_body(updated_at="2026-11-23T10:00:00+01:00", ship_address1="1 Elsewhere")
    deliver(web, shopify, newer, shopify_headers(newer, event_id="e2", topic="orders/updated"))
    run_worker()

    message = InboundMessage.objects.get(dedupe_key="event:e2")
    assert message.status == "needs_attention"
    assert "out_for_delivery" in message.reason and "address_line1" in message.reason
    assert Order.objects.get().address_line1 == "123 Shipping Street"


def test_a_finished_order_is_not_changed_by_a_late_update(web, shopify):
    created = _order_body(updated_at="2026-11-23T09:00:00+01:00")
    deliver(web, shopify, created, shopify_headers(created, event_id="e1"))
    run_worker()
    Order.objects.update(state="completed", outcome="delivered")
    newer = _order_body(updated_at="2026-11-23T10:00:00+01:00", note="Too late")
    deliver(web, shopify, newer, shopify_headers(newer, event_id="e2", topic="orders/updated"))
    run_worker()

    message = InboundMessage.objects.get(dedupe_key="event:e2")
    assert message.status == "needs_attention"
    assert "cannot be changed" in message.reason


def test_ids_beyond_two_to_the_53_are_kept_exactly(web, shopify):
    big = 2**53 + 1
    payload = realworld_json(DOCS_ORDER)
    del payload["admin_graphql_api_id"]
    body = json.dumps(payload).replace('"id": 820982911946154500,', f'"id": {big},', 1).encode()
    deliver(web, shopify, body, shopify_headers(body))
    run_worker()

    assert Order.objects.get().external_id == "9007199254740993"


def test_the_previous_secret_still_verifies_during_a_rotation(web, shopify):
    from apps.integrations.services.connections import connection_rotate_secret

    connection_rotate_secret(connection=shopify, secret="new-secret")
    body = realworld_bytes(DOCS_ORDER)

    assert deliver(web, shopify, body, shopify_headers(body, event_id="a")).status_code == 200
    assert deliver(web, shopify, body, shopify_headers(body, event_id="b", secret="new-secret")).status_code == 200


@pytest.mark.parametrize("slash", [True, False])
def test_the_inbound_url_never_redirects(web, shopify, slash, settings):
    settings.APPEND_SLASH = True
    body = realworld_bytes(DOCS_ORDER)

    response = deliver(web, shopify, body, shopify_headers(body), slash=slash)

    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_secret_rotated_while_the_connection_is_cached_is_honoured_at_once(shopify, production_path):
    from asgiref.sync import async_to_sync
    from django.http.request import HttpHeaders

    from apps.integrations import hooks
    from apps.integrations.services.connections import connection_rotate_secret

    body = realworld_bytes(DOCS_ORDER)

    def post(event_id: str, secret: str = SHOPIFY_SECRET) -> int:
        headers = HttpHeaders(shopify_headers(body, event_id=event_id, secret=secret))
        return async_to_sync(hooks.accept)(token=shopify.token, body=body, headers=headers).status

    first = post("a")  # caches the connection
    connection_rotate_secret(connection=shopify, secret="rotated", grace=timedelta(0))

    assert (first, post("b", secret="rotated"), post("c")) == (200, 200, 401)
    assert InboundMessage.objects.count() == 2


def test_an_update_without_coordinates_keeps_those_a_dispatcher_placed(web, shopify):
    created = _order_body(updated_at="2026-11-23T09:00:00+01:00")
    deliver(web, shopify, created, shopify_headers(created, event_id="e1"))
    run_worker()
    Order.objects.update(lat=38.2, lng=-85.7, geocode_confidence="approximate")
    newer = _order_body(updated_at="2026-11-23T10:00:00+01:00", note="Side door")
    deliver(web, shopify, newer, shopify_headers(newer, event_id="e2", topic="orders/updated"))
    run_worker()

    order = Order.objects.get()
    assert (order.lat, order.lng, order.geocode_confidence, order.instructions) == (38.2, -85.7, "approximate", "Side door")


def test_an_oversized_body_is_a_413_with_nothing_stored(web, shopify, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = realworld_bytes(DOCS_ORDER)

    response = deliver(web, shopify, body, shopify_headers(body))

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    _nothing_stored()


def test_a_get_is_a_405(web, shopify):
    assert web.get(f"/hooks/{shopify.token}").status_code == 405


def test_a_shop_that_delivers_only_paid_orders_waits_for_orders_paid(web, acme):
    from apps.integrations.services.connections import connection_create

    shop = connection_create(org=acme, kind="shopify", name="Paid only", store="paid.myshopify.com", secret="hush",
                             options={"require_paid": True})
    pending = _order_body(financial_status="pending", updated_at="2026-11-23T09:00:00+01:00")
    paid = _order_body(financial_status="paid", updated_at="2026-11-23T09:05:00+01:00")
    deliver(web, shop, pending, shopify_headers(pending, event_id="p1"))
    run_worker()
    assert Order.objects.count() == 0
    assert "not paid yet" in InboundMessage.objects.get().reason

    deliver(web, shop, paid, shopify_headers(paid, event_id="p2", topic="orders/paid"))
    run_worker()
    assert Order.objects.get().external_id == "820982911946154508"


def test_every_header_is_kept_with_the_raw_body_but_credentials(web, shopify):
    body = realworld_bytes(DOCS_ORDER)
    deliver(web, shopify, body, {**shopify_headers(body), "HTTP_X_REQUEST_ID": "abc", "HTTP_COOKIE": "session=s"})

    headers = InboundMessage.objects.get().headers
    assert headers["X-Request-Id"] == "abc"
    assert headers["X-Shopify-Webhook-Id"] == "wh-evt-1"
    assert "Cookie" not in headers
