"""A partner onboarded by configuration: the Magento-style order through a mapping."""

from __future__ import annotations

import copy
import json

import pytest

from apps.dispatch.models import Order
from apps.integrations.api import MAGENTO_SPEC
from apps.integrations.generic.mapping import spec_problems
from apps.integrations.models import InboundMessage, Mapping
from apps.integrations.services.connections import connection_create
from apps.integrations.services.mappings import mapping_create, mapping_revise, mapping_try
from tests.integrations.conftest import deliver, realworld_bytes, realworld_json, run_worker, sign

pytestmark = pytest.mark.django_db

MAGENTO = "magento/magento2_order_webhook_example_stock2shop_REDACTED.json"
SECRET = "stock2shop-secret"


def test_the_magento_order_normalizes_through_the_mapping():
    tried = mapping_try(spec=MAGENTO_SPEC, payload=realworld_json(MAGENTO))

    order = tried.as_json()["order"]
    assert tried.draft.external_id == "7"
    assert order["reference"] == "000000007"  # the leading zeros are the partner's, kept
    assert order["customer_name"] == "Dmitry Fedyuk"
    assert (order["address_line1"], order["city"], order["postal_code"], order["region"], order["country"]) == (
        "49 West 32nd Street", "New York City", "10001", "New York", "US")
    assert order["customer_phone"] == "+12127363800"
    assert order["customer_email"] == "admin@mage2.pro"
    assert order["priority"] == 1  # flatrate is not in the value map: the default
    assert order["items"] == [{"sku": "Cat", "description": "Cat", "quantity": 1, "weight_kg": "0.000",
                               "volume_l": "0.000"}]
    # Only the warning that no geocoder could place it.
    assert [p["field"] for p in tried.as_json()["problems"]] == ["lat"]


def test_a_status_in_the_cancel_list_means_cancel():
    payload = realworld_json(MAGENTO) | {"status": "canceled"}

    assert mapping_try(spec=MAGENTO_SPEC, payload=payload).draft.action == "cancel"


def test_every_problem_is_reported_at_once():
    payload = copy.deepcopy(realworld_json(MAGENTO))
    payload["shipping_address"].update(country_id="Narnia", postcode=None, street="")
    payload["line_items"][0]["qty"] = "lots"

    problems = {p["field"] for p in mapping_try(spec=MAGENTO_SPEC, payload=payload).as_json()["problems"]}

    assert {"country", "items.0.quantity", "address_line1"} <= problems


def test_a_value_map_translates_the_partners_codes():
    spec = copy.deepcopy(MAGENTO_SPEC)
    spec["fields"]["priority"]["map"]["flatrate_flatrate"] = 3

    assert mapping_try(spec=spec, payload=realworld_json(MAGENTO)).as_json()["order"]["priority"] == 3


def test_a_mapping_with_mistakes_is_refused_with_each_one_named():
    bad = {"external_id": "", "fields": {"colour": "x", "city": {"map": []}}, "signature": {"header": "X", "algorithm": "md5"}}

    problems = spec_problems(bad)

    assert any(p.startswith("external_id") for p in problems)
    assert any(p.startswith("fields.colour") for p in problems)
    assert any(p.startswith("fields.city") for p in problems)
    assert any(p.startswith("signature.algorithm") for p in problems)


def test_a_mapping_without_a_signature_rule_is_refused():
    spec = {k: v for k, v in MAGENTO_SPEC.items() if k != "signature"}

    assert any(p.startswith("signature") for p in spec_problems(spec))


@pytest.fixture
def magento(acme):
    mapping = mapping_create(org=acme, name="Magento", spec=MAGENTO_SPEC, actor_label="user:1")
    return connection_create(org=acme, kind="generic", name="Magento store", store="shop.example.com",
                             secret=SECRET, mapping=mapping)


def _headers(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"HTTP_X_STOCK2SHOP_SIGNATURE": sign(secret, body)}


def test_a_signed_magento_webhook_becomes_an_order(web, magento):
    body = realworld_bytes(MAGENTO)

    assert deliver(web, magento, body, _headers(body)).status_code == 200
    run_worker()

    order = Order.objects.get()
    assert (order.source, order.external_id, order.customer_name) == ("generic:shop.example.com", "7", "Dmitry Fedyuk")
    message = InboundMessage.objects.get()
    assert message.mapping_version.version == 1


@pytest.mark.parametrize("variant", ["unsigned", "wrong secret", "one byte changed", "re-serialized"])
def test_a_generic_webhook_that_fails_verification_stores_nothing(web, magento, variant):
    body = realworld_bytes(MAGENTO)
    headers = _headers(body)
    if variant == "unsigned":
        headers = {}
    elif variant == "wrong secret":
        headers = _headers(body, "guess")
    elif variant == "one byte changed":
        body = body.replace(b"Dmitry", b"Dmitrx", 1)
    else:
        body = json.dumps(json.loads(body)).encode()

    assert deliver(web, magento, body, headers).status_code == 401
    assert InboundMessage.objects.count() == 0


def test_the_same_order_and_modification_time_is_a_duplicate(web, magento):
    body = realworld_bytes(MAGENTO)
    deliver(web, magento, body, _headers(body))

    assert deliver(web, magento, body, _headers(body)).json()["status"] == "duplicate"


def test_a_new_mapping_version_fixes_a_parked_message_on_reprocess(web, magento, as_dave):
    spec = copy.deepcopy(MAGENTO_SPEC)
    spec["fields"]["country"] = "shipping_address.country_name"  # a mistake: no such key
    mapping_revise(mapping=magento.mapping, spec=spec, actor_label="user:1")
    body = realworld_bytes(MAGENTO)
    deliver(web, magento, body, _headers(body))
    run_worker()
    message = InboundMessage.objects.get()
    assert message.status == "needs_attention" and "country" in message.reason

    mapping_revise(mapping=magento.mapping, spec=MAGENTO_SPEC, actor_label="user:1")
    response = as_dave.post(f"/api/v1/integrations/messages/{message.pk}/reprocess/")

    assert response.json()["status"] == "processed"
    message.refresh_from_db()
    assert message.mapping_version.version == 3


# --- the API: versions and try-it -----------------------------------------------------------


def test_alice_creates_a_mapping_revises_it_and_lists_its_versions(as_alice):
    created = as_alice.post("/api/v1/integrations/mappings/", {"name": "Magento", "spec": MAGENTO_SPEC}, format="json")
    assert created.status_code == 201
    pk = created.json()["id"]
    spec = copy.deepcopy(MAGENTO_SPEC) | {"timezone": "Europe/Berlin"}

    revised = as_alice.post(f"/api/v1/integrations/mappings/{pk}/versions/", {"spec": spec}, format="json")

    assert revised.status_code == 201 and revised.json()["version"] == 2
    versions = as_alice.get(f"/api/v1/integrations/mappings/{pk}/versions/").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert as_alice.get(f"/api/v1/integrations/mappings/{pk}/").json()["current"]["spec"]["timezone"] == "Europe/Berlin"


def test_try_it_returns_the_order_and_problems_and_saves_nothing(as_dave, acme):
    mapping = mapping_create(org=acme, name="Magento", spec=MAGENTO_SPEC, actor_label="user:1")
    payload = realworld_json(MAGENTO)
    payload["shipping_address"]["telephone"] = "12"

    body = as_dave.post(f"/api/v1/integrations/mappings/{mapping.pk}/try/", {"payload": payload}, format="json").json()

    assert body["ok"] is False
    assert body["order"]["customer_name"] == "Dmitry Fedyuk"
    assert {p["field"] for p in body["problems"]} == {"customer_phone", "lat"}
    assert Order.objects.count() == 0 and InboundMessage.objects.count() == 0


def test_try_a_draft_before_saving_it(as_dave):
    response = as_dave.post("/api/v1/integrations/mappings/try/", {
        "spec": MAGENTO_SPEC, "payload": realworld_json(MAGENTO)}, format="json")

    assert response.status_code == 200
    assert response.json()["external_id"] == "7"
    assert Mapping.objects.count() == 0


def test_a_broken_mapping_is_a_400_listing_its_problems(as_alice):
    response = as_alice.post("/api/v1/integrations/mappings/", {"name": "X", "spec": {"fields": {}}}, format="json")

    assert response.status_code == 400
    assert len(response.json()["fields"]["spec"]) >= 2


def test_carol_cannot_see_or_try_acmes_mapping(as_carol, acme):
    mapping = mapping_create(org=acme, name="Magento", spec=MAGENTO_SPEC, actor_label="user:1")

    assert as_carol.get(f"/api/v1/integrations/mappings/{mapping.pk}/").status_code == 404
    assert as_carol.post(f"/api/v1/integrations/mappings/{mapping.pk}/try/", {"payload": {}}, format="json").status_code == 404


def test_a_shopify_connection_can_be_tried_too(as_dave, shopify):
    payload = realworld_json("shopify/docs_sample_orders_create.json")

    body = as_dave.post(f"/api/v1/integrations/connections/{shopify.pk}/try/",
                        {"payload": payload, "topic": "orders/create"}, format="json").json()

    assert body["order"]["customer_name"] == "Steve Shipper"
    assert Order.objects.count() == 0
