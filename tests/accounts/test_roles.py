"""What each role may reach (apps/accounts/roles.py ROLE_SCOPES, enforced by permissions.HasScope).

One row per endpoint, one column per role: the status the persona gets. 2xx means the
role may use the endpoint; 403 means the scope check refuses it before anything runs.
"""

from __future__ import annotations

import pytest

from apps.accounts.models import ApiClient, Role, Scope
from apps.accounts.roles import API_CLIENT_SCOPES, ROLE_SCOPES
from apps.accounts.services import api_client_create
from apps.events.models import Event
from tests.factories import order_payload

PERSONAS = {"admin": "as_alice", "dispatcher": "as_dave", "driver": "as_bob"}


def hub_body(ctx):
    return {"name": "New depot", "code": "NEW1", "timezone": "Europe/Berlin", "address_line1": "Str. 1",
            "city": "Berlin", "country": "DE", "lat": 52.5, "lng": 13.4}


def vehicle_body(ctx):
    return {"name": "Bike", "capacity_weight_kg": 50, "capacity_volume_l": 100, "capacity_parcels": 10}


def driver_body(ctx):
    return {"username": "newdriver", "password": "long-enough-pw", "name": "New Driver",
            "shift_start": "08:00", "shift_end": "16:00"}


BODIES = {
    "hub": hub_body,
    "hub_put": lambda ctx: {**hub_body(ctx), "code": ctx["hub"].code},
    "vehicle": vehicle_body,
    "vehicle_put": lambda ctx: {**vehicle_body(ctx), "plate": ctx["van"].plate},
    "driver": driver_body,
    "rename": lambda ctx: {"name": "Bob B. Baker"},
    "duty": lambda ctx: {"on_duty": True},
    "order": lambda ctx: order_payload(),
    "route": lambda ctx: {"hub": ctx["hub"].id, "date": "2026-11-23"},
    "api_client": lambda ctx: {"name": "Shop", "scopes": ["orders:read"]},
}

# method  path                          body          admin dispatcher driver
MATRIX = [
    ("GET",   "/me/",                       None,         200, 200, 200),
    ("GET",   "/hubs/",                     None,         200, 200, 403),
    ("GET",   "/hubs/{hub}/",               None,         200, 200, 403),
    ("POST",  "/hubs/",                     "hub",        201, 201, 403),
    ("PUT",   "/hubs/{hub}/",               "hub_put",    200, 200, 403),
    ("GET",   "/vehicles/",                 None,         200, 200, 403),
    ("GET",   "/vehicles/{van}/",           None,         200, 200, 403),
    ("POST",  "/vehicles/",                 "vehicle",    201, 201, 403),
    ("PUT",   "/vehicles/{van}/",           "vehicle_put", 200, 200, 403),
    ("GET",   "/drivers/",                  None,         200, 200, 403),
    ("GET",   "/drivers/{bob}/",            None,         200, 200, 403),
    ("POST",  "/drivers/",                  "driver",     201, 201, 403),
    ("PATCH", "/drivers/{bob}/",            "rename",     200, 200, 403),
    ("POST",  "/drivers/{bob}/duty/",       "duty",       200, 200, 200),
    ("GET",   "/orders/",                   None,         200, 200, 403),
    ("POST",  "/orders/",                   "order",      201, 201, 403),
    ("GET",   "/routes/",                   None,         200, 200, 200),
    ("POST",  "/routes/",                   "route",      201, 201, 403),
    ("GET",   "/stops/",                    None,         200, 200, 200),
    ("GET",   "/events/",                   None,         200, 200, 403),
    ("GET",   "/api-clients/",              None,         200, 200, 403),
    ("POST",  "/api-clients/",              "api_client", 201, 403, 403),
    ("POST",  "/api-clients/{key}/revoke/", None,         200, 403, 403),
]

CASES = [
    pytest.param(role, method, path, body, expected, id=f"{role} {method} {path} -> {expected}")
    for method, path, body, *statuses in MATRIX
    for role, expected in zip(PERSONAS, statuses, strict=True)
]


@pytest.fixture
def ctx(acme, bob, acme_hub, acme_van):
    key, _ = api_client_create(org=acme, name="Acme shop", scopes=["orders:read"])
    return {"hub": acme_hub, "van": acme_van, "bob": bob, "key": key}


def call(client, ctx, method: str, path: str, body: str | None):
    url = "/api/v1" + path.format(**{name: obj.id for name, obj in ctx.items()})
    if body is None:
        return client.generic(method, url)
    return getattr(client, method.lower())(url, BODIES[body](ctx), format="json")


@pytest.mark.parametrize(("role", "method", "path", "body", "expected"), CASES)
def test_each_role_reaches_exactly_its_endpoints(request, ctx, role, method, path, body, expected):
    client = request.getfixturevalue(PERSONAS[role])

    response = call(client, ctx, method, path, body)

    assert response.status_code == expected, response.content
    if expected == 403:
        assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    [(role, method, path, body) for method, path, body, *statuses in MATRIX if method != "GET"
     for role, status in zip(PERSONAS, statuses, strict=True) if status == 403],
)
def test_a_refused_write_changes_nothing(request, ctx, role, method, path, body):
    client = request.getfixturevalue(PERSONAS[role])
    before = Event.objects.count(), ApiClient.objects.count()

    call(client, ctx, method, path, body)

    # Services record an event with every change; API keys are the one write that does not.
    assert (Event.objects.count(), ApiClient.objects.count()) == before
    ctx["key"].refresh_from_db()
    assert ctx["key"].revoked_at is None


def test_the_matrix_names_every_role():
    assert set(PERSONAS) == set(Role.values) == set(ROLE_SCOPES)


def test_admins_hold_every_scope_and_dispatchers_all_but_managing_accounts_and_secrets():
    assert ROLE_SCOPES[Role.ADMIN] == set(Scope.values)
    assert set(Scope.values) - ROLE_SCOPES[Role.DISPATCHER] == {
        Scope.ACCOUNTS_WRITE, Scope.INTEGRATIONS_MANAGE, Scope.WEBHOOKS_WRITE}


def test_drivers_hold_only_route_and_stop_scopes():
    assert ROLE_SCOPES[Role.DRIVER] == {Scope.ROUTES_READ, Scope.STOPS_READ, Scope.STOPS_WRITE}


def test_api_clients_can_never_be_granted_account_scopes():
    assert not API_CLIENT_SCOPES & {Scope.ACCOUNTS_READ, Scope.ACCOUNTS_WRITE}
    assert API_CLIENT_SCOPES | {Scope.ACCOUNTS_READ, Scope.ACCOUNTS_WRITE} == set(Scope.values)
