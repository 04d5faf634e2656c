"""The tenant isolation matrix, generated from the URL configuration.

Every API route that names an object, with every method it accepts, is called by an
administrator of Globex with the id of an Acme object: the answer is 404 and nothing
changes. Every WebSocket route has its cross-tenant case. A route added without an
entry here fails ``test_every_route_is_in_the_matrix``: a new endpoint cannot escape.

The hand-written cases in ``test_tenant_isolation.py`` read as stories; this one is
the exhaustive sweep.
"""

from __future__ import annotations

import pytest

from apps.accounts.actor import system_actor
from apps.dispatch.models import Driver, Hub, Order, Route, Stop, Vehicle
from apps.events.models import Event
from apps.pod.models import DispatchException
from apps.tracking.services import tracking_token_issue
from tests.conftest import client_for
from tests.factories import OrderFactory, member
from tests.matrix_world import CREDENTIAL_ROUTES, acme_world, api_routes, object_key, url_for

# Routes with no object in their path: per-caller by construction, collections acted on
# in bulk by ids in the body (checked by the state comparison), or lists whose
# emptiness for Globex ``test_every_list_is_empty_for_another_tenant`` checks.
NO_OBJECT = {"me", "location-batch", "order-bulk", "pod-media-upload", "driver-actions", "csv-import",
             "inbound-message-bulk-reprocess", "mapping-try-draft", "webhook-delivery-bulk-replay",
             # Figures, not lists: tests/reports/test_api.py shows Carol gets zeros and empty rows.
             # (report-orders is a list and is swept below.)
             "report-kpis", "report-series", "report-breakdown", "report-options", "report-export",
             # Names Acme's stop in the body: tests/test_tenant_isolation.py (planning requests) proves a 400.
             "stop-pin",
             # The caller's own organization's settings (a singleton, never another's).
             "planning-policy",
             # Twilio's callbacks: signed by Twilio, they name messages by the provider's id.
             "twilio-status", "twilio-inbound",
             # Figures: tests/test_tenant_isolation.py shows Carol's accuracy report is empty.
             "eta-accuracy"}
# Lists that need a filter naming an object: the object is Acme's.
LIST_FILTERS = {"pod-requirements": {"route": "route"}}


def _api_routes():
    return [(regex, name, sorted(actions), params) for regex, name, _, actions, params in api_routes()]


_object_key, _url = object_key, url_for
OBJECT_ROUTES = [(regex, name, method) for regex, name, methods, params in _api_routes()
                 if params and name not in CREDENTIAL_ROUTES for method in methods]
LIST_ROUTES = [(regex, name) for regex, name, methods, params in _api_routes()
               if not params and "get" in methods and name not in NO_OBJECT]


def test_every_route_is_in_the_matrix():
    missing = [name for regex, name, methods, params in _api_routes()
               if params and _object_key(name) is None and name not in CREDENTIAL_ROUTES]
    unexplained = [name for regex, name, methods, params in _api_routes()
                   if not params and "get" not in methods and name not in NO_OBJECT]
    assert not missing, f"add these routes to OBJECT_OF in {__name__}: {missing}"
    assert not unexplained, f"add these routes to NO_OBJECT (or give them a GET list) in {__name__}: {unexplained}"
    assert len(OBJECT_ROUTES) >= 25  # the sweep really sees the API


@pytest.fixture
def acme_objects(acme, acme_hub, acme_van, bob) -> dict[str, object]:
    return acme_world(acme, acme_hub, acme_van, bob)


@pytest.fixture
def as_globex_admin(globex):
    return client_for(member(globex, "gina", "admin"))


def _state() -> tuple:
    return (list(Hub.objects.values()), list(Vehicle.objects.values()), list(Driver.objects.values()),
            list(Order.objects.values()), list(Route.objects.values()), list(Stop.objects.values()),
            list(DispatchException.objects.values()), Event.objects.count())


@pytest.mark.parametrize(("regex", "name", "method"), OBJECT_ROUTES,
                         ids=[f"{m.upper()} {n}" for _, n, m in OBJECT_ROUTES])
def test_another_tenants_admin_gets_404_on_every_object_route(as_globex_admin, acme_objects, regex, name, method):
    target = acme_objects[_object_key(name)]
    before = _state()

    response = getattr(as_globex_admin, method)(_url(regex, target.pk), {}, format="json")

    assert response.status_code == 404, (response.status_code, response.content[:300])
    assert response.json()["code"] == "not_found"
    assert _state() == before


@pytest.mark.parametrize(("regex", "name"), LIST_ROUTES, ids=[n for _, n in LIST_ROUTES])
def test_every_list_is_empty_for_another_tenant(as_globex_admin, acme_objects, regex, name):
    params = {key: acme_objects[obj].pk for key, obj in LIST_FILTERS.get(name, {}).items()}
    response = as_globex_admin.get(_url(regex, 0), params)

    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert body["results"] == [], body


# --- WebSockets -------------------------------------------------------------------

WEBSOCKET_CASES = {
    "ws/console/": "a Globex dispatcher's console receives none of Acme's events",
    "ws/driver/": "a Globex dispatcher is refused the driver socket (4403); Acme's routes never reach Globex",
    "ws/track/<str:token>/": "a token is the only key: an unknown or revoked one closes with 4404",
}


def test_every_websocket_route_has_a_cross_tenant_case():
    from apps.realtime.routing import websocket_urlpatterns

    routes = {str(p.pattern) for p in websocket_urlpatterns}
    assert routes == set(WEBSOCKET_CASES), f"cover these WebSocket routes in {__name__}: {routes ^ set(WEBSOCKET_CASES)}"


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_console_of_another_tenant_receives_nothing_of_acme(acme, globex):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from apps.dispatch.inputs import OrderIn
    from apps.dispatch.services.orders import order_create
    from apps.realtime.consumers import ConsoleConsumer
    from tests.factories import order_payload

    carol = await sync_to_async(member)(globex, "carol", "dispatcher")
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), "/ws/console/")
    communicator.scope["user"] = carol
    connected, _ = await communicator.connect()
    assert connected
    assert (await communicator.receive_json_from())["type"] == "welcome"
    await communicator.send_json_to({"type": "hello", "last_seq": 0})
    await sync_to_async(order_create)(actor=system_actor(acme), data=OrderIn.model_validate(order_payload()))

    received = []
    while not await communicator.receive_nothing(timeout=0.5):
        received.append(await communicator.receive_json_from())
    assert not [m for m in received if m["type"] in ("events", "positions")], received
    for message in received:
        assert "Acme" not in str(message) and "SHOP-1001" not in str(message)
    await communicator.disconnect()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_driver_socket_refuses_another_tenants_dispatcher(globex):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from apps.realtime.consumers import CloseCode, DriverConsumer

    carol = await sync_to_async(member)(globex, "carol", "dispatcher")
    communicator = WebsocketCommunicator(DriverConsumer.as_asgi(), "/ws/driver/")
    communicator.scope["user"] = carol
    connected, _ = await communicator.connect()
    assert connected  # accepted only to carry the close code to the browser
    assert await communicator.receive_output() == {"type": "websocket.close", "code": CloseCode.FORBIDDEN}


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_track_socket_closes_on_a_revoked_token(acme):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator

    from apps.realtime.consumers import CloseCode, TrackConsumer
    from apps.tracking.services import tracking_token_revoke

    token = await sync_to_async(lambda: tracking_token_issue(order=OrderFactory(org=acme)))()
    await sync_to_async(tracking_token_revoke)(token=token)
    communicator = WebsocketCommunicator(TrackConsumer.as_asgi(), f"/ws/track/{token.token}/")
    communicator.scope["url_route"] = {"kwargs": {"token": token.token}}
    connected, _ = await communicator.connect()
    assert connected  # accepted only to carry the close code to the browser
    assert await communicator.receive_output() == {"type": "websocket.close", "code": CloseCode.NOT_FOUND}
