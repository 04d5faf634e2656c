"""The inbound webhook endpoint: verify, store, acknowledge. Nothing else on the request path.

``accept`` is the whole of it, shared by the two ways a request reaches it: the ASGI
front (apps/integrations/front.py) that serves ``/hooks/`` in a running server without
Django's middleware, and the Django views below (the URL names, the test client).

The signature is checked over the exact bytes received, before any parser touches
them. Every answer is JSON with the API's error shape. The URL matches with and
without a trailing slash, so nothing ever redirects: WooCommerce counts a 301/302 as a
successful delivery and would never send the order again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, close_old_connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.common.errors import DATABASE_RETRY_AFTER_S, error_body
from apps.common.ratelimit import TokenBuckets

from .adapters import Adapter, adapter_for, connection_secrets
from .models import Connection, ConnectionKind
from .services.inbound import inbound_prepare, inbound_store
from .woocommerce.verify import is_ping


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, code: str, message: str, **headers: str) -> Answer:
    return Answer(status, error_body(code, message), headers)


# Connections (with their adapters) by URL token, for a few seconds: the lookup was a
# third of a request's database time. A signature that fails against a cached copy is
# checked again against the database, so a secret rotated elsewhere is honoured at once;
# deactivating a connection takes effect within CACHE_S.
CACHE_S = 5.0
_cache: dict[str, tuple[float, Connection | None, Adapter | None]] = {}
_cache_lock = threading.Lock()


def _cached(token: str) -> tuple[Connection | None, Adapter | None] | None:
    if settings.INBOUND_DB_THREAD_SENSITIVE:
        return None
    with _cache_lock:
        hit = _cache.get(token)
    if hit is not None and time.monotonic() - hit[0] < CACHE_S:
        return hit[1], hit[2]
    return None


def _lookup(token: str) -> tuple[Connection | None, Adapter | None]:
    """From the database (a generic connection's adapter reads its mapping there too)."""
    if not settings.INBOUND_DB_THREAD_SENSITIVE:
        # No request signals reach the pool's threads: drop a connection broken by a
        # database restart (or past CONN_MAX_AGE) here, as Django does per request.
        close_old_connections()
    connection = Connection.objects.filter(token=token, active=True).select_related("org", "mapping").first()
    adapter = adapter_for(connection) if connection is not None else None
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[token] = (time.monotonic(), connection, adapter)
    return connection, adapter


# Lookups run on a small bounded pool, each thread keeping one database connection
# (Django runs sync code on a fresh thread, so a fresh connection, per request; under
# load that exhausted PostgreSQL's connections). Storing runs on the writer's thread.
_pool = ThreadPoolExecutor(max_workers=settings.INBOUND_DB_THREADS, thread_name_prefix="inbound-db")


def _db(fn):
    """Tests set INBOUND_DB_THREAD_SENSITIVE so the work shares the test's transaction."""
    if settings.INBOUND_DB_THREAD_SENSITIVE:
        return sync_to_async(fn, thread_sensitive=True)
    return sync_to_async(fn, thread_sensitive=False, executor=_pool)


def _store_one(item):
    return inbound_store(items=[item])[0]


async def accept(*, token: str, body: bytes, headers: Mapping[str, str]) -> Answer:
    """Verify a delivery and store it; the answer a partner gets. ``headers`` must match
    names case-insensitively (Django's ``HttpHeaders``)."""
    limits = _limits()
    if wait := limits.per_url.take(token):
        return _rate_limited(wait)
    try:
        found = _cached(token)
        if found is None:
            if limits.failures.empty(FAILURES):
                # A flood of unknown URLs: answer without a database lookup each.
                return _rate_limited(limits.failures.take(FAILURES) or 1.0)
            found = await _db(_lookup)(token)
        connection, adapter = found
        if connection is None or adapter is None:
            limits.failures.take(FAILURES)
            return _error(404, "not_found", "No active connection has this URL.")
        if connection.kind == ConnectionKind.WOOCOMMERCE and is_ping(body, headers):
            return Answer(200, {"status": "ok", "message": "Webhook activation ping received."})
        # Pure CPU (an HMAC over the body): on the event loop, no thread hop.
        if not adapter.verify(secrets=list(connection_secrets(connection)), body=body, headers=headers):
            # The cached copy may predate a rotation: look again, unless bad signatures
            # are flooding in (then each would cost a lookup).
            fresh = (None, None) if limits.failures.empty(FAILURES) else await _db(_lookup)(token)
            connection, adapter = fresh
            if connection is None or adapter is None or not adapter.verify(
                    secrets=list(connection_secrets(connection)), body=body, headers=headers):
                limits.failures.take(FAILURES)
                return _error(401, "invalid_signature",
                              "The request signature is missing or does not match this connection's secret.")
        item = inbound_prepare(connection=connection, headers=headers, body=body, adapter=adapter)
        if settings.INBOUND_DB_THREAD_SENSITIVE:
            stored = await _db(_store_one)(item)
        else:
            from .writer import inbound_writer

            stored = await inbound_writer.submit(item)
    except DatabaseError:
        # Nothing acknowledged, so nothing lost: the partner delivers again.
        return _error(503, "service_unavailable", "The database is unreachable; nothing was saved. Retry shortly.",
                      **{"Retry-After": str(DATABASE_RETRY_AFTER_S)})
    return Answer(200, {"status": "duplicate" if stored.duplicate else "accepted", "id": stored.id})


FAILURES = "failures"


@dataclass(frozen=True)
class _Limits:
    per_url: TokenBuckets
    failures: TokenBuckets
    settings_key: tuple[float, float, float]


_current: _Limits | None = None


def _limits() -> _Limits:
    """This process's buckets, made again when the settings change (tests)."""
    global _current
    key = (settings.INBOUND_RATE_PER_S, settings.INBOUND_BURST, settings.INBOUND_FAILURES_PER_S)
    if _current is None or _current.settings_key != key:
        rate, burst, failures = key
        _current = _Limits(TokenBuckets(rate_per_s=rate, burst=burst),
                           TokenBuckets(rate_per_s=failures, burst=failures * 3), key)
    return _current


def _rate_limited(wait_s: float) -> Answer:
    return _error(429, "rate_limited", "Too many webhook deliveries to this URL; deliver again shortly.",
                  **{"Retry-After": str(max(1, math.ceil(wait_s)))})


def _response(answer: Answer) -> JsonResponse:
    response = JsonResponse(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response


@csrf_exempt
async def receive(request: HttpRequest, token: str) -> JsonResponse:
    if request.method != "POST":
        return _response(_error(405, "method_not_allowed", "Webhooks are delivered with POST."))
    if settings.INTEGRATIONS_REQUIRE_HTTPS and not request.is_secure():
        # Refused, not redirected: a redirect would count as delivered.
        return _response(_error(403, "https_required", "Deliver webhooks over HTTPS."))
    try:
        body = request.body
    except RequestDataTooBig:
        return _response(_error(413, "payload_too_large", "The request body is larger than webhooks may be."))
    return _response(await accept(token=token, body=body, headers=request.headers))


@csrf_exempt
async def noop(request: HttpRequest) -> JsonResponse:
    """Unauthenticated and does nothing: the baseline bench/inbound.py measures beside ``receive``."""
    return JsonResponse({"status": "ok"})
