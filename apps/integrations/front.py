"""``/hooks/`` served straight from ASGI, ahead of Django's middleware stack.

A webhook needs none of what the middleware does for a browser or an API client
(sessions, CSRF, authentication, messages, clickjacking headers): it is verified by its
HMAC alone. Building a Django request and running it through nine middlewares cost
about as much CPU as verifying and storing the webhook itself, and on a two-core
machine that was the difference between 160 and 300 webhooks/s (docs/performance.md,
"Inbound webhooks"). So config/asgi.py wraps Django's application with this front,
which answers ``/hooks/<token>`` itself and hands every other request to Django.

What the middleware did that still matters is kept here: the Host header is checked
against ALLOWED_HOSTS, plain HTTP is refused when INTEGRATIONS_REQUIRE_HTTPS is on
(honouring SECURE_PROXY_SSL_HEADER), bodies above DATA_UPLOAD_MAX_MEMORY_SIZE get a
413 before they are read, and each request gets its request id, access log line and
latency metric. The decision itself is ``hooks.accept``, the same code the Django view
(kept for the URL names and the test client) runs.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.http.request import HttpHeaders, split_domain_port, validate_host

from apps.common import metrics
from apps.common.errors import error_body
from apps.common.observability import incoming_request_id, request_id

from .hooks import Answer, accept

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]

_HOOK = re.compile(r"^/hooks/(?P<token>[A-Za-z0-9_-]{8,64})/?$")
_NOOP = re.compile(r"^/hooks/noop/?$")
log = logging.getLogger("lastmile.request")


def inbound_front(app: ASGIApp) -> ASGIApp:
    """``app`` with ``/hooks/...`` answered before it (everything else passes through)."""

    async def front(scope: dict[str, Any], receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/hooks/"):
            path = scope["path"]
            if settings.INBOUND_NOOP_ENDPOINT and _NOOP.match(path):
                await _serve(scope, receive, send, token=None)
                return
            if match := _HOOK.match(path):
                await _serve(scope, receive, send, token=match["token"])
                return
        await app(scope, receive, send)

    return front


def _meta(scope: dict[str, Any]) -> dict[str, str]:
    """The headers as Django's META names them (so ``HttpHeaders`` and the stored
    headers read exactly as through Django); repeated headers joined with commas."""
    meta: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin1").upper().replace("-", "_")
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = "HTTP_" + name
        value = raw_value.decode("latin1")
        meta[name] = f"{meta[name]},{value}" if name in meta else value
    return meta


def _host_allowed(meta: dict[str, str], scope: dict[str, Any]) -> bool:
    """Django's ``get_host`` check (its CommonMiddleware refuses a bad Host with a 400)."""
    if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in meta:
        host = meta["HTTP_X_FORWARDED_HOST"]
    elif "HTTP_HOST" in meta:
        host = meta["HTTP_HOST"]
    else:
        server = scope.get("server") or ("", None)
        host = str(server[0] or "")
    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _is_secure(meta: dict[str, str], scope: dict[str, Any]) -> bool:
    if scope.get("scheme") == "https":
        return True
    proxy = settings.SECURE_PROXY_SSL_HEADER
    if proxy:
        header, secure = proxy
        return meta.get(header, "").split(",", 1)[0].strip() == secure
    return False


async def _read_body(receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _error(status: int, code: str, message: str) -> Answer:
    return Answer(status, error_body(code, message))


async def _answer(scope: dict[str, Any], receive, meta: dict[str, str], token: str | None) -> Answer:
    if not _host_allowed(meta, scope):
        return _error(400, "bad_request", "The Host header is not one this server answers to.")
    if token is None:
        return Answer(200, {"status": "ok"})  # the bench's no-op baseline
    if scope["method"] != "POST":
        return _error(405, "method_not_allowed", "Webhooks are delivered with POST.")
    if settings.INTEGRATIONS_REQUIRE_HTTPS and not _is_secure(meta, scope):
        # Refused, not redirected: a redirect would count as delivered.
        return _error(403, "https_required", "Deliver webhooks over HTTPS.")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        declared = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "malformed_request", "Content-Length is not a number.")
    body = None if limit is not None and declared > limit else await _read_body(receive, limit or 2**62)
    if body is None:
        return _error(413, "payload_too_large", "The request body is larger than webhooks may be.")
    return await accept(token=token, body=body, headers=HttpHeaders(meta))


async def _serve(scope: dict[str, Any], receive, send, *, token: str | None) -> None:
    started = time.perf_counter()
    meta = _meta(scope)
    rid = incoming_request_id(meta.get("HTTP_X_REQUEST_ID"))
    context = request_id.set(rid)
    try:
        try:
            answer = await _answer(scope, receive, meta, token)
        except ConnectionAbortedError:
            return  # the client went away before sending its body: nothing stored, nobody to answer
        except Exception:
            log.exception("inbound webhook failed")
            answer = _error(500, "server_error", "The server failed; nothing was saved. Retry shortly.")
        body = json.dumps(answer.body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"x-content-type-options", b"nosniff"), (b"x-request-id", rid.encode())]
        headers += [(name.lower().encode(), value.encode()) for name, value in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        elapsed = time.perf_counter() - started
        route = "hook-noop" if token is None else "hook-receive"
        metrics.observe_request(method=scope["method"], route=route, status=answer.status, seconds=elapsed)
        if log.isEnabledFor(logging.INFO):
            log.info("%s %s %s", scope["method"], scope["path"], answer.status,
                     extra={"method": scope["method"], "path": scope["path"], "route": route, "status": answer.status,
                            "duration_ms": round(elapsed * 1000, 1)})
    finally:
        request_id.reset(context)
