"""A partner system with an API key: what its scopes allow, and its rate limit."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.accounts.services import api_client_create
from apps.accounts.throttling import ApiClientRateThrottle
from tests.factories import order_payload

pytestmark = pytest.mark.django_db


def _key(org, *scopes: str) -> APIClient:
    _, key = api_client_create(org=org, name="Partner", scopes=list(scopes))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_key_that_may_create_orders_creates_but_cannot_manage_webhooks(acme):
    shop = _key(acme, "orders:write")

    assert shop.post("/api/v1/orders/", order_payload(), format="json").status_code == 201
    assert shop.get("/api/v1/orders/").status_code == 403
    response = shop.post("/api/v1/webhooks/endpoints/", {"url": "https://shop.example.com/", "event_types": ["*"]},
                         format="json")
    assert response.status_code == 403
    assert response.json()["message"] == "This action needs the 'webhooks:write' scope."


def test_a_key_that_manages_webhooks_subscribes_and_reads_its_delivery_log(acme):
    partner = _key(acme, "webhooks:read", "webhooks:write")

    created = partner.post("/api/v1/webhooks/endpoints/", {"url": "https://shop.example.com/", "event_types": ["order.*"]},
                           format="json")

    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    assert partner.get("/api/v1/webhooks/deliveries/").status_code == 200
    assert partner.get("/api/v1/orders/").status_code == 403


def test_a_key_may_be_granted_the_integration_scopes(acme):
    integrator = _key(acme, "integrations:read", "integrations:manage")

    response = integrator.post("/api/v1/integrations/connections/", {
        "kind": "woocommerce", "name": "Woo", "store": "https://shop.example.com", "secret": "s"}, format="json")

    assert response.status_code == 201
    assert integrator.get("/api/v1/integrations/messages/").status_code == 200


def test_a_key_over_its_rate_gets_429_with_retry_after(acme, monkeypatch):
    monkeypatch.setattr(ApiClientRateThrottle, "THROTTLE_RATES", {"api_client": "3/min"})
    cache.clear()
    partner = _key(acme, "webhooks:read")

    codes = [partner.get("/api/v1/webhooks/endpoints/").status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
    limited = partner.get("/api/v1/webhooks/deliveries/")
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 60
    cache.clear()


def test_the_schema_documents_the_partner_endpoints_with_examples(as_alice):
    schema = as_alice.get("/api/schema/", {"format": "json"}).json()

    endpoint_create = schema["paths"]["/api/v1/webhooks/endpoints/"]["post"]
    assert "examples" in endpoint_create["requestBody"]["content"]["application/json"]
    assert "/api/v1/integrations/mappings/{id}/try/" in schema["paths"]
    assert "/api/v1/webhooks/deliveries/replay/" in schema["paths"]


# --- a shipper's key: bound to its own orders -------------------------------------------------


def _shipper(org, source="shop-a", scopes=("orders:read", "orders:write", "webhooks:read", "webhooks:write")):
    _, key = api_client_create(org=org, name=source, scopes=list(scopes), order_source=source)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_shippers_key_creates_orders_under_its_source_and_reads_only_those(acme, as_dave):
    shop_a, shop_b = _shipper(acme, "shop-a"), _shipper(acme, "shop-b")

    created = shop_a.post("/api/v1/orders/", order_payload(external_id="A-1"), format="json").json()
    shop_b.post("/api/v1/orders/", order_payload(external_id="B-1"), format="json")

    assert created["source"] == "shop-a"
    assert [o["external_id"] for o in shop_a.get("/api/v1/orders/").json()["results"]] == ["A-1"]
    other = as_dave.get("/api/v1/orders/", {"external_id": "B-1"}).json()["results"][0]["id"]
    assert shop_a.get(f"/api/v1/orders/{other}/").status_code == 404
    assert shop_a.post(f"/api/v1/orders/{other}/cancel/", {}, format="json").status_code == 404
    assert len(as_dave.get("/api/v1/orders/").json()["results"]) == 2  # the carrier sees both


def test_a_shippers_key_cannot_create_under_another_source(acme):
    response = _shipper(acme).post("/api/v1/orders/", order_payload(source="shop-b"), format="json")

    assert response.status_code == 400
    assert "shop-a" in response.json()["fields"]["source"][0]


def test_a_shippers_key_gets_webhooks_only_for_its_own_orders(acme):
    from apps.integrations.models import WebhookDelivery

    shop_a, shop_b = _shipper(acme, "shop-a"), _shipper(acme, "shop-b")
    shop_a.post("/api/v1/webhooks/endpoints/", {"url": "https://a.example.com/", "event_types": ["order.*"]},
                format="json")
    shop_a.post("/api/v1/orders/", order_payload(external_id="A-1"), format="json")
    shop_b.post("/api/v1/orders/", order_payload(external_id="B-1"), format="json")

    assert list(WebhookDelivery.objects.values_list("payload__data__external_id", flat=True)) == ["A-1"]
    assert shop_b.get("/api/v1/webhooks/endpoints/").json()["results"] == []
    assert shop_b.get("/api/v1/webhooks/deliveries/").json()["results"] == []
    assert len(shop_a.get("/api/v1/webhooks/deliveries/").json()["results"]) == 1


def test_a_shippers_key_cannot_hold_wider_scopes(as_alice):
    response = as_alice.post("/api/v1/api-clients/", {"name": "Shop", "scopes": ["orders:write", "events:read"],
                                                      "order_source": "shop-a"}, format="json")

    assert response.status_code == 400
    assert "events:read" in response.json()["fields"]["scopes"][0]
