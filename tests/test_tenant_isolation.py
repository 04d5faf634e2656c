"""Carol dispatches for Globex. Whatever she asks for, Acme's data does not exist for her."""

from __future__ import annotations

import pytest
from django.db import transaction

from apps.accounts.actor import system_actor
from apps.accounts.services import api_client_create
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Driver, Hub, Order, Route, Stop, Vehicle
from apps.dispatch.services.routes import route_create, route_publish
from apps.events.models import Event
from apps.events.services import event_record
from apps.planning.models import OpsException, PlanRun, StopPin
from tests.factories import OrderFactory, order_payload


@pytest.fixture
def acme_world(acme, acme_hub, acme_van, bob):
    """A hub, a van, a driver, a route with a stop, a spare order, an API client, and events."""
    actor = system_actor(acme)
    on_route, spare = OrderFactory(org=acme), OrderFactory(org=acme, state="completed", outcome="failed")
    route = route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date="2026-11-23", driver=bob.pk,
                                                   vehicle=acme_van.pk, orders=[on_route.pk]))
    route_publish(actor=actor, route=route)
    client, _ = api_client_create(org=acme, name="Acme shop", scopes=["orders:write"])
    _integrations(acme)
    plan = PlanRun.objects.create(org=acme, hub=acme_hub, date=route.date, status="ready", result={"routes": []})
    replan = PlanRun.objects.create(org=acme, hub=acme_hub, date=route.date, kind="replan", status="ready",
                                    diff={"routes": [], "moved": []})
    exception = OpsException.objects.create(org=acme, kind="late_risk", route=route, replan=replan)
    return {"hub": acme_hub, "vehicle": acme_van, "driver": bob, "order": on_route, "spare": spare,
            "route": route, "stop": route.stops.get(), "client": client, "plan": plan, "replan": replan,
            "exception": exception}


def _snapshot():
    return (
        list(Hub.objects.values()), list(Vehicle.objects.values()), list(Driver.objects.values()),
        list(Order.objects.values()), list(Route.objects.values()), list(Stop.objects.values()),
        Event.objects.count(), list(PlanRun.objects.values()), list(OpsException.objects.values()),
        list(StopPin.objects.values()),
    )


def _integrations(acme):
    """A connection with a stored message, a mapping, and a webhook endpoint with a delivery."""
    from django.http.request import HttpHeaders

    from apps.integrations.api import MAGENTO_SPEC
    from apps.integrations.services.connections import connection_create
    from apps.integrations.services.inbound import inbound_receive
    from apps.integrations.services.mappings import mapping_create
    from apps.integrations.services.outbound import endpoint_create

    shop = connection_create(org=acme, kind="shopify", name="Acme Shop", store="acme.myshopify.com", secret="s")
    inbound_receive(connection=shop, headers=HttpHeaders({"HTTP_X_SHOPIFY_TOPIC": "orders/create"}), body=b"{}")
    mapping_create(org=acme, name="Magento", spec=MAGENTO_SPEC, actor_label="system")
    endpoint_create(org=acme, url="https://acme-partner.example.com/", event_types=["*"])
    with transaction.atomic():
        event_record(org=acme, actor="system", type="hub.updated", subject_type="hub", subject_id=0)


LISTS = ["hubs", "vehicles", "drivers", "orders", "routes", "stops", "api-clients", "pods", "pod-exceptions",
         "integrations/connections",
         "integrations/messages", "integrations/mappings", "webhooks/endpoints", "webhooks/deliveries", "reports/orders",
         "plans", "exceptions"]


@pytest.mark.parametrize("resource", LISTS)
def test_carol_lists_none_of_acmes_objects(as_carol, acme_world, resource):
    response = as_carol.get(f"/api/v1/{resource}/")

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_carol_reads_none_of_acmes_events(as_carol, acme_world):
    body = as_carol.get("/api/v1/events/").json()

    assert body["results"] == []
    assert body["last_sequence"] == 0


def test_carol_finds_no_acme_order_by_its_external_id(as_carol, acme_world):
    response = as_carol.get("/api/v1/orders/", {"external_id": acme_world["order"].external_id})

    assert response.json()["results"] == []


DETAILS = [("hubs", "hub"), ("vehicles", "vehicle"), ("drivers", "driver"), ("orders", "order"),
           ("routes", "route"), ("stops", "stop"), ("api-clients", "client"), ("plans", "plan"),
           ("plans", "replan"), ("exceptions", "exception")]


@pytest.mark.parametrize(("resource", "key"), DETAILS)
def test_carol_gets_404_for_each_acme_object(as_carol, acme_world, resource, key):
    response = as_carol.get(f"/api/v1/{resource}/{acme_world[key].pk}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


WRITES = [
    ("put", "hubs/{hub}/", {"name": "X", "code": "X", "timezone": "UTC", "address_line1": "x", "city": "x",
                            "country": "DE", "lat": 1, "lng": 1}),
    ("put", "vehicles/{vehicle}/", {"name": "X", "capacity_weight_kg": 1, "capacity_volume_l": 1,
                                    "capacity_parcels": 1}),
    ("patch", "drivers/{driver}/", {"name": "Mallory"}),
    ("post", "drivers/{driver}/duty/", {"on_duty": True}),
    ("patch", "orders/{order}/", {"instructions": "hijacked"}),
    ("post", "orders/{order}/cancel/", {}),
    ("post", "orders/{spare}/reschedule/", None),
    ("post", "orders/{spare}/return/", None),
    ("patch", "routes/{route}/", {"name": "hijacked"}),
    ("put", "routes/{route}/stops/", {"orders": []}),
    ("post", "routes/{route}/publish/", None),
    ("post", "routes/{route}/unpublish/", None),
    ("post", "routes/{route}/start/", None),
    ("post", "routes/{route}/complete/", None),
    ("delete", "routes/{route}/", None),
    ("post", "stops/{stop}/arrive/", None),
    ("post", "stops/{stop}/complete/", {}),
    ("post", "stops/{stop}/fail/", {"reason": "refused"}),
    ("post", "plans/{plan}/publish/", None),
    ("post", "plans/{plan}/discard/", None),
    ("post", "plans/{replan}/apply/", None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_carol_cannot_change_any_acme_object(as_carol, acme_world, method, path, body):
    before = _snapshot()
    url = "/api/v1/" + path.format(**{k: v.pk for k, v in acme_world.items()})

    response = getattr(as_carol, method)(url, body, format="json")

    assert response.status_code == 404, response.content
    assert _snapshot() == before


def test_carols_admin_cannot_revoke_acmes_key(globex, acme_world):
    from tests.conftest import client_for
    from tests.factories import member

    as_globex_admin = client_for(member(globex, "gina", "admin"))

    response = as_globex_admin.post(f"/api/v1/api-clients/{acme_world['client'].pk}/revoke/")

    assert response.status_code == 404
    acme_world["client"].refresh_from_db()
    assert acme_world["client"].revoked_at is None


def test_carol_cannot_plan_acmes_orders_onto_her_route(as_carol, globex, acme_world):
    from tests.factories import HubFactory

    globex_hub = HubFactory(org=globex)

    response = as_carol.post("/api/v1/routes/", {"hub": globex_hub.pk, "date": "2026-11-23",
                                                 "orders": [acme_world["spare"].pk]}, format="json")

    assert response.status_code == 400
    assert Route.objects.filter(org=globex).count() == 0


def test_the_same_external_id_in_two_organizations_is_two_orders(as_carol, as_dave, acme_world):
    acme_order = as_dave.post("/api/v1/orders/", order_payload(), format="json").json()

    response = as_carol.post("/api/v1/orders/", order_payload(customer_name="Other"), format="json")

    assert response.status_code == 201
    assert response.json()["id"] != acme_order["id"]


def test_an_api_key_sees_only_its_own_organization(globex, acme_world):
    from rest_framework.test import APIClient

    _, key = api_client_create(org=globex, name="Globex ERP", scopes=["orders:read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    assert client.get("/api/v1/orders/").json()["results"] == []
    assert client.get(f"/api/v1/orders/{acme_world['order'].pk}/").status_code == 404


def test_carol_reads_none_of_acmes_completion_rules(as_carol, acme_world):
    response = as_carol.get("/api/v1/pod/requirements/", {"route": acme_world["route"].pk})

    assert response.json()["results"] == []
@pytest.mark.parametrize(("path", "body"), [
    ("stop-pins/", {"stop": "{stop}", "kind": "driver"}),
    ("exceptions/", {"kind": "vehicle_breakdown", "route": "{route}"}),
    ("exceptions/", {"kind": "urgent_order", "order": "{spare}"}),
    ("plans/", {"hub": "{hub}", "date": "2026-11-23"}),
])
def test_carol_cannot_name_acmes_objects_in_planning_requests(as_carol, acme_world, path, body):
    before = _snapshot()
    filled = {k: (acme_world[v[1:-1]].pk if isinstance(v, str) and v.startswith("{") else v) for k, v in body.items()}

    response = as_carol.post(f"/api/v1/{path}", filled, format="json")

    assert response.status_code == 400, response.content
    assert _snapshot() == before


def test_carol_reads_none_of_acmes_customer_messages_or_eta_accuracy(as_carol, acme_world):
    from apps.notifications.services import message_prepare

    message_prepare(order_id=acme_world["order"].pk, trigger="scheduled")

    assert as_carol.get(f"/api/v1/orders/{acme_world['order'].pk}/messages/").status_code == 404
    accuracy = as_carol.get("/api/v1/eta-accuracy/", {"from": "2026-11-23"}).json()
    assert accuracy["routes"] == [] and accuracy["organization"]["first"]["count"] == 0
