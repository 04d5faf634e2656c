"""The role x endpoint matrix, generated from the URL configuration (deny by default).

For every /api/v1/ route and every method it accepts, the scope it needs is read from
the view (``scope_resource`` and ``scope_map``, as ``HasScope`` reads them). Then each
principal calls it: anonymous callers get 401; a principal without the scope gets 403
and changes nothing; a principal with it gets past the permission check (any answer
but 401/403). A view that names no scope refuses everyone, and a route whose view names
none fails ``test_every_route_declares_its_scope`` unless it is listed in SELF_SERVICE.

``test_roles.py`` is the readable table of the main endpoints; this is the sweep.
"""

from __future__ import annotations

import pytest
from rest_framework import permissions
from rest_framework.test import APIClient

from apps.accounts.roles import ROLE_SCOPES
from apps.accounts.services import api_client_create
from apps.dispatch.models import Driver, Hub, Order, Route, Stop, Vehicle
from apps.events.models import Event
from tests.conftest import client_for
from tests.factories import member
from tests.matrix_world import CREDENTIAL_ROUTES, acme_world, api_routes, object_key, url_for

# Routes any authenticated principal may call, about itself.
SELF_SERVICE = {"me"}
# Machine callbacks authenticated by the provider's signature, not a role (tests/notifications).
PROVIDER_CALLBACKS = {"twilio-status", "twilio-inbound"}
UNSCOPED = SELF_SERVICE | PROVIDER_CALLBACKS | set(CREDENTIAL_ROUTES)
PARTNER_SCOPES = ["orders:read"]
# Routes narrower than their scope: who else holds the scope is refused by the view.
ONLY = {"location-batch": {"driver"},  # a position is only ever a driver's own
        "driver-actions": {"driver"}}  # so is a driver's arrive/complete/fail


def _routes():
    for regex, name, view, actions, _ in api_routes():
        for method, action in sorted(actions.items()):
            yield regex, name, view, method, action


def needed_scope(view, method: str, action: str) -> str | None:
    resource = getattr(view, "scope_resource", None)
    if not resource:
        return None
    scope_map = getattr(view, "scope_map", {}) or {}
    if f"{action}:{method}" in scope_map:
        return scope_map[f"{action}:{method}"]
    if action in scope_map:
        return scope_map[action]
    return f"{resource}:{'read' if method.upper() in permissions.SAFE_METHODS else 'write'}"


ROUTES = list(_routes())


def test_every_route_declares_its_scope():
    undeclared = [f"{method.upper()} {name}" for regex, name, view, method, action in ROUTES
                  if needed_scope(view, method, action) is None and name not in UNSCOPED]
    assert not undeclared, f"these routes name no scope (HasScope refuses everyone): {undeclared}"


def _url(regex: str, objects: dict, name: str) -> str:
    key = object_key(name)
    return url_for(regex, objects[key].pk if key else 0)


@pytest.fixture
def world(acme, acme_hub, acme_van, bob):
    objects = acme_world(acme, acme_hub, acme_van, bob)
    _, key = api_client_create(org=acme, name="Partner", scopes=PARTNER_SCOPES)
    partner = APIClient()
    partner.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    principals = {
        "anonymous": (APIClient(), None),
        "admin": (client_for(member(acme, "ada", "admin")), ROLE_SCOPES["admin"]),
        "dispatcher": (client_for(member(acme, "dan", "dispatcher")), ROLE_SCOPES["dispatcher"]),
        "driver": (client_for(bob.user), ROLE_SCOPES["driver"]),
        "partner": (partner, frozenset(PARTNER_SCOPES)),
    }
    return principals, objects


def _state():
    return (list(Hub.objects.values()), list(Vehicle.objects.values()), list(Driver.objects.values()),
            list(Order.objects.values()), list(Route.objects.values()), list(Stop.objects.values()),
            Event.objects.count())


CASES = [pytest.param(regex, name, view, method, action, id=f"{method.upper()} {name}")
         for regex, name, view, method, action in ROUTES if name not in UNSCOPED]


@pytest.mark.parametrize(("regex", "name", "view", "method", "action"), CASES)
def test_each_principal_gets_exactly_what_its_scopes_allow(world, regex, name, view, method, action):
    principals, objects = world
    scope = needed_scope(view, method, action)
    url = _url(regex, objects, name)
    for who, (client, scopes) in principals.items():
        before = _state()
        response = getattr(client, method)(url, {}, format="json")
        if scopes is None:
            assert response.status_code == 401, (who, response.status_code)
        elif scope not in scopes or (name in ONLY and who not in ONLY[name]):
            assert response.status_code == 403, (who, scope, response.status_code, response.content[:200])
            assert response.json()["code"] == "permission_denied"
            assert _state() == before, who
        else:
            assert response.status_code not in (401, 403), (who, scope, response.status_code, response.content[:200])
