"""The inbound webhook endpoint: verify, store, acknowledge. Nothing else on the request thread.

Plain Django views rather than DRF: the signature must be checked over the exact
bytes received, before any parser touches them, and the path must stay cheap.
Every answer is JSON with the API's error shape. The URL matches with and without a
trailing slash, so nothing ever redirects: WooCommerce counts a 301/302 as a
successful delivery and would never send the order again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import close_old_connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.common.errors import error_body

from .adapters import adapter_for, connection_secrets
from .models import Connection, ConnectionKind
from .services.inbound import inbound_receive
from .woocommerce.verify import is_ping


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


# Connections by URL token, for a few seconds: the lookup was a third of a request's
# database time. A signature that fails against a cached copy is checked again against
# the database, so a secret rotated elsewhere is honoured at once; deactivating a
# connection takes effect within CACHE_S.
CACHE_S = 5.0
_cache: dict[str, tuple[float, Connection | None]] = {}
_cache_lock = threading.Lock()


def _connection(token: str, *, fresh: bool = False) -> Connection | None:
    now = time.monotonic()
    if not fresh and not settings.INBOUND_DB_THREAD_SENSITIVE:
        with _cache_lock:
            hit = _cache.get(token)
        if hit is not None and now - hit[0] < CACHE_S:
            return hit[1]
    connection = Connection.objects.filter(token=token, active=True).select_related("org", "mapping").first()
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[token] = (now, connection)
    return connection


# Database work runs on its own bounded pool: requests proceed in parallel, each thread
# keeping one database connection. (Django runs a sync view on a fresh thread, and so a
# fresh connection, per request; under load that exhausted PostgreSQL's connections.)
_pool = ThreadPoolExecutor(max_workers=settings.INBOUND_DB_THREADS, thread_name_prefix="inbound-db")


def _db(fn):
    """Tests set INBOUND_DB_THREAD_SENSITIVE so the work shares the test's transaction."""
    if settings.INBOUND_DB_THREAD_SENSITIVE:
        return sync_to_async(fn, thread_sensitive=True)
    return sync_to_async(fn, thread_sensitive=False, executor=_pool)


@csrf_exempt
async def receive(request: HttpRequest, token: str) -> JsonResponse:
    if request.method != "POST":
        return _error(405, "method_not_allowed", "Webhooks are delivered with POST.")
    if settings.INTEGRATIONS_REQUIRE_HTTPS and not request.is_secure():
        # Refused, not redirected: a redirect would count as delivered.
        return _error(403, "https_required", "Deliver webhooks over HTTPS.")
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "payload_too_large", "The request body is larger than webhooks may be.")
    # One hop to a worker thread for everything that touches the database.
    return await _db(_verify_and_store)(token, body, request.headers)


def _verify_and_store(token: str, body: bytes, headers: Mapping[str, str]) -> JsonResponse:
    if not settings.INBOUND_DB_THREAD_SENSITIVE:
        # No request signals reach the pool's threads: drop a connection broken by a
        # database restart (or past CONN_MAX_AGE) here, as Django does per request.
        close_old_connections()
    connection = _connection(token)
    if connection is None:
        return _error(404, "not_found", "No active connection has this URL.")
    if connection.kind == ConnectionKind.WOOCOMMERCE and is_ping(body, headers):
        return JsonResponse({"status": "ok", "message": "Webhook activation ping received."})
    adapter = adapter_for(connection)
    if not adapter.verify(secrets=list(connection_secrets(connection)), body=body, headers=headers):
        connection = _connection(token, fresh=True)  # the cached copy may predate a rotation
        if connection is not None:
            adapter = adapter_for(connection)
        if connection is None or not adapter.verify(secrets=list(connection_secrets(connection)), body=body,
                                                     headers=headers):
            return _error(401, "invalid_signature",
                          "The request signature is missing or does not match this connection's secret.")
    received = inbound_receive(connection=connection, headers=headers, body=body, adapter=adapter)
    return JsonResponse({"status": "duplicate" if received.duplicate else "accepted", "id": received.message.pk})


@csrf_exempt
async def noop(request: HttpRequest) -> JsonResponse:
    """Unauthenticated and does nothing: the baseline bench/inbound.py measures beside ``receive``."""
    return JsonResponse({"status": "ok"})
