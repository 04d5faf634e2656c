"""Request ids and structured logs.

Every request gets an id (the load balancer's ``X-Request-ID`` when it sends a sane
one, else a fresh one), echoed in the response and attached to every log line written
while the request runs, so one id finds a request across the load balancer, Daphne and
the database logs.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse

request_id: ContextVar[str] = ContextVar("request_id", default="-")

# Accept an upstream id only if it is short and harmless in a log line or a header.
_UPSTREAM_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def incoming_request_id(header: str | None) -> str:
    if header and _UPSTREAM_ID.match(header):
        return header
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


# LogRecord attributes that are plumbing, not content; everything else a caller passes
# with ``extra=`` is kept as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log shippers (Loki, CloudWatch, ELK) index without parsing rules."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RequestContextMiddleware:
    """Outermost middleware: the request id, the access log line and the latency metric."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.log = logging.getLogger("lastmile.request")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from apps.common import metrics

        rid = incoming_request_id(request.META.get("HTTP_X_REQUEST_ID"))
        token = request_id.set(rid)
        request.request_id = rid  # type: ignore[attr-defined]
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            elapsed = time.perf_counter() - started
            route = _route_label(request)
            response["X-Request-ID"] = rid
            metrics.observe_request(method=request.method or "", route=route, status=response.status_code, seconds=elapsed)
            if route != "metrics":
                self.log.info(
                    "%s %s %s", request.method, request.path, response.status_code,
                    extra={"method": request.method, "path": request.path, "route": route,
                           "status": response.status_code, "duration_ms": round(elapsed * 1000, 1)},
                )
            return response
        finally:
            request_id.reset(token)


def _route_label(request: HttpRequest) -> str:
    # The URL pattern, not the path: one time series per endpoint, not per order id.
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or match.route or "unnamed"
