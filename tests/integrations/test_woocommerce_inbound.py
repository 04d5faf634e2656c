"""WooCommerce order webhooks: signature, activation ping, dedupe without a stable delivery id."""

from __future__ import annotations

import json

import pytest
from django_tasks_db.models import DBTaskResult

from apps.dispatch.models import Order
from apps.integrations.models import InboundMessage
from apps.integrations.woocommerce.verify import signing_key, verify
from tests.integrations.conftest import WOO_SECRET, deliver, realworld_json, run_worker, sign, woo_headers

pytestmark = pytest.mark.django_db

CREATE = "woocommerce/wc_v3_docs_create_order_response.json"
UPDATE = "woocommerce/wc_v3_docs_update_order_response.json"


def _body(relative: str, **changes) -> bytes:
    payload = realworld_json(relative)
    payload.update(changes)
    # WordPress's wp_json_encode: compact, slashes escaped; only the bytes matter for the HMAC.
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def test_the_docs_signatures_verify_with_the_docs_secret():
    vectors = realworld_json("woocommerce/hmac_test_vectors_woocommerce_docs.json")
    for vector in vectors["vectors"]:
        headers = {"X-WC-Webhook-Signature": vector["x_wc_webhook_signature"]}
        assert verify(secrets=[vectors["secret"]], body=vector["body"].encode(), headers=headers) is True
        assert verify(secrets=["another-secret"], body=vector["body"].encode(), headers=headers) is False


def test_a_secret_with_html_special_characters_signs_unescaped():
    body = b'{"id":1}'
    headers = {"X-WC-Webhook-Signature": sign("a&b<c>", body)}

    assert signing_key("a&amp;b&lt;c&gt;") == "a&b<c>"
    assert verify(secrets=["a&amp;b&lt;c&gt;"], body=body, headers=headers) is True


def test_the_activation_ping_gets_a_200_and_stores_nothing(web, woo):
    response = web.post(f"/hooks/{woo.token}", data=b"webhook_id=42",
                        content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert InboundMessage.objects.count() == 0
    assert DBTaskResult.objects.count() == 0


def test_an_unsigned_json_order_is_refused(web, woo):
    body = _body(CREATE)
    headers = {k: v for k, v in woo_headers(body).items() if k != "HTTP_X_WC_WEBHOOK_SIGNATURE"}

    response = deliver(web, woo, body, headers)

    assert response.status_code == 401
    assert InboundMessage.objects.count() == 0


def test_a_ping_body_with_a_bad_signature_is_not_a_ping(web, woo):
    response = web.post(f"/hooks/{woo.token}/", data=b"webhook_id=42", content_type="application/x-www-form-urlencoded",
                        HTTP_X_WC_WEBHOOK_SIGNATURE="bm90IGEgc2lnbmF0dXJl")

    assert response.status_code == 401


@pytest.mark.parametrize("variant", ["one byte changed", "re-serialized JSON", "missing header", "hex instead of base64"])
def test_a_tampered_order_is_refused_with_nothing_stored(web, woo, variant):
    import hashlib
    import hmac

    body = _body(CREATE)
    headers = woo_headers(body)
    if variant == "one byte changed":
        body = body.replace(b'"727"', b'"728"', 1)
    elif variant == "re-serialized JSON":
        body = json.dumps(json.loads(body), indent=2).encode()
    elif variant == "missing header":
        del headers["HTTP_X_WC_WEBHOOK_SIGNATURE"]
    else:
        headers["HTTP_X_WC_WEBHOOK_SIGNATURE"] = hmac.new(WOO_SECRET.encode(), body, hashlib.sha256).hexdigest()

    response = deliver(web, woo, body, headers)

    assert response.status_code == 401
    assert InboundMessage.objects.count() == 0 and DBTaskResult.objects.count() == 0


def test_the_docs_order_becomes_an_order(web, woo):
    body = _body(CREATE)
    assert deliver(web, woo, body, woo_headers(body)).status_code == 200
    run_worker()

    order = Order.objects.get()
    assert order.source == "woocommerce:example.com"
    assert (order.external_id, order.reference) == ("727", "#727")
    assert order.customer_name == "John Doe"
    assert (order.address_line1, order.city, order.postal_code, order.region, order.country) == (
        "969 Market", "San Francisco", "94103", "CA", "US")
    assert order.customer_email == "john.doe@example.com"
    assert order.parcel_count == 3  # two of "Woo Single #1", one "Ship Your Idea"
    assert InboundMessage.objects.get().status == "processed"


def test_a_redelivery_with_a_new_delivery_id_is_a_duplicate(web, woo):
    body = _body(CREATE)
    first = deliver(web, woo, body, woo_headers(body, delivery="54"))
    again = deliver(web, woo, body, woo_headers(body, delivery="55"))

    assert again.status_code == 200
    assert again.json() == {"status": "duplicate", "id": first.json()["id"]}
    run_worker()
    assert Order.objects.count() == 1


def test_an_update_with_a_later_modification_time_is_applied(web, woo):
    created = _body(CREATE)
    updated = _body(UPDATE, status="processing", customer_note="Call before arrival")
    deliver(web, woo, created, woo_headers(created))
    deliver(web, woo, updated, woo_headers(updated, topic="order.updated", delivery="2"))
    run_worker()

    assert Order.objects.get().instructions == "Call before arrival"
    assert [m.status for m in InboundMessage.objects.order_by("id")] == ["processed", "processed"]


def test_the_docs_update_to_completed_does_not_cancel_but_a_cancelled_status_does(web, woo):
    created = _body(CREATE)
    completed = _body(UPDATE)  # "completed" in WooCommerce means shipped by the store: keep delivering
    cancelled = _body(UPDATE, status="cancelled", date_modified_gmt="2017-03-22T20:00:00")
    deliver(web, woo, created, woo_headers(created))
    deliver(web, woo, completed, woo_headers(completed, topic="order.updated", delivery="2"))
    run_worker()
    assert Order.objects.get().state == "created"

    deliver(web, woo, cancelled, woo_headers(cancelled, topic="order.updated", delivery="3"))
    run_worker()
    assert Order.objects.get().state == "cancelled"


def test_order_deleted_cancels(web, woo):
    created = _body(CREATE)
    deleted = json.dumps({"id": 727}).encode()
    deliver(web, woo, created, woo_headers(created))
    deliver(web, woo, deleted, woo_headers(deleted, topic="order.deleted", delivery="9"))
    run_worker()

    assert Order.objects.get().state == "cancelled"


def test_every_order_of_the_docs_list_is_accepted(web, woo):
    for index, order in enumerate(realworld_json("woocommerce/wc_v3_docs_list_orders_response.json")):
        body = json.dumps(order).encode()
        assert deliver(web, woo, body, woo_headers(body, delivery=str(index))).status_code == 200
    run_worker()

    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["723", "727"]


def test_the_legacy_order_wrapper_of_real_deliveries_is_read(web, woo):
    deliveries = realworld_json("woocommerce/wc_wpapi_v1_docs_webhook_deliveries_order_updated.json")
    for delivery in deliveries:
        # The docs' store secret is unknown: re-sign the exact recorded body with ours.
        body = delivery["request_body"].encode()
        headers = woo_headers(body, topic=delivery["request_headers"]["X-WC-Webhook-Topic"],
                              delivery=str(delivery["request_headers"]["X-WC-Webhook-Delivery-ID"]))
        assert deliver(web, woo, body, headers).status_code == 200
    run_worker()

    order = Order.objects.get()
    assert order.external_id == "118"
    assert order.country == "US" and order.postal_code == "94103"
    # The log lists the newest delivery first, so replaying it in order sends the older one last.
    assert [m.status for m in InboundMessage.objects.order_by("id")] == ["processed", "stale"]


@pytest.mark.parametrize("slash", [True, False])
def test_the_inbound_url_answers_directly_with_or_without_a_trailing_slash(web, woo, slash, settings):
    settings.APPEND_SLASH = True
    body = _body(CREATE)

    response = deliver(web, woo, body, woo_headers(body), slash=slash)
    ping = web.post(f"/hooks/{woo.token}{'/' if slash else ''}", data=b"webhook_id=1",
                    content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert ping.status_code == 200


def test_plain_http_is_refused_not_redirected_when_https_is_required(web, woo, settings):
    settings.INTEGRATIONS_REQUIRE_HTTPS = True
    body = _body(CREATE)

    response = deliver(web, woo, body, woo_headers(body))

    assert response.status_code == 403
    assert response.json()["code"] == "https_required"
