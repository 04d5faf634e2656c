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
