"""Connections, signed deliveries and a worker that runs what the request queued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from django.test import Client
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from apps.integrations.services.connections import connection_create
from tests.shared_data import REALWORLD, require

SHOPIFY_SECRET = "hush"  # the go-shopify test vector's secret
WOO_SECRET = "my-super-secret-private-key"  # the WooCommerce docs' secret


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def realworld_json(relative: str):
    return json.loads(require(REALWORLD / relative).read_text())


def realworld_bytes(relative: str) -> bytes:
    return require(REALWORLD / relative).read_bytes()


@pytest.fixture
def shopify(acme):
    return connection_create(org=acme, kind="shopify", name="Acme Shop", store="acme-shop.myshopify.com",
                             secret=SHOPIFY_SECRET)


@pytest.fixture
def woo(acme):
    return connection_create(org=acme, kind="woocommerce", name="Acme Woo", store="http://example.com/",
                             secret=WOO_SECRET)


@pytest.fixture
def web() -> Client:
    """A partner's HTTP client: no session, no API key, CSRF enforced like the real thing."""
    return Client(enforce_csrf_checks=True)


def shopify_headers(body: bytes, *, topic: str = "orders/create", event_id: str = "evt-1",
                    secret: str = SHOPIFY_SECRET) -> dict[str, str]:
    return {
        "HTTP_X_SHOPIFY_HMAC_SHA256": sign(secret, body), "HTTP_X_SHOPIFY_TOPIC": topic,
        "HTTP_X_SHOPIFY_SHOP_DOMAIN": "acme-shop.myshopify.com", "HTTP_X_SHOPIFY_API_VERSION": "2026-04",
        "HTTP_X_SHOPIFY_WEBHOOK_ID": f"wh-{event_id}", "HTTP_X_SHOPIFY_EVENT_ID": event_id,
        "HTTP_X_SHOPIFY_TRIGGERED_AT": "2026-11-23T09:00:00Z",
    }


def woo_headers(body: bytes, *, topic: str = "order.created", delivery: str = "1",
                secret: str = WOO_SECRET) -> dict[str, str]:
    resource, event = topic.split(".", 1)
    return {
        "HTTP_X_WC_WEBHOOK_SIGNATURE": sign(secret, body), "HTTP_X_WC_WEBHOOK_TOPIC": topic,
        "HTTP_X_WC_WEBHOOK_SOURCE": "http://example.com/", "HTTP_X_WC_WEBHOOK_RESOURCE": resource,
        "HTTP_X_WC_WEBHOOK_EVENT": event, "HTTP_X_WC_WEBHOOK_ID": "142", "HTTP_X_WC_WEBHOOK_DELIVERY_ID": delivery,
        "HTTP_USER_AGENT": "WooCommerce/2.6.0 Hookshot (WordPress/4.5.2)",
    }


def deliver(web: Client, connection, body: bytes, headers: dict[str, str], *, slash: bool = True):
    url = f"/hooks/{connection.token}{'/' if slash else ''}"
    return web.post(url, data=body, content_type="application/json", **headers)


def run_worker(limit: int = 1000) -> int:
    """Run every task that is due, one by one, with the real worker's claim-and-run code
    (its loop would close the test's database connection); return how many ran."""
    worker = Worker(queue_names=["*"], interval=0, batch=True, backend_name="default", startup_delay=False,
                    max_tasks=None, worker_id="test", excluded_queue_names=[])
    ran = 0
    while ran < limit:
        row = DBTaskResult.objects.ready().order_by("-priority", "enqueued_at").first()
        if row is None:
            return ran
        row.claim("test")
        worker.run_task(row)
        ran += 1
    return ran


@pytest.fixture(autouse=True)
def _inbound_db_on_the_test_thread(settings):
    # The webhook view's database work must see the test's transaction.
    settings.INBOUND_DB_THREAD_SENSITIVE = True


@pytest.fixture
def production_path(settings, monkeypatch):
    """The webhook path as a server runs it: connections cached, looked up on the pool's
    own threads, stored by the group-commit writer's thread. Each holds its own database
    connection, so tests using it need ``django_db(transaction=True)``; the threads'
    connections are closed afterwards so the test database can be dropped."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from apps.integrations import hooks
    from apps.integrations.writer import inbound_writer

    settings.INBOUND_DB_THREAD_SENSITIVE = False
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-inbound-db")
    monkeypatch.setattr(hooks, "_pool", pool)
    hooks._cache.clear()
    yield
    inbound_writer.stop()
    pool.submit(connections.close_all).result()
    pool.shutdown()
    hooks._cache.clear()
