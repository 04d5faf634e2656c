"""Inbound webhooks are rate-limited per connection URL, and a flood of failing
deliveries (unknown URLs, bad signatures) is answered without a database lookup each."""

from __future__ import annotations

import json

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from apps.integrations.models import InboundMessage

from .conftest import deliver, shopify_headers


@pytest.fixture
def tight(settings):
    settings.INBOUND_RATE_PER_S = 1.0
    settings.INBOUND_BURST = 3.0
    settings.INBOUND_FAILURES_PER_S = 1.0  # bursts of 3


def _order(n: int) -> bytes:
    return json.dumps({"id": 820982911946154500 + n, "name": f"#{1000 + n}"}).encode()


def test_a_connection_over_its_rate_gets_a_429_with_retry_after_and_nothing_is_stored(web, shopify, tight):
    answers = [deliver(web, shopify, _order(n), shopify_headers(_order(n), event_id=f"e{n}")) for n in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["code"] == "rate_limited"
    assert int(answers[3]["Retry-After"]) >= 1
    assert InboundMessage.objects.count() == 3


def test_the_limit_is_per_connection(web, shopify, woo, tight, acme):
    from apps.integrations.services.connections import connection_create

    other = connection_create(org=acme, kind="shopify", name="Acme Outlet", store="acme-outlet.myshopify.com",
                              secret="hush")
    for n in range(3):
        deliver(web, shopify, _order(n), shopify_headers(_order(n), event_id=f"e{n}"))

    answer = deliver(web, other, _order(9), shopify_headers(_order(9), event_id="e9"))

    assert answer.status_code == 200


def test_the_bucket_refills_with_time(web, shopify, tight, monkeypatch):
    import time

    clock = [time.monotonic()]
    monkeypatch.setattr("apps.common.ratelimit.time.monotonic", lambda: clock[0])
    for n in range(3):
        deliver(web, shopify, _order(n), shopify_headers(_order(n), event_id=f"e{n}"))
    assert deliver(web, shopify, _order(3), shopify_headers(_order(3), event_id="e3")).status_code == 429

    clock[0] += 1.0

    assert deliver(web, shopify, _order(3), shopify_headers(_order(3), event_id="e3")).status_code == 200


def test_a_flood_of_unknown_urls_is_answered_without_a_lookup_each(web, tight, db):
    answers = []
    with CaptureQueriesContext(db_connection) as queries:
        for n in range(10):
            answers.append(web.post(f"/hooks/unknown-token-{n:04d}/", data=b"{}", content_type="application/json"))

    assert [a.status_code for a in answers[:3]] == [404, 404, 404]
    assert {a.status_code for a in answers[3:]} == {429}
    assert len(queries) <= 3


@pytest.mark.django_db(transaction=True)
def test_bad_signatures_past_the_failure_limit_are_refused_without_a_second_lookup(web, shopify, tight, settings,
                                                                                   production_path, monkeypatch):
    from apps.integrations import hooks

    settings.INBOUND_BURST = 100.0  # the connection's own limit is not what this is about
    lookups = []
    real_lookup = hooks._lookup
    monkeypatch.setattr(hooks, "_lookup", lambda token: lookups.append(token) or real_lookup(token))
    body = _order(1)
    bad = {**shopify_headers(body), "HTTP_X_SHOPIFY_HMAC_SHA256": "AAAA"}
    assert deliver(web, shopify, body, shopify_headers(body, event_id="warm")).status_code == 200  # now cached
    first = [deliver(web, shopify, body, bad) for _ in range(3)]  # each looked up again: a rotated secret?
    looked_up = len(lookups)
    flood = [deliver(web, shopify, body, bad) for _ in range(5)]

    assert {a.status_code for a in first + flood} == {401}
    assert {a.json()["code"] for a in flood} == {"invalid_signature"}
    assert looked_up == 4 and len(lookups) == looked_up
