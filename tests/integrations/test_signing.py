"""Inbound HMAC checks against the published test vectors."""

from __future__ import annotations

import hmac

import pytest

from apps.integrations import signing
from apps.integrations.shopify.verify import verify as shopify_verify
from tests.integrations.conftest import realworld_json


def _shopify_vectors():
    data = realworld_json("shopify/hmac_test_vectors_go_shopify.json")
    return [(data["secret"], v) for v in data["vectors"]]


def test_every_go_shopify_vector_verifies_as_published():
    for secret, vector in _shopify_vectors():
        headers = {}
        if vector["x_shopify_hmac_sha256"] is not None:
            headers["X-Shopify-Hmac-Sha256"] = vector["x_shopify_hmac_sha256"]

        result = shopify_verify(secrets=[secret], body=vector["body"].encode(), headers=headers)

        assert result is vector["expected_valid"], vector


def test_the_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(signing.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))

    assert signing.verify_hmac_sha256_b64(secrets=["hush"], body=b'"my secret message"',
                                          header="hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI=")
    assert len(calls) == 1


@pytest.mark.parametrize("header", ["hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI", "hMTq0K2x7oyOjoBwGYeTj5oxfnaVY!zbanUG9aajpKI=",
                                    " ", "84c4ead0adb1ee8c8e8e8070198793e39a317e7695617cdb6a7506f5a6a3a4a2"])
def test_malformed_headers_never_verify(header):
    assert not signing.verify_hmac_sha256_b64(secrets=["hush"], body=b'"my secret message"', header=header)


def test_an_empty_secret_never_verifies_anything():
    body = b"{}"
    assert not signing.verify_hmac_sha256_b64(secrets=[""], body=body, header=signing.hmac_sha256_b64("", body))


# --- every published vector through the real endpoint ------------------------------------------


@pytest.mark.django_db
def test_every_shopify_vector_round_trips_through_the_endpoint(web, shopify):
    from apps.integrations.models import InboundMessage
    from tests.integrations.conftest import deliver

    for index, (_, vector) in enumerate(_shopify_vectors()):
        headers = {"HTTP_X_SHOPIFY_TOPIC": "orders/create", "HTTP_X_SHOPIFY_EVENT_ID": f"vector-{index}"}
        if vector["x_shopify_hmac_sha256"] is not None:
            headers["HTTP_X_SHOPIFY_HMAC_SHA256"] = vector["x_shopify_hmac_sha256"]
        before = InboundMessage.objects.count()

        response = deliver(web, shopify, vector["body"].encode(), headers)

        assert response.status_code == (200 if vector["expected_valid"] else 401), vector
        assert InboundMessage.objects.count() == before + (1 if vector["expected_valid"] else 0)


@pytest.mark.django_db
def test_the_woocommerce_docs_deliveries_round_trip_through_the_endpoint(web, woo):
    from apps.integrations.models import InboundMessage
    from tests.integrations.conftest import deliver, run_worker

    vectors = realworld_json("woocommerce/hmac_test_vectors_woocommerce_docs.json")["vectors"]
    for vector in vectors:
        response = deliver(web, woo, vector["body"].encode(), {
            "HTTP_X_WC_WEBHOOK_SIGNATURE": vector["x_wc_webhook_signature"],
            "HTTP_X_WC_WEBHOOK_TOPIC": vector["x_wc_webhook_topic"],
            "HTTP_X_WC_WEBHOOK_DELIVERY_ID": str(vector["delivery_id"])})
        assert response.status_code == 200
    run_worker()

    # Verified and stored; an add-to-cart action is not an order, so nothing is applied.
    assert sorted(InboundMessage.objects.values_list("status", flat=True)) == ["ignored", "ignored"]
