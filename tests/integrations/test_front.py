"""/hooks/ answered at the ASGI level, ahead of Django's middleware (apps/integrations/front.py)."""

from __future__ import annotations

import json

import pytest
from asgiref.testing import ApplicationCommunicator

from apps.integrations.front import inbound_front
from apps.integrations.models import InboundMessage
from tests.integrations.conftest import realworld_bytes, run_worker, shopify_headers

DOCS_ORDER = "shopify/docs_sample_orders_create.json"


async def _django(scope, receive, send):
    """Stands in for Django: anything the front passes on is answered 299."""
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"django"})


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    # The test client's META names, back to the header names on the wire.
    return [(name.removeprefix("HTTP_").replace("_", "-").lower().encode(), value.encode())
            for name, value in headers.items()]


def call(path: str, *, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST",
         host: str = "testserver", scheme: str = "http") -> tuple[int, dict, dict]:
    from asgiref.sync import async_to_sync

    scope = {"type": "http", "method": method, "path": path, "scheme": scheme, "query_string": b"",
             "server": ("127.0.0.1", 8000),
             "headers": [(b"host", host.encode()), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode()), *_raw(headers or {})]}

    async def run():
        app = ApplicationCommunicator(inbound_front(_django), scope)
        await app.send_input({"type": "http.request", "body": body, "more_body": False})
        start = await app.receive_output(timeout=10)
        content = await app.receive_output(timeout=10)
        return start, content

    start, content = async_to_sync(run)()
    answer = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], (json.loads(content["body"]) if start["status"] != 299 else {}), answer


@pytest.mark.django_db(transaction=True)
def test_a_verified_shopify_order_is_stored_once_queued_and_acknowledged(shopify, production_path):
    body = realworld_bytes(DOCS_ORDER)

    status, answer, headers = call(f"/hooks/{shopify.token}", body=body, headers=shopify_headers(body))

    message = InboundMessage.objects.get()
    assert (status, answer) == (200, {"status": "accepted", "id": message.pk})
    assert bytes(message.body) == body and message.topic == "orders/create"
    assert message.headers["X-Shopify-Event-Id"] == "evt-1"  # named as Django names them
    assert headers["x-request-id"]
    assert run_worker() == 1
    message.refresh_from_db()
    assert message.status == "processed"


@pytest.mark.django_db(transaction=True)
def test_a_redelivery_through_the_front_is_acknowledged_as_a_duplicate(shopify, production_path):
    body = realworld_bytes(DOCS_ORDER)
    first = call(f"/hooks/{shopify.token}/", body=body, headers=shopify_headers(body))

    again = call(f"/hooks/{shopify.token}/", body=body, headers=shopify_headers(body))

    assert again[:2] == (200, {"status": "duplicate", "id": first[1]["id"]})
    assert InboundMessage.objects.get().duplicates == 1


@pytest.mark.django_db(transaction=True)
def test_a_tampered_body_is_a_401_with_nothing_stored(shopify, production_path):
    body = realworld_bytes(DOCS_ORDER)
    headers = shopify_headers(body)

    status, answer, _ = call(f"/hooks/{shopify.token}", body=body.replace(b"Shipping", b"Shippinh"), headers=headers)

    assert (status, answer["code"]) == (401, "invalid_signature")
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db
def test_an_unknown_host_is_refused_like_django_refuses_it(shopify):
    body = realworld_bytes(DOCS_ORDER)

    status, answer, _ = call(f"/hooks/{shopify.token}", body=body, headers=shopify_headers(body), host="evil.example")

    assert (status, answer["code"]) == (400, "bad_request")
    assert not InboundMessage.objects.exists()


@pytest.mark.django_db
def test_a_get_is_a_405_never_a_redirect(shopify):
    status, answer, _ = call(f"/hooks/{shopify.token}", method="GET")

    assert (status, answer["code"]) == (405, "method_not_allowed")


@pytest.mark.django_db(transaction=True)
def test_plain_http_is_refused_when_https_is_required_unless_the_proxy_says_https(shopify, production_path, settings):
    settings.INTEGRATIONS_REQUIRE_HTTPS = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    body = realworld_bytes(DOCS_ORDER)

    plain = call(f"/hooks/{shopify.token}", body=body, headers=shopify_headers(body))
    proxied = call(f"/hooks/{shopify.token}", body=body,
                   headers={**shopify_headers(body), "HTTP_X_FORWARDED_PROTO": "https"})

    assert (plain[0], plain[1]["code"]) == (403, "https_required")
    assert proxied[:2] == (200, {"status": "accepted", "id": InboundMessage.objects.get().pk})


@pytest.mark.django_db
def test_a_body_over_the_limit_is_a_413_before_it_is_read(shopify, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = realworld_bytes(DOCS_ORDER)

    status, answer, _ = call(f"/hooks/{shopify.token}", body=body, headers=shopify_headers(body))

    assert (status, answer["code"]) == (413, "payload_too_large")
    assert not InboundMessage.objects.exists()


def test_every_other_path_goes_to_django():
    assert call("/api/v1/orders/")[0] == 299
    assert call("/hooks/")[0] == 299  # not a token: Django's 404 page, not the front's


def test_the_noop_route_exists_only_when_asked_for(settings):
    settings.INBOUND_NOOP_ENDPOINT = False
    assert call("/hooks/noop")[0] == 299  # "noop" is too short to be a token: Django answers

    settings.INBOUND_NOOP_ENDPOINT = True
    assert call("/hooks/noop")[:2] == (200, {"status": "ok"})
