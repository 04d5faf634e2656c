"""Property-based fuzzing of the whole REST API against its OpenAPI schema.

The standard under test: bad input gets a clear error, never a 500. For every
operation in ``/api/schema/`` schemathesis generates valid and invalid requests
(wrong types, missing and unknown fields, odd query strings, huge and negative ids,
unsupported methods) and every response must

* not be a server error (schemathesis' ``not_a_server_error``), and
* if it is a 4xx, be a JSON object with string ``code`` and ``message`` (the error
  contract in docs/api.md).

Requests authenticate with an API key holding every grantable scope, for an
organization with hubs, vehicles, drivers, orders and routes in several states.
Generated ids in paths and bodies are mostly mapped onto those objects (and onto one
of another organization's, which must look missing), so requests get past the 404
and reach the services and the database.

Each example runs in a savepoint that is rolled back afterwards: every example sees
the same data, and hypothesis can replay and shrink a failure deterministically.

Known bugs (``KNOWN_BUGS``) are kept out of the fuzz run by the exact input that
triggers them, and each has an explicit ``xfail(strict=True)`` reproduction below.
When a fix makes a reproduction pass, strict xfail fails the suite: delete the
reproduction's ``xfail`` and the bug's entry in ``KNOWN_BUGS`` together. Fixed
findings stay below as plain regression tests.

Uses the eager ``from_wsgi`` loader; the lazy ``from_fixture`` breaks on pytest 9.
Deeper local run: ``LASTMILE_FUZZ_EXAMPLES=300 LASTMILE_FUZZ_RANDOM=1 pytest tests/test_api_fuzz.py``
(``--hypothesis-seed=N`` replays a random run).
"""

from __future__ import annotations

import copy
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import Client
from hypothesis import HealthCheck, reject
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

from apps.accounts.actor import system_actor
from apps.accounts.models import ApiClient
from apps.accounts.roles import API_CLIENT_SCOPES
from apps.accounts.services import api_client_create
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Stop
from apps.dispatch.services.orders import order_cancel
from apps.dispatch.services.routes import route_create, route_publish
from apps.dispatch.services.stops import stop_arrive, stop_complete, stop_fail
from tests.factories import DriverFactory, HubFactory, OrderFactory, OrganizationFactory, VehicleFactory

MAX_EXAMPLES = int(os.environ.get("LASTMILE_FUZZ_EXAMPLES", "30"))
DERANDOMIZE = os.environ.get("LASTMILE_FUZZ_RANDOM", "") == ""
# Optional: append one JSON line per request (method, path, status, phase, mode, body start) to this file.
FUZZ_LOG = os.environ.get("LASTMILE_FUZZ_LOG", "")

# --- the schema -----------------------------------------------------------------

_TIME = {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}
_NULLABLE_TIME = {"anyOf": [_TIME, {"type": "null"}]}

# The published schema describes some fields more loosely than the API accepts, so
# "valid" generated bodies for those operations were always 400s and never reached a
# service. These refinements make positive examples valid; negative examples still
# send everything else. Each is a gap in the published schema worth closing at the source.
_REFINEMENTS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    # any string is documented; only IANA zone names are accepted
    (("HubInRequest", "timezone"), {"type": "string", "enum": ["Europe/Berlin", "UTC", "America/New_York", "Asia/Kolkata"]}),
    # documented as strings (the response form); a request must send JSON numbers
    (("VehicleInRequest", "capacity_weight_kg"), {"type": "number", "minimum": 0, "maximum": 100000, "multipleOf": 0.25}),
    (("VehicleInRequest", "capacity_volume_l"), {"type": "number", "minimum": 0, "maximum": 100000, "multipleOf": 0.25}),
    (("ItemIn", "weight_kg"), {"type": "number", "minimum": 0, "maximum": 100000, "multipleOf": 0.125}),
    (("ItemIn", "volume_l"), {"type": "number", "minimum": 0, "maximum": 100000, "multipleOf": 0.125}),
    # "format: time" is RFC 3339 full-time, which carries an offset; the API wants a local HH:MM
    (("DriverInRequest", "shift_start"), _TIME),
    (("DriverInRequest", "shift_end"), _TIME),
    (("PatchedDriverPatchRequest", "shift_start"), _NULLABLE_TIME),
    (("PatchedDriverPatchRequest", "shift_end"), _NULLABLE_TIME),
    # the pattern admits 2026-13-45; the API wants a real date
    (("RouteInRequest", "date"), {"type": "string", "format": "date"}),
]


def _refined(raw: dict[str, Any]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    components = raw["components"]["schemas"]
    # A refinement whose field has since been renamed is skipped: generation gets shallower, not broken.
    for (component, field), replacement in _REFINEMENTS:
        properties = components.get(component, {}).get("properties", {})
        if field in properties:
            properties[field] = replacement
    for day in components.get("OpeningHours", {}).get("properties", {}).values():
        if "prefixItems" in day.get("items", {}):
            day["items"]["prefixItems"] = [_TIME, _TIME]
    return raw


def _load_schema():
    app = get_wsgi_application()
    published = schemathesis.openapi.from_wsgi("/api/schema/?format=json", app)
    schema = schemathesis.openapi.from_dict(_refined(published.raw_schema))
    schema.app = app
    schema.location = published.location
    return schema


schema = _load_schema()


# --- checks ---------------------------------------------------------------------

def error_has_code_and_message(ctx, response, case):
    """A 4xx is JSON with string ``code`` and ``message`` (docs/api.md, "Errors")."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"{response.status_code} is not JSON: {response.content[:200]!r}") from None
    assert isinstance(body, dict), f"{response.status_code} body is not a JSON object: {body!r}"
    missing = [key for key in ("code", "message") if not isinstance(body.get(key), str)]
    assert not missing, f"{response.status_code} body lacks string {missing}: {body!r}"
    return True


# --- known bugs -----------------------------------------------------------------

def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value, dictionary keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


@dataclass(frozen=True)
class KnownBug:
    name: str
    applies: bool  # on this database backend
    matches: Callable[[Any], bool]  # the generated case triggers it


KNOWN_BUGS: list[KnownBug] = []


def _known_bug(case) -> str | None:
    return next((bug.name for bug in KNOWN_BUGS if bug.applies and bug.matches(case)), None)


# --- data -----------------------------------------------------------------------

def _org_with_data(slug: str) -> dict[str, Any]:
    """An organization with a little of everything, in several lifecycle states."""
    org = OrganizationFactory(name=slug.title(), slug=slug)
    actor = system_actor(org)
    hub = HubFactory(org=org)
    vans = [VehicleFactory(org=org, home_hub=hub) for _ in range(3)]
    drivers = [DriverFactory(org=org, home_hub=hub, current_vehicle=van) for van in vans]
    drivers.append(DriverFactory(org=org, home_hub=hub))  # no vehicle
    orders = [OrderFactory(org=org, lng=13.39 + 0.01 * i) for i in range(9)]

    def route(n: int, order_ids: list[int]):
        return route_create(actor=actor, data=RouteIn(hub=hub.pk, date="2026-11-23", driver=drivers[n].pk,
                                                      vehicle=vans[n].pk, orders=order_ids))

    draft = route(0, [o.pk for o in orders[0:2]])
    working = route_publish(actor=actor, route=route(1, [o.pk for o in orders[2:6]]))
    completed, failed, arrived, pending = Stop.objects.filter(route=working).order_by("sequence")
    stop_complete(actor=actor, stop=completed)  # the route is now in progress
    stop_fail(actor=actor, stop=failed, reason="recipient_absent")  # its order can be rescheduled or returned
    stop_arrive(actor=actor, stop=arrived)
    published = route_publish(actor=actor, route=route(2, [orders[6].pk]))  # can start or unpublish
    order_cancel(actor=actor, order=orders[8])
    return {
        "org": org,
        "open_order": orders[7],  # created, on no route: editable
        "draft_route": draft,
        "pending_stop": pending,
        "ids": {
            "hubs": [hub.pk],
            "vehicles": [v.pk for v in vans],
            "drivers": [d.pk for d in drivers],
            "orders": [o.pk for o in orders],
            "routes": [draft.pk, working.pk, published.pk],
            "stops": list(Stop.objects.filter(org=org).order_by("pk").values_list("pk", flat=True)),
            "api-clients": [],
        },
    }


@pytest.fixture
def api_world(db, settings):
    settings.ALLOWED_HOSTS = ["*"]  # schemathesis sends Host: localhost
    cache.clear()  # the per-key rate limit counts in the cache, which outlives the test's transaction
    ours = _org_with_data("acme")
    theirs = _org_with_data("globex")
    _, key = api_client_create(org=ours["org"], name="fuzzer", scopes=sorted(API_CLIENT_SCOPES))
    ours["ids"]["api-clients"] = list(ApiClient.objects.filter(org=ours["org"]).values_list("pk", flat=True))
    # Ours, then one of the other organization's (a 404 for us).
    ids = {name: pks + theirs["ids"][name][:1] for name, pks in ours["ids"].items()}
    # Like Django's test client: a WSGI request must not close the test's connection mid-transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield {**ours, "key": key, "ids": ids}
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# --- pointing generated ids at real objects ------------------------------------------

_RESOURCE = re.compile(r"^/api/v1/([a-z-]+)/\{id\}")
_BODY_IDS = {"hub": "hubs", "home_hub": "hubs", "driver": "drivers", "vehicle": "vehicles",
             "current_vehicle": "vehicles"}


def _real_id(value: Any, known: list[int], salt: str) -> Any:
    """Ids 1..10**6 name real objects, 0 one chosen by ``salt``; anything else stays as generated
    (negative, larger and non-integer ids exercise not-found and overflow). Path ids are
    digit strings in the schema, body ids integers."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return str(_real_id(int(value), known, salt))
    if not known or not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 10**6:
        return value
    index = zlib.crc32(salt.encode()) if value == 0 else value - 1
    return known[index % len(known)]


def _point_at_real_objects(case, ids: dict[str, list[int]]) -> None:
    # The coverage phase sends every body variant with id 0; a hash of the rest of the
    # case spreads those variants over objects in different states.
    salt = repr((case.body, case.query))
    match = _RESOURCE.match(case.operation.path)
    if match and case.path_parameters and "id" in case.path_parameters:
        case.path_parameters = {**case.path_parameters,
                                "id": _real_id(case.path_parameters["id"], ids.get(match.group(1), []), salt)}
    if isinstance(case.body, dict) and case.operation.path != "/api/v1/orders/bulk/":
        body = dict(case.body)
        for field, resource in _BODY_IDS.items():
            if field in body:
                body[field] = _real_id(body[field], ids[resource], salt)
        if isinstance(body.get("orders"), list):
            body["orders"] = [_real_id(o, ids["orders"], f"{salt}{i}") for i, o in enumerate(body["orders"])]
        case.body = body


def _log(case, response) -> None:
    meta = case.meta
    with open(FUZZ_LOG, "a") as log:
        log.write(json.dumps([case.method.upper(), case.operation.path, case.formatted_path, response.status_code,
                              meta.phase.name.value if meta else None,
                              meta.generation.mode.value if meta else None,
                              response.content[:300].decode(errors="replace")]) + "\n")


# --- the fuzz test -----------------------------------------------------------------

@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_api_never_answers_bad_input_with_a_500(case, api_world):
    _point_at_real_objects(case, api_world["ids"])
    if _known_bug(case):
        reject()  # reproduced explicitly in FINDINGS
    with transaction.atomic():
        try:
            response = case.call_and_validate(
                headers={"Authorization": f"Bearer {api_world['key']}"},
                checks=[not_a_server_error, error_has_code_and_message],
            )
            if FUZZ_LOG:
                _log(case, response)
        finally:
            transaction.set_rollback(True)


# --- fuzz findings, reproduced ------------------------------------------------------
#
# Each request below once answered 500; all but the last group are fixed (d45d28c) and
# stay here as regression tests. tests/common/test_hostile_input.py covers the same
# classes with behavioural asserts; these check the fuzz property on more endpoints.

_ORDER = {"external_id": "FUZZ-1", "customer_name": "Erika", "address_line1": "Torstraße 1", "city": "Berlin",
          "country": "DE"}
_HUGE = 2**70  # beyond a signed 64-bit integer


FINDINGS = [
    # ids beyond 64 bits in filters and id lists (OverflowError on SQLite)
    pytest.param("get", f"/api/v1/routes/?driver={_HUGE}", None, id="huge-id-routes-driver-filter"),
    pytest.param("get", f"/api/v1/orders/?hub={_HUGE}", None, id="huge-id-orders-hub-filter"),
    pytest.param("get", f"/api/v1/orders/?route={_HUGE}", None, id="huge-id-orders-route-filter"),
    pytest.param("get", f"/api/v1/stops/?route={_HUGE}", None, id="huge-id-stops-route-filter"),
    pytest.param("get", f"/api/v1/stops/?order={_HUGE}", None, id="huge-id-stops-order-filter"),
    pytest.param("post", "/api/v1/orders/", {**_ORDER, "hub": _HUGE}, id="huge-id-order-create-hub"),
    pytest.param("post", "/api/v1/orders/bulk/", {"orders": [{**_ORDER, "hub": _HUGE}]}, id="huge-id-order-bulk-hub"),
    pytest.param("patch", "/api/v1/orders/{open_order}/", {"hub": _HUGE}, id="huge-id-order-update-hub"),
    pytest.param("post", "/api/v1/routes/", {"hub": "{hub}", "date": "2026-11-30", "orders": [_HUGE]},
                 id="huge-id-route-create-orders"),
    pytest.param("put", "/api/v1/routes/{draft_route}/stops/", {"orders": [_HUGE]}, id="huge-id-route-set-stops"),
    # an offset that moves a date-time out of years 1..9999 (OverflowError)
    pytest.param("post", "/api/v1/orders/", {**_ORDER, "window_start": "0001-01-01T00:00:00+01:00"},
                 id="calendar-order-create-window-start"),
    pytest.param("post", "/api/v1/orders/", {**_ORDER, "window_end": "9999-12-31T23:00:00-01:00"},
                 id="calendar-order-create-window-end"),
    pytest.param("post", "/api/v1/orders/bulk/", {"orders": [{**_ORDER, "window_start": "0001-01-01T00:00:00+01:00"}]},
                 id="calendar-order-bulk-window-start"),
    pytest.param("patch", "/api/v1/orders/{open_order}/", {"window_start": "0001-01-01T00:00:00+01:00"},
                 id="calendar-order-update-window-start"),
    pytest.param("post", "/api/v1/routes/", {"hub": "{hub}", "date": "2026-11-30",
                                             "planned_start": "0001-01-01T00:00:00+01:00"},
                 id="calendar-route-create-planned-start"),
    pytest.param("patch", "/api/v1/routes/{draft_route}/", {"planned_start": "0001-01-01T00:00:00+01:00"},
                 id="calendar-route-update-planned-start"),
    pytest.param("get", "/api/v1/orders/?window_from=0001-01-01T00:00:00%2B01:00", None,
                 id="calendar-orders-window-from-filter"),
    pytest.param("get", "/api/v1/orders/?created_after=9999-12-31T23:00:00-01:00", None,
                 id="calendar-orders-created-after-filter"),
    # a UTC offset of 16 hours or more (DataError on PostgreSQL, whose timestamptz input stops at 15:59)
    pytest.param("get", "/api/v1/orders/?window_from=2026-11-23T09:00:00-16:00", None, id="offset16-orders-filter"),
    pytest.param("post", "/api/v1/orders/", {**_ORDER, "window_start": "2026-11-23T09:00:00+16:00"},
                 id="offset16-order-create-window-start"),
    pytest.param("patch", "/api/v1/routes/{draft_route}/", {"planned_start": "2026-11-23T09:00:00+16:00"},
                 id="offset16-route-update-planned-start"),
    # NUL characters (DataError on PostgreSQL)
    pytest.param("get", "/api/v1/orders/?q=%00", None, id="nul-orders-q-filter"),
    pytest.param("post", "/api/v1/orders/", {**_ORDER, "customer_name": "Erika\x00"}, id="nul-order-create-text"),
    pytest.param("post", "/api/v1/orders/", {**_ORDER, "custom_fields": {"note": "\x00"}}, id="nul-order-custom-fields"),
    pytest.param("post", "/api/v1/hubs/", {"name": "Hub\x00", "code": "NUL1", "timezone": "UTC", "address_line1": "a",
                                           "city": "b", "country": "DE", "lat": 1, "lng": 1}, id="nul-hub-create"),
    pytest.param("post", "/api/v1/stops/{pending_stop}/complete/", {"notes": "\x00"}, id="nul-stop-complete-notes"),
    # item totals that DECIMAL(9, 2) cannot store (InvalidOperation on SQLite, DataError on PostgreSQL)
    pytest.param("post", "/api/v1/orders/", {**_ORDER, "items": [{"sku": "S", "quantity": 10000, "weight_kg": 1000}]},
                 id="totals-order-create-weight"),
    pytest.param("patch", "/api/v1/orders/{open_order}/", {"items": [{"sku": "S", "quantity": 10000, "volume_l": 1000}]},
                 id="totals-order-update-volume"),
    # '²'.isdigit() is true but int('²') raises ValueError
    pytest.param("get", "/api/v1/events/?after=%C2%B2", None, id="digit-events-after"),
    pytest.param("get", "/api/v1/events/?limit=%C2%B2", None, id="digit-events-limit"),
    # a forged cursor, base64("p=x"), whose position reached id__lt (ValueError)
    pytest.param("get", "/api/v1/hubs/?cursor=cD14", None, id="forged-cursor"),
    # 1e999 parsed as infinity and stored in custom_fields (invalid JSON for the database)
    pytest.param("post", "/api/v1/orders/", '{"external_id": "FUZZ-1", "customer_name": "Erika", "address_line1": "a",'
                 ' "city": "Berlin", "country": "DE", "custom_fields": {"n": 1e999}}', id="infinity-custom-fields"),
    # nesting deeper than the recursion limit (RecursionError in the JSON parser)
    pytest.param("post", "/api/v1/orders/", "[" * 100_000 + "]" * 100_000, id="deeply-nested-json"),
    # geocode_confidence null on PATCH reached a NOT NULL column (IntegrityError)
    pytest.param("patch", "/api/v1/orders/{open_order}/", {"geocode_confidence": None}, id="null-geocode-confidence"),
    # NUL in the event log's filters was a DataError on PostgreSQL
    *[pytest.param("get", f"/api/v1/events/?{name}=%00", None, id=f"nul-events-{name}-filter")
      for name in ("type", "subject_type", "subject_id")],
]


@pytest.mark.parametrize(("method", "path", "body"), FINDINGS)
def test_fuzz_findings_get_a_clear_error(method, path, body, api_world):
    names = {"open_order": api_world["open_order"].pk, "draft_route": api_world["draft_route"].pk,
             "pending_stop": api_world["pending_stop"].pk, "hub": api_world["ids"]["hubs"][0]}
    path = path.format(**names)
    if isinstance(body, dict):
        body = json.dumps(body).replace('"{hub}"', str(names["hub"]))
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION=f"Bearer {api_world['key']}")
    with transaction.atomic():
        if body is None:
            response = getattr(client, method)(path)
        else:
            response = getattr(client, method)(path, body, content_type="application/json")
        transaction.set_rollback(True)
    assert response.status_code < 500, f"{response.status_code}: {response.content[:300]!r}"
    if response.status_code >= 400:
        error_has_code_and_message(None, response, None)
