"""The inbound webhook endpoint: verify, store, acknowledge. Nothing else on the request thread.

Plain Django views rather than DRF: the signature must be checked over the exact
bytes received, before any parser touches them, and the path must stay cheap.
Every answer is JSON with the API's error shape. The URL matches with and without a
trailing slash, so nothing ever redirects: WooCommerce counts a 301/302 as a
successful delivery and would never send the order again.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.common.errors import error_body

from .adapters import adapter_for, connection_secrets
from .models import Connection, ConnectionKind
from .services.inbound import inbound_receive
from .woocommerce.verify import is_ping


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


@csrf_exempt
def receive(request: HttpRequest, token: str) -> JsonResponse:
    if request.method != "POST":
        return _error(405, "method_not_allowed", "Webhooks are delivered with POST.")
    if settings.INTEGRATIONS_REQUIRE_HTTPS and not request.is_secure():
        # Refused, not redirected: a redirect would count as delivered.
        return _error(403, "https_required", "Deliver webhooks over HTTPS.")
    connection = Connection.objects.filter(token=token, active=True).select_related("mapping").first()
    if connection is None:
        return _error(404, "not_found", "No active connection has this URL.")
    try:
        body = request.body
    except RequestDataTooBig:
        return _error(413, "payload_too_large", "The request body is larger than webhooks may be.")
    if connection.kind == ConnectionKind.WOOCOMMERCE and is_ping(body, request.headers):
        return JsonResponse({"status": "ok", "message": "Webhook activation ping received."})
    adapter = adapter_for(connection)
    if not adapter.verify(secrets=list(connection_secrets(connection)), body=body, headers=request.headers):
        return _error(401, "invalid_signature", "The request signature is missing or does not match this connection's secret.")
    received = inbound_receive(connection=connection, headers=request.headers, body=body)
    return JsonResponse({"status": "duplicate" if received.duplicate else "accepted", "id": received.message.pk})


@csrf_exempt
def noop(request: HttpRequest) -> JsonResponse:
    """Unauthenticated and does nothing: the baseline bench/inbound.py measures beside ``receive``."""
    return JsonResponse({"status": "ok"})
