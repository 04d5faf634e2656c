"""Reconciliation pulls what webhooks missed, through the store's API behind a fake transport."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from apps.common.exceptions import BusinessRuleViolation
from apps.dispatch.models import Order
from apps.integrations.models import InboundMessage
from apps.integrations.outbound.transport import Response, TransportError
from apps.integrations.services.reconcile import connection_reconcile
from tests.integrations.conftest import deliver, realworld_bytes, realworld_json, run_worker, woo_headers

pytestmark = pytest.mark.django_db
SINCE = datetime(2017, 3, 20, tzinfo=UTC)


class FakeStoreApi:
    """The store's API at the transport seam: serves pages, records what was asked."""

    def __init__(self, *pages: Response | Exception) -> None:
        self.pages = list(pages)
        self.calls: list[dict] = []

    def get(self, url, *, headers, timeout):
        self.calls.append({"url": url, "headers": headers})
        page = self.pages.pop(0)
        if isinstance(page, Exception):
            raise page
        return page


@pytest.fixture
def woo_api(woo):
    woo.api = {"key": "ck_test", "secret": "cs_test"}
    woo.save()
    return woo


def _woo_pages():
    orders = realworld_json("woocommerce/wc_v3_docs_list_orders_response.json")
    return [Response(200, {"x-wp-totalpages": "2"}, json.dumps(orders[:1]).encode()),
            Response(200, {"x-wp-totalpages": "2"}, json.dumps(orders[1:]).encode())]


def test_woocommerce_orders_missed_by_webhooks_are_pulled_page_by_page(woo_api):
    store = FakeStoreApi(*_woo_pages())

    result = connection_reconcile(connection=woo_api, since=SINCE, transport=store)
    run_worker()

    assert (result.fetched, result.queued) == (2, 2)
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["723", "727"]
    first = urlsplit(store.calls[0]["url"])
    assert first.path == "/wp-json/wc/v3/orders"
    assert parse_qs(first.query)["page"] == ["1"] and parse_qs(urlsplit(store.calls[1]["url"]).query)["page"] == ["2"]
    assert store.calls[0]["headers"]["Authorization"].startswith("Basic ")
    woo_api.refresh_from_db()
    assert woo_api.last_reconciled_at is not None


def test_an_order_already_received_by_webhook_is_not_duplicated(web, woo_api):
    order = realworld_json("woocommerce/wc_v3_docs_list_orders_response.json")[0]
    body = json.dumps(order).encode()
    deliver(web, woo_api, body, woo_headers(body, topic="order.updated"))
    run_worker()

    result = connection_reconcile(connection=woo_api, since=SINCE, transport=FakeStoreApi(*_woo_pages()))
    run_worker()

    assert result.known == 1 and result.queued == 1
    assert Order.objects.count() == 2
    assert InboundMessage.objects.filter(duplicates=1).count() == 1


def test_shopify_orders_are_pulled_following_the_link_header(shopify):
    shopify.api = {"token": "shpat_test"}
    shopify.save()
    docs = json.loads(realworld_bytes("shopify/docs_sample_orders_create.json"))
    fixture = realworld_json("shopify/shopify_python_api_order_fixture.json")["order"]
    next_url = "https://acme-shop.myshopify.com/admin/api/2026-04/orders.json?page_info=abc"
    store = FakeStoreApi(
        Response(200, {"link": f'<{next_url}>; rel="next"'}, json.dumps({"orders": [docs]}).encode()),
        Response(200, {}, json.dumps({"orders": [fixture]}).encode()),
    )

    result = connection_reconcile(connection=shopify, since=SINCE, transport=store)
    run_worker()

    assert result.fetched == 2
    assert store.calls[0]["headers"]["X-Shopify-Access-Token"] == "shpat_test"
    assert store.calls[1]["url"] == next_url
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["450789469", "820982911946154508"]


def test_a_failing_store_api_is_a_clear_error_and_changes_nothing(woo_api):
    for answer, code in [(Response(401, {}, b"{}"), "store_api_error"), (TransportError("timed out"), "store_unreachable")]:
        with pytest.raises(BusinessRuleViolation) as caught:
            connection_reconcile(connection=woo_api, since=SINCE, transport=FakeStoreApi(answer))
        assert caught.value.code == code
    assert InboundMessage.objects.count() == 0
    woo_api.refresh_from_db()
    assert woo_api.last_reconciled_at is None


def test_the_api_queues_a_reconciliation(as_dave, woo_api):
    response = as_dave.post(f"/api/v1/integrations/connections/{woo_api.pk}/reconcile/")

    assert response.status_code == 202


def test_a_connection_without_credentials_cannot_be_reconciled(as_dave, woo):
    response = as_dave.post(f"/api/v1/integrations/connections/{woo.pk}/reconcile/")

    assert response.status_code == 422
    assert response.json()["code"] == "not_reconcilable"
