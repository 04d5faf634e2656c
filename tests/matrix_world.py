"""What the generated matrices (tests/test_tenant_matrix.py, tests/accounts/test_role_matrix.py)
share: the API routes read from the URL configuration, and one Acme object of every kind
a route can name.

Adding an endpoint that takes an object id means adding its URL name prefix to
``OBJECT_OF`` and, for a new kind of object, one line to ``acme_world``; the matrices
fail until then.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver

# Which Acme object a route's id names, by the route's URL name prefix (DRF basename).
OBJECT_OF = {
    "hub": "hub",
    "vehicle": "vehicle",
    "driver": "driver",
    "order": "order",
    "route": "route",
    "stop": "stop",
    "api-client": "api_client",
    "pod": "pod",
    "pod-exception": "pod_exception",
    "connection": "connection",
    "inbound-message": "inbound_message",
    "mapping": "mapping",
    "webhook-endpoint": "webhook_endpoint",
    "webhook-delivery": "webhook_delivery",
    "plan": "plan",
    "exception": "ops_exception",
}
# Routes whose path parameter is itself the credential (an unguessable token or a signed
# link), with the test that proves another tenant gets nothing through them.
CREDENTIAL_ROUTES = {
    "tracking-pod": "tests/pod/test_media_serving.py (a tracking token shows only its own order)",
    "pod-media-file": "tests/pod/test_media_serving.py::test_carol_gets_404_even_with_a_genuine_acme_link",
    "track": "tests/tracking/test_page.py (a token shows its own order only; a bad one is a plain 404)",
    "track-preferences": "tests/tracking/test_page.py",
    "track-rating": "tests/tracking/test_page.py",
    "track-push": "tests/tracking/test_page.py",
}


def walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def api_routes() -> list[tuple[str, str, Any, dict[str, str], list[str]]]:
    """(regex, url name, view class, {method: action}, path parameter names) for every /api/v1/ route."""
    routes = []
    for regex, pattern in walk(get_resolver().url_patterns):
        if not regex.startswith("api/v1/"):
            continue
        callback = pattern.callback
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        actions = getattr(callback, "actions", None) or {
            m: m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}
        params = re.findall(r"\(\?P<(\w+)>", regex) + re.findall(r"<(?:\w+:)?(\w+)>", regex)
        routes.append((regex, pattern.name or "", view, dict(actions), params))
    return routes


def object_key(name: str) -> str | None:
    for prefix in sorted(OBJECT_OF, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "-"):
            return OBJECT_OF[prefix]
    return None


def url_for(regex: str, value: int | str) -> str:
    path = re.sub(r"\(\?P<\w+>[^)]*\)", str(value), regex)
    path = re.sub(r"<(?:\w+:)?\w+>", str(value), path)
    return "/" + path.replace("^", "").replace("$", "")


def acme_world(acme, hub, van, bob) -> dict[str, Any]:
    """One Acme object of every kind an API route can name."""
    from django.http.request import HttpHeaders

    from apps.accounts.actor import system_actor
    from apps.accounts.services import api_client_create
    from apps.dispatch.inputs import RouteIn
    from apps.dispatch.services.routes import route_create, route_publish
    from apps.events.services import event_record
    from apps.integrations.api import MAGENTO_SPEC
    from apps.integrations.models import InboundMessage, WebhookDelivery
    from apps.integrations.services.connections import connection_create
    from apps.integrations.services.inbound import inbound_receive
    from apps.integrations.services.mappings import mapping_create
    from apps.integrations.services.outbound import endpoint_create
    from apps.planning.models import OpsException, PlanRun
    from apps.pod.models import DispatchException, ProofOfDelivery
    from tests.factories import OrderFactory

    actor = system_actor(acme)
    order = OrderFactory(org=acme)
    route = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
        hub=hub.pk, date="2026-11-23", driver=bob.pk, vehicle=van.pk, orders=[order.pk])))
    api_client, _ = api_client_create(org=acme, name="Acme shop", scopes=["orders:write"])
    stop = route.stops.get()
    pod = ProofOfDelivery.objects.create(org=acme, stop=stop, order=order, driver=bob, action_key=uuid.uuid4())
    connection = connection_create(org=acme, kind="shopify", name="Acme Shop", store="acme.myshopify.com", secret="s")
    inbound_receive(connection=connection, headers=HttpHeaders({"HTTP_X_SHOPIFY_TOPIC": "orders/create"}), body=b"{}")
    mapping = mapping_create(org=acme, name="Magento", spec=MAGENTO_SPEC, actor_label="system")
    endpoint = endpoint_create(org=acme, url="https://acme-partner.example.com/", event_types=["*"])
    with transaction.atomic():
        event_record(org=acme, actor="system", type="hub.updated", subject_type="hub", subject_id=0)
    return {
        "hub": hub, "vehicle": van, "driver": bob, "order": order, "route": route, "stop": stop,
        "api_client": api_client, "pod": pod,
        "pod_exception": DispatchException.objects.create(org=acme, kind="double_completion", stop=stop, order=order,
                                                          pod=pod, message="Completed twice"),
        "connection": connection, "inbound_message": InboundMessage.objects.filter(connection=connection).get(),
        "mapping": mapping, "webhook_endpoint": endpoint,
        "webhook_delivery": WebhookDelivery.objects.filter(endpoint=endpoint).first(),
        "plan": PlanRun.objects.create(org=acme, hub=hub, date=route.date, status="ready", result={"routes": []}),
        "ops_exception": OpsException.objects.create(org=acme, kind="late_risk", route=route),
    }
