"""The world ``bench/load.py`` runs in: one organization with drivers, dispatchers, a
partner's API key, a Shopify connection and published routes, made in bulk; the photos
drivers send; the checks that every accepted write landed once; and the cleanup.

Runs in the bench's main process, with Django set up on the bench database. The client
processes never touch the database: they get what they need as plain data (``World``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any

SLUG_PREFIX = "bench-load-"
SHOPIFY_SECRET = "bench-load-shopify-secret"
SHOPIFY_DOMAIN = "bench-load.myshopify.com"
STOPS_PER_ROUTE = 25
SAMPLE_ORDER = (Path(__file__).resolve().parents[2] / "shared" / "data" / "realworld" / "shopify"
                / "docs_sample_orders_create.json")


@dataclass
class World:
    """What the clients need, as plain data (it crosses a process boundary)."""

    run_id: str
    org_id: int
    driver_ids: list[int]
    driver_cookies: list[str]  # "sessionid=..." per driver, in driver_ids' order
    console_cookies: list[str]
    api_key: str
    hook_path: str  # /hooks/<token> of the Shopify connection
    # (driver index, route id, stop id): completed in this order, spread over the drivers.
    stops: list[tuple[int, int, int]] = field(default_factory=list)
    session_keys: list[str] = field(default_factory=list)


# --- ids --------------------------------------------------------------------------


def raise_id_sequences() -> None:
    """Start ids at 10^9 in the bench database. Channel group names carry ids
    (``org.7``, ``route.12``, ``order.3``) and Redis Pub/Sub channels are not per Redis
    database: a test run on the same Redis could otherwise hear our pushes, or we its."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from apps.accounts.models import Organization
    from apps.dispatch.models import Driver, Order, Route, Stop

    with connection.cursor() as cursor:
        for model in (Organization, get_user_model(), Driver, Order, Route, Stop):
            table = model._meta.db_table
            cursor.execute(f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                           f"GREATEST(1000000000, (SELECT COALESCE(MAX(id), 0) FROM {table})))", [table])


# --- the organization ---------------------------------------------------------------


def world_create(run_id: str, *, drivers: int, consoles: int, stops: int, routes_today: bool = False) -> World:
    """One organization: ``drivers`` on-duty drivers and ``consoles`` dispatchers, each
    with a session row written directly (one password hash for all: nobody logs in);
    a partner API key; a Shopify connection; and ``stops`` deliveries on published
    routes of the first drivers, ``STOPS_PER_ROUTE`` each."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.db import transaction
    from django.utils import timezone

    from apps.accounts.models import Membership, Role
    from apps.accounts.services import api_client_create, organization_create
    from apps.dispatch.models import Driver
    from apps.integrations.services.connections import connection_create
    from apps.tracking.models import DriverPosition

    User = get_user_model()
    password = make_password(secrets.token_urlsafe(16))
    now = timezone.now()
    with transaction.atomic():
        org = organization_create(name=f"Load bench {run_id}", slug=f"{SLUG_PREFIX}{run_id}")
        driver_users = User.objects.bulk_create(
            [User(username=f"load-{run_id}-driver-{i}", password=password) for i in range(drivers)], batch_size=1000)
        console_users = User.objects.bulk_create(
            [User(username=f"load-{run_id}-console-{i}", password=password) for i in range(consoles)])
        Membership.objects.bulk_create([Membership(user=u, org=org, role=Role.DRIVER) for u in driver_users]
                                       + [Membership(user=u, org=org, role=Role.DISPATCHER) for u in console_users],
                                       batch_size=1000)
        rows = Driver.objects.bulk_create([
            Driver(org=org, user=u, name=f"Driver {i}", shift_start=clock(0), shift_end=clock(23, 59), on_duty=True)
            for i, u in enumerate(driver_users)], batch_size=1000)
        # Heard from now: the stale check has real rows to scan but raises no alerts
        # (world_refresh keeps it so between steps).
        DriverPosition.objects.bulk_create([DriverPosition(driver=d, org=org, last_ping_at=now) for d in rows],
                                           batch_size=1000)
        store = SessionStore()
        auth_hash = driver_users[0].get_session_auth_hash()
        cookies: dict[int, str] = {}
        sessions = []
        for user in driver_users + console_users:
            key = secrets.token_hex(16)
            data = {"_auth_user_id": str(user.pk), "_auth_user_backend": "django.contrib.auth.backends.ModelBackend",
                    "_auth_user_hash": auth_hash}
            sessions.append(Session(session_key=key, session_data=store.encode(data), expire_date=now + timedelta(days=1)))
            cookies[user.pk] = f"sessionid={key}"
        Session.objects.bulk_create(sessions, batch_size=1000)
        _, api_key = api_client_create(org=org, name="load bench partner", scopes=["orders:write", "orders:read"])
        shop = connection_create(org=org, kind="shopify", name="Load bench shop", store=SHOPIFY_DOMAIN,
                                 secret=SHOPIFY_SECRET)
    world = World(run_id=run_id, org_id=org.pk, driver_ids=[d.pk for d in rows],
                  driver_cookies=[cookies[u.pk] for u in driver_users],
                  console_cookies=[cookies[u.pk] for u in console_users], api_key=api_key,
                  hook_path=f"/hooks/{shop.token}", session_keys=[s.session_key for s in sessions])
    world.stops = routes_create(org, rows, stops, run_id, today=routes_today)
    return world


def routes_create(org: Any, drivers: list[Any], stops: int, run_id: str, *, today: bool) -> list[tuple[int, int, int]]:
    """Published routes of ``STOPS_PER_ROUTE`` deliveries for the first drivers, through
    the services a dispatcher's publish goes through. Returns the stops interleaved
    across drivers (driver 0's first, driver 1's first, ...), so consecutive
    completions come from different phones, as in a real fleet.

    Dated tomorrow unless ``today``: a console's snapshot carries every route of the day
    with its stops in one WebSocket message, and Daphne refuses to send one over 1 MiB
    (about 800 stops with a 2,000-driver list), so with today's routes the consoles of
    the larger steps could not connect at all (docs/performance.md, "Mixed load")."""
    from apps.accounts.actor import system_actor
    from apps.dispatch.inputs import OrderIn, RouteIn
    from apps.dispatch.models import Hub, Stop, Vehicle
    from apps.dispatch.services.orders import order_bulk_create
    from apps.dispatch.services.routes import route_create, route_publish
    from bench.ingest import make_orders

    routes = -(-stops // STOPS_PER_ROUTE)
    if routes > len(drivers):
        raise SystemExit(f"{stops} stops need {routes} routes of {STOPS_PER_ROUTE}, more than the {len(drivers)} drivers")
    actor = system_actor(org)
    hub = Hub.objects.create(org=org, name="Berlin Mitte Depot", code="BER", timezone="Europe/Berlin",
                             address_line1="Invalidenstraße 50", city="Berlin", postal_code="10557", country="DE",
                             lat=52.529, lng=13.3726, opening_hours={})
    vehicles = Vehicle.objects.bulk_create([
        Vehicle(org=org, name=f"Van {i}", plate=f"B-LB {i}", type="van", capacity_weight_kg=5000,
                capacity_volume_l=50000, capacity_parcels=500) for i in range(routes)])
    # The route's stops carry no proof requirements beyond what the PWA always sends (a photo).
    payloads = [{**p, "pod_requirements": []} for p in make_orders(routes * STOPS_PER_ROUTE, run_id=f"route-{run_id}")]
    orders = [r.order for r in order_bulk_create(actor=actor, orders=[OrderIn(**p) for p in payloads])]
    day = (datetime.now(UTC) + timedelta(days=0 if today else 1)).date().isoformat()
    per_driver: list[list[tuple[int, int, int]]] = []
    for n in range(routes):
        chunk = orders[n * STOPS_PER_ROUTE:(n + 1) * STOPS_PER_ROUTE]
        route = route_create(actor=actor, data=RouteIn(hub=hub.pk, date=day, driver=drivers[n].pk,
                                                        vehicle=vehicles[n].pk, orders=[o.pk for o in chunk]))
        route = route_publish(actor=actor, route=route)
        ids = Stop.objects.filter(route=route, order__isnull=False).order_by("sequence").values_list("pk", flat=True)
        per_driver.append([(n, route.pk, stop_id) for stop_id in ids])
    interleaved = [stop for group in zip(*per_driver, strict=False) for stop in group]
    return interleaved[:stops]


def world_refresh(world: World) -> None:
    """Every driver heard from now: drivers idle between steps never turn stale (a stale
    alert would push events to every console mid-measurement)."""
    from django.utils import timezone

    from apps.tracking.models import DriverPosition

    DriverPosition.objects.filter(org_id=world.org_id).update(last_ping_at=timezone.now(), stale_since=None)


def cleanup(run_id: str | None = None, session_keys: list[str] | None = None) -> None:
    """Remove this run's organization and everything in it (or, without a run id, what a
    crashed run left behind: its sessions then simply expire, their users gone)."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session
    from django.db import connection, transaction
    from django_tasks_db.models import DBTaskResult

    from apps.accounts.models import Organization
    from apps.events.models import Event
    from apps.integrations.models import InboundMessage
    from apps.tracking.models import LocationPing

    for org_id, slug in Organization.objects.filter(slug__startswith=f"{SLUG_PREFIX}{run_id or ''}").values_list(
            "pk", "slug"):
        messages = list(InboundMessage.objects.filter(org_id=org_id).values_list("pk", flat=True))
        with transaction.atomic():
            for start in range(0, len(messages), 5000):
                DBTaskResult.objects.filter(task_path="apps.integrations.tasks.process_inbound",
                                            args_kwargs__args__0__in=messages[start:start + 5000]).delete()
            with connection.cursor() as cursor:
                # Statements for the big tables, not the ORM's cascade, which would load every row first.
                for model in (LocationPing, Event):
                    cursor.execute(f"DELETE FROM {model._meta.db_table} WHERE org_id = %s", [org_id])
            Organization.objects.filter(pk=org_id).delete()
            get_user_model().objects.filter(username__startswith=f"load-{slug.removeprefix(SLUG_PREFIX)}-").delete()
    if session_keys:
        Session.objects.filter(session_key__in=session_keys).delete()


# --- what the clients send --------------------------------------------------------------


def camera_jpeg(width: int, height: int) -> bytes:
    """A camera-like JPEG (quality 92, gradients plus sensor noise, EXIF with GPS): it
    compresses like a phone's photo, a few MB at 12 MP. The same recipe as
    bench/pod_media.py, whose figures say what one costs the server."""
    from PIL import ExifTags, Image

    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 24)
    image = Image.merge("RGB", (gradient, Image.blend(gradient, noise, 0.35), noise))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 44.4)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def unique_photo(base: bytes, tag: str) -> bytes:
    """The same picture with a JPEG comment naming the stop: different bytes, so a new
    upload (the server stores photos by content and would answer a repeat from its
    store without decoding it), and still a valid JPEG of the same cost to check."""
    comment = f"lastmile load bench {tag}".encode()
    return base[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + base[2:]


def shopify_delivery(template: dict[str, Any], run_id: str, n: int) -> tuple[bytes, dict[str, str]]:
    """One signed ``orders/create`` delivery of a new order, as Shopify sends it."""
    order_id = 7_000_000_000_000 + n
    payload = {**template, "id": order_id, "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
               "name": f"#LB{n}", "order_number": n, "updated_at": "2026-12-01T10:00:00+01:00",
               "shipping_address": {**template.get("shipping_address", {}), "latitude": 52.52 + (n % 100) * 0.001,
                                    "longitude": 13.40 + (n % 37) * 0.002, "country_code": "DE",
                                    "country": "Germany", "zip": "10119", "city": "Berlin", "province_code": None,
                                    "province": None}}
    body = json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    event = f"load-{run_id}-{n}"
    return body, {"Content-Type": "application/json", "X-Shopify-Hmac-Sha256": signature,
                  "X-Shopify-Topic": "orders/create", "X-Shopify-Shop-Domain": SHOPIFY_DOMAIN,
                  "X-Shopify-Webhook-Id": event, "X-Shopify-Event-Id": event}


def shopify_template() -> dict[str, Any]:
    return json.loads(SAMPLE_ORDER.read_text()) if SAMPLE_ORDER.exists() else {
        "line_items": [{"quantity": 1, "grams": 500, "title": "Mug", "requires_shipping": True}],
        "shipping_address": {"first_name": "Erika", "last_name": "Mustermann", "address1": "Torstraße 1"}}


# --- after the run ---------------------------------------------------------------------


@dataclass
class Accepted:
    """What the server said yes to, as the clients recorded it."""

    webhooks: list[str] = field(default_factory=list)  # X-Shopify-Event-Id of each 200
    shopify_orders: list[str] = field(default_factory=list)  # their Shopify order ids
    api_orders: list[str] = field(default_factory=list)  # external_id of each 201/200
    completed: list[tuple[int, str, str]] = field(default_factory=list)  # (stop id, photo sha256, action id)
    server_errors: int = 0  # 5xx answers, any kind


def wait_for_workers(world: World, timeout: float) -> int:
    """Wait until the workers have processed every stored webhook; return how many are
    still waiting when ``timeout`` runs out."""
    from apps.integrations.models import InboundMessage, InboundStatus

    deadline = time.monotonic() + timeout
    while True:
        waiting = InboundMessage.objects.filter(org_id=world.org_id, status=InboundStatus.RECEIVED).count()
        if not waiting or time.monotonic() > deadline:
            return waiting
        time.sleep(0.5)


def verify(world: World, accepted: Accepted, *, worker_timeout: float) -> list[str]:
    """Every accepted order stored once, every completed stop completed once with its
    proof, no 5xx. Returns the problems (none: correct)."""
    from django.db.models import Count

    from apps.dispatch.models import Order, Stop, StopState
    from apps.integrations.models import ExternalOrder, InboundMessage, InboundStatus
    from apps.pod.models import DispatchException, DriverAction, ProofOfDelivery

    problems: list[str] = []
    if accepted.server_errors:
        problems.append(f"{accepted.server_errors} answers were 5xx")
    waiting = wait_for_workers(world, worker_timeout)
    if waiting:
        problems.append(f"{waiting} webhooks still unprocessed {worker_timeout:.0f} s after the load stopped")

    # Shopify: each acknowledged delivery stored once, processed into one order.
    keys = [f"event:{e}" for e in accepted.webhooks]
    messages = dict(InboundMessage.objects.filter(org_id=world.org_id, dedupe_key__in=keys)
                    .values_list("dedupe_key", "status"))
    if len(messages) != len(set(keys)):
        problems.append(f"{len(set(keys)) - len(messages)} acknowledged webhooks not stored")
    not_done = sum(1 for s in messages.values() if s != InboundStatus.PROCESSED)
    if not_done:
        problems.append(f"{not_done} stored webhooks not processed into an order")
    linked = ExternalOrder.objects.filter(connection__org_id=world.org_id, external_id__in=accepted.shopify_orders)
    if linked.count() != len(set(accepted.shopify_orders)):
        problems.append(f"{len(set(accepted.shopify_orders))} Shopify orders acknowledged, {linked.count()} orders made")

    # Partner API: each accepted external id is one order.
    api = Order.objects.filter(org_id=world.org_id, external_id__in=accepted.api_orders).exclude(
        pk__in=linked.values("order_id"))
    if api.count() != len(set(accepted.api_orders)):
        problems.append(f"{len(set(accepted.api_orders))} API orders accepted, {api.count()} stored")
    twice = (Order.objects.filter(org_id=world.org_id).values("source", "external_id")
             .annotate(n=Count("id")).filter(n__gt=1).count())
    if twice:
        problems.append(f"{twice} orders stored more than once")

    # Stops: completed once, each with one proof holding the photo that was uploaded for it.
    stop_ids = [s for s, _, _ in accepted.completed]
    states = dict(Stop.objects.filter(pk__in=stop_ids).values_list("pk", "state"))
    open_ = sum(1 for s in stop_ids if states.get(s) != StopState.COMPLETED)
    if open_:
        problems.append(f"{open_} stops acknowledged as completed are not completed")
    pods = {}
    for stop_id, sha in ProofOfDelivery.objects.filter(stop_id__in=stop_ids).values_list("stop_id", "photos__sha256"):
        pods.setdefault(stop_id, []).append(sha)
    wrong = sum(1 for s, sha, _ in accepted.completed if pods.get(s) != [sha])
    if wrong:
        problems.append(f"{wrong} completed stops without exactly one proof holding their photo")
    actions = DriverAction.objects.filter(org_id=world.org_id, key__in=[a for _, _, a in accepted.completed]).count()
    if actions != len(accepted.completed):
        problems.append(f"{len(accepted.completed)} completions acknowledged, {actions} driver actions stored")
    doubles = DispatchException.objects.filter(org_id=world.org_id).count()
    if doubles:
        problems.append(f"{doubles} dispatcher exceptions (stops completed twice)")
    return problems
