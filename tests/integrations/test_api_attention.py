"""The needs-attention queue over the API: see why, fix, reprocess, dismiss; tenants apart."""

from __future__ import annotations

import json

import pytest

from apps.dispatch.models import Order
from apps.integrations.models import InboundMessage
from tests.integrations.conftest import deliver, realworld_json, run_worker, shopify_headers

pytestmark = pytest.mark.django_db

URL = "/api/v1/integrations/messages/"


@pytest.fixture
def parked(web, shopify):
    """The docs order with a postal code that cannot be a US ZIP: parked with the reason."""
    payload = realworld_json("shopify/docs_sample_orders_create.json")
    payload["shipping_address"]["zip"] = "4OOO3"
    body = json.dumps(payload).encode()
    deliver(web, shopify, body, shopify_headers(body))
    run_worker()
    message = InboundMessage.objects.get()
    assert message.status == "needs_attention"
    return message


def test_dave_sees_the_queue_with_the_reason(as_dave, parked):
    body = as_dave.get(URL, {"attention": "true"}).json()

    assert [m["id"] for m in body["results"]] == [parked.pk]
    assert "postal_code" in body["results"][0]["reason"]
    assert body["results"][0]["problems"][0]["field"] == "postal_code"


def test_the_detail_shows_the_raw_body_and_headers(as_dave, parked):
    body = as_dave.get(f"{URL}{parked.pk}/").json()

    assert json.loads(body["body"])["shipping_address"]["zip"] == "4OOO3"
    assert body["headers"]["X-Shopify-Topic"] == "orders/create"


def test_fixing_the_field_reprocesses_and_creates_the_order(as_dave, parked):
    response = as_dave.post(f"{URL}{parked.pk}/fix/", {"overrides": {"postal_code": "40003"}}, format="json")

    assert response.status_code == 200
    assert response.json()["status"] == "processed"
    assert Order.objects.get().postal_code == "40003"
    assert InboundMessage.objects.get().overrides == {"postal_code": "40003"}


def test_a_fix_that_is_still_wrong_keeps_the_message_in_the_queue(as_dave, parked):
    response = as_dave.post(f"{URL}{parked.pk}/fix/", {"overrides": {"customer_email": "not-an-email"}}, format="json")

    assert response.json()["status"] == "needs_attention"
    assert Order.objects.count() == 0


def test_a_fix_naming_no_order_field_is_a_400(as_dave, parked):
    response = as_dave.post(f"{URL}{parked.pk}/fix/", {"overrides": {"colour": "red"}}, format="json")

    assert response.status_code == 400
    assert response.json()["fields"]["overrides"] == ["Not order fields: colour."]


def test_a_processed_message_cannot_be_reprocessed(as_dave, parked):
    as_dave.post(f"{URL}{parked.pk}/fix/", {"overrides": {"postal_code": "40003"}}, format="json")

    response = as_dave.post(f"{URL}{parked.pk}/reprocess/")

    assert response.status_code == 409
    assert response.json()["code"] == "not_reprocessable"


def test_bulk_reprocess_runs_each_message(as_dave, parked):
    response = as_dave.post(f"{URL}reprocess/", {"ids": [parked.pk]}, format="json")

    assert response.status_code == 200
    assert response.json()[0]["status"] == "needs_attention"  # still the same bad postal code


def test_dismissing_takes_it_out_of_the_queue(as_dave, parked):
    as_dave.post(f"{URL}{parked.pk}/dismiss/")

    assert as_dave.get(URL, {"attention": "true"}).json()["results"] == []


def test_carol_sees_nothing_of_acmes_messages_or_connections(as_carol, parked, shopify):
    assert as_carol.get(URL).json()["results"] == []
    assert as_carol.get(f"{URL}{parked.pk}/").status_code == 404
    assert as_carol.post(f"{URL}{parked.pk}/reprocess/").status_code == 404
    assert as_carol.get("/api/v1/integrations/connections/").json()["results"] == []
    assert as_carol.get(f"/api/v1/integrations/connections/{shopify.pk}/").status_code == 404


def test_a_bad_filter_is_a_400(as_dave, parked):
    assert as_dave.get(URL, {"status": "lost"}).status_code == 400
    assert as_dave.get(URL, {"attention": "maybe"}).status_code == 400


def test_alice_creates_a_connection_and_sees_its_secret_once(as_alice):
    response = as_alice.post("/api/v1/integrations/connections/", {
        "kind": "shopify", "name": "Acme Shop", "store": "acme.myshopify.com", "secret": "shpss_x"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["secret"] == "shpss_x"
    assert body["url"].startswith("http://testserver/hooks/")
    assert body["source"] == "shopify:acme.myshopify.com"
    assert "secret" not in as_alice.get(f"/api/v1/integrations/connections/{body['id']}/").json()


def test_dave_may_not_create_connections(as_dave):
    response = as_dave.post("/api/v1/integrations/connections/", {
        "kind": "shopify", "name": "Shop", "secret": "x"}, format="json")

    assert response.status_code == 403


def test_a_shopify_connection_needs_its_secret(as_alice):
    response = as_alice.post("/api/v1/integrations/connections/", {"kind": "shopify", "name": "Shop"}, format="json")

    assert response.status_code == 400
    assert "secret" in response.json()["fields"]


def test_rotating_the_secret_shows_the_new_one_and_keeps_the_old_for_a_while(as_alice, shopify):
    response = as_alice.post(f"/api/v1/integrations/connections/{shopify.pk}/rotate-secret/",
                             {"secret": "new", "grace_hours": 1}, format="json")

    assert response.json()["secret"] == "new"
    assert response.json()["previous_secret_valid_until"] is not None


def test_the_console_links_to_the_integrations_page_which_drivers_cannot_open(client, dave, bob):
    from tests.factories import PASSWORD

    assert client.login(username="dave", password=PASSWORD)
    assert 'href="/console/integrations/"' in client.get("/console/").content.decode()
    assert client.get("/console/integrations/").status_code == 200
    client.logout()
    assert client.login(username=bob.user.username, password=PASSWORD)
    assert client.get("/console/integrations/").status_code == 403
