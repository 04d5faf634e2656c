"""One exception handler that turns every API error into ``{code, message, fields?}``.

Clients switch on ``code``; ``message`` is for people. Nothing here leaks a traceback.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from .exceptions import DomainError

logger = logging.getLogger(__name__)

_DRF_CODES: list[tuple[type[Exception], int, str]] = [
    (drf.ParseError, 400, "malformed_request"),
    (drf.NotAuthenticated, 401, "not_authenticated"),
    (drf.AuthenticationFailed, 401, "authentication_failed"),
    (drf.PermissionDenied, 403, "permission_denied"),
    (drf.NotFound, 404, "not_found"),
    (drf.MethodNotAllowed, 405, "method_not_allowed"),
    (drf.NotAcceptable, 406, "not_acceptable"),
    (drf.UnsupportedMediaType, 415, "unsupported_media_type"),
    (drf.Throttled, 429, "rate_limited"),
]


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **extra}


def flatten_drf_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error detail into ``{"items.0.sku": ["..."]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.update(flatten_drf_errors(value, path))
    elif isinstance(detail, list) and detail and not all(isinstance(d, (str, drf.ErrorDetail)) for d in detail):
        for index, value in enumerate(detail):
            out.update(flatten_drf_errors(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        messages = detail if isinstance(detail, list) else [detail]
        out[prefix or "non_field_errors"] = [str(m) for m in messages]
    return out


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, DomainError):
        body = error_body(exc.code, exc.message, **exc.details)
        status = exc.status_code
    elif isinstance(exc, drf.ValidationError):
        body = error_body("validation_error", "The request has invalid fields.", fields=flatten_drf_errors(exc.detail))
        status = 400
    elif isinstance(exc, RequestDataTooBig):
        body = error_body("payload_too_large", "The request body is larger than this endpoint accepts.")
        status = 413
    elif isinstance(exc, Http404):
        body = error_body("not_found", "Not found.")
        status = 404
    elif isinstance(exc, (OperationalError, InterfaceError)):
        return _database_unavailable_response()
    elif isinstance(exc, DjangoPermissionDenied):
        body = error_body("permission_denied", "You do not have permission to perform this action.")
        status = 403
    else:
        for cls, drf_status, code in _DRF_CODES:
            if isinstance(exc, cls):
                status = drf_status
                body = error_body(code, str(exc.detail))  # type: ignore[attr-defined]
                if isinstance(exc, drf.Throttled) and exc.wait:
                    headers["Retry-After"] = str(int(exc.wait))
                if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
                    headers["WWW-Authenticate"] = 'Bearer realm="api"'
                break
        else:
            return None  # unexpected: let Django log it; handler500 renders JSON
    set_rollback()
    return Response(body, status=status, headers=headers)


# Seconds a client should wait before retrying while the database is unreachable: about
# how long a PostgreSQL restart or a managed failover takes.
DATABASE_RETRY_AFTER_S = 5


def _database_unavailable_body() -> dict[str, Any]:
    return error_body("service_unavailable", "The database is unreachable; nothing was saved. Retry shortly.")


def _database_unavailable_response() -> Response:
    logger.warning("database unavailable", exc_info=True)
    return Response(_database_unavailable_body(), status=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)})


def json_server_error(request, *args, **kwargs) -> JsonResponse:
    """handler500: API clients get the error shape, never HTML; a database outage is a 503.

    Django calls this inside its ``except`` block, so the exception is still current; an
    outage raised by a middleware (the session store, say) lands here too.
    """
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        response = JsonResponse(_database_unavailable_body(), status=503)
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Something went wrong on our side; it has been logged."), status=500)
    from django.views.defaults import server_error

    return server_error(request, *args, **kwargs)


def json_not_found(request, exception=None) -> JsonResponse:
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)
