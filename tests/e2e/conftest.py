"""Browser fixtures for end-to-end tests: pytest-playwright's `page`, driven by the
system Chromium (Debian's `chromium` package) instead of a downloaded browser, against
a real ASGI server (Daphne) so pages get their WebSockets as in production.

Run these in their own pytest invocation (`pytest -m e2e -p no:asyncio`): sync
Playwright runs an event loop in the main thread, which clashes with
pytest-asyncio's. tests/conftest.py sets DJANGO_ALLOW_ASYNC_UNSAFE for the same
reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from channels.testing.live import make_application
from daphne.testing import DaphneProcess
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections
from django.test.utils import override_settings
from django.utils import timezone
from playwright.sync_api import Page, expect
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Stop
from apps.dispatch.services.routes import route_create, route_publish
from apps.dispatch.services.stops import stop_arrive, stop_complete, stop_fail
from tests.factories import PASSWORD, DriverFactory, OrderFactory, VehicleFactory
from tests.realtime.servers import session_cookie

CHROMIUM = os.environ.get("LASTMILE_CHROMIUM", "/usr/bin/chromium")
# No background traffic from the browser itself, so "no request left localhost"
# is a statement about the page.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
# The server's heartbeat in these tests: a client treats 2.5 silent intervals as a dead
# socket, so tests of that wait 2.5 x this, not 25 s.
HEARTBEAT_S = 2.0


@pytest.fixture(scope="session", autouse=True)
def _front_end_ready() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"No Chromium at {CHROMIUM}: apt-get install -y chromium (or set LASTMILE_CHROMIUM).")
    vendor = Path(settings.BASE_DIR) / "frontend" / "vendor" / "leaflet"
    if not vendor.is_dir():
        pytest.fail("frontend/vendor/ is missing: run `npm ci && npm run vendor` in frontend/.")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1440, "height": 900}, "locale": "en-GB"}


# --- the server ---------------------------------------------------------------------


@dataclass
class LiveServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


# Database connections the server process inherited from the test process.
_inherited_connections: list[Any] = []


def _in_the_server_process() -> None:
    """First thing in the forked server: let go of the test process's database
    connections without closing them. They are the same sockets in both processes;
    closing one here (or letting it be garbage-collected) would end the test's session
    on PostgreSQL. The settings already name the test database: pytest-django set them
    before the fork."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited_connections.append(connection.connection)
            connection.connection = None


@pytest.fixture(scope="session")
def asgi_live_server(django_db_setup, django_db_blocker) -> Iterator[LiveServer]:
    """Daphne serving the whole ASGI application (HTTP, static files, WebSockets) in a
    child process, on the file-based test database.

    This is channels' ChannelsLiveServerTestCase as a pytest fixture (the same
    DaphneProcess and application factory), so tests can use pytest-playwright's `page`.
    pytest-django's `live_server` is WSGI only: no WebSockets. The child is forked
    after the test database exists, with the settings below; it has its own in-memory
    channel layer, so anything that should reach a socket must happen inside it: over
    HTTP or a WebSocket, as a real client would.
    """
    host = "localhost"
    overrides = override_settings(
        ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, host],
        REALTIME_HEARTBEAT_S=HEARTBEAT_S,
        DEBUG=False,
        # The personas' passwords are hashed with MD5 in tests (tests/conftest.py).
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    # Forked inside unblock(): the child inherits pytest-django's guard against
    # database access along with everything else, and the server needs the database.
    with overrides, django_db_blocker.unblock():
        server = DaphneProcess(host, partial(make_application, static_wrapper=ASGIStaticFilesHandler),
                               setup=_in_the_server_process)
        server.start()
        while not server.ready.wait(timeout=1):
            if not server.is_alive():
                raise RuntimeError(f"Daphne did not start: {server.errors.get() if not server.errors.empty() else ''}")
    yield LiveServer(host=host, port=server.port.value)
    server.terminate()
    server.join(10)


@pytest.fixture(autouse=True)
def _no_channel_layer_in_the_test_process(asgi_live_server, settings) -> None:
    """Data a test creates directly is published from this process, where no socket
    listens (and where Playwright's loop makes async_to_sync refuse). The server's
    clients see it all the same: they resync from the event log."""
    settings.CHANNEL_LAYERS = {}


# --- data ---------------------------------------------------------------------------

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")

# (customer, street, lat, lng) around the hub in Berlin Mitte (52.5290, 13.3726).
NORTH = [
    ("Erika Mustermann", "Torstraße 1", 52.5290, 13.4010),
    ("Jonas Becker", "Schönhauser Allee 36", 52.5405, 13.4123),
    ("Lea Schmidt", "Kastanienallee 12", 52.5372, 13.4050),
    ("Paul Wagner", "Bernauer Straße 111", 52.5353, 13.3905),
    ("Mia Hoffmann", "Invalidenstraße 117", 52.5308, 13.3838),
]
SOUTH = [
    ("Felix Schulz", "Friedrichstraße 43", 52.5076, 13.3903),
    ("Hannah Koch", "Oranienstraße 25", 52.5016, 13.4183),
    ("Noah Richter", "Bergmannstraße 5", 52.4895, 13.3950),
    ("Emma Klein", "Yorckstraße 80", 52.4925, 13.3770),
]
WEST = [
    ("Ben Wolf", "Turmstraße 21", 52.5262, 13.3420),
    ("Sophie Neumann", "Alt-Moabit 90", 52.5230, 13.3540),
    ("Luis Braun", "Huttenstraße 9", 52.5290, 13.3180),
]
UNPLANNED = [
    ("Clara Zimmer", "Greifswalder Straße 4", 52.5310, 13.4260),
    ("Tim Krüger", "Müllerstraße 30", 52.5480, 13.3550),
    ("Ida Hartmann", "Karl-Marx-Allee 90", 52.5177, 13.4350),
    ("Max Lange", "Potsdamer Straße 81", 52.5010, 13.3640),
]


def _orders(org, hub, day: date, people: list[tuple[str, str, float | None, float | None]]) -> list:
    orders = []
    for index, (name, street, lat, lng) in enumerate(people):
        start = datetime.combine(day, time(9 + index // 2, 0), tzinfo=BERLIN)
        orders.append(OrderFactory(org=org, hub=hub, customer_name=name, address_line1=street, lat=lat, lng=lng,
                                   window_start=start, window_end=start + timedelta(hours=3)))
    return orders


@pytest.fixture
def acme_day(acme, acme_hub, acme_van, bob):
    """Today at Acme: Bob's route is under way, Dana's is published, a third is a draft;
    four unplanned orders are on the map and one without coordinates is not."""
    day = timezone.now().astimezone(BERLIN).date()
    actor = system_actor(acme)

    north, south, west = (_orders(acme, acme_hub, day, people) for people in (NORTH, SOUTH, WEST))
    _orders(acme, acme_hub, day, UNPLANNED)
    _orders(acme, acme_hub, day, [("Nils Vogel", "Unbekannte Straße 1", None, None)])

    dana_van = VehicleFactory(org=acme, home_hub=acme_hub, name="Cargo bike 2", type="cargo_bike")
    dana = DriverFactory(org=acme, name="Dana Fischer", home_hub=acme_hub, current_vehicle=dana_van)

    bobs = route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date=day.isoformat(), name="Prenzlauer Berg",
                                                  driver=bob.pk, vehicle=acme_van.pk, orders=[o.pk for o in north]))
    danas = route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date=day.isoformat(), name="Kreuzberg",
                                                   driver=dana.pk, vehicle=dana_van.pk, orders=[o.pk for o in south]))
    route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date=day.isoformat(), name="Moabit",
                                           orders=[o.pk for o in west]))
    route_publish(actor=actor, route=bobs)
    route_publish(actor=actor, route=danas)

    stops = list(Stop.objects.filter(route=bobs).order_by("sequence"))
    stop_complete(actor=actor, stop=stops[0])
    stop_fail(actor=actor, stop=stops[1], reason="recipient_absent", notes="No answer at the door")
    stop_arrive(actor=actor, stop=stops[2])
    return {"day": day, "bobs": bobs, "danas": danas, "bob": bob, "dana": dana,
            "bobs_stops": stops, "danas_stops": list(Stop.objects.filter(route=danas).order_by("sequence"))}


# --- people -------------------------------------------------------------------------


def sign_in(page: Page, server: LiveServer, username: str, day: date) -> None:
    """Open the console on `day` (not "today": a run across midnight must not flake) and sign in."""
    page.goto(f"{server.url}/console/?date={day.isoformat()}")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(server.url)}/console/"))


def api_post(page: Page, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST to the API as the person signed in on `page` (their session and CSRF token),
    from the test rather than the page: the page may be offline."""
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.context.request.post(path if path.startswith("http") else page.url.split("/console/")[0] + path,
                                         data=json.dumps(body or {}),
                                         headers={"Content-Type": "application/json", "X-CSRFToken": csrf,
                                                  "Referer": page.url})
    assert response.ok, f"{path}: {response.status} {response.text()}"
    return response.json()


class DriverDevice:
    """A driver's phone on the driver WebSocket, sending location pings the way the
    driver app does (docs/realtime.md)."""

    def __init__(self, socket: ClientConnection, driver) -> None:
        self.socket = socket
        self.driver = driver
        assert self._next("welcome")["audience"] == "driver"

    def _next(self, wanted: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            message = json.loads(self.socket.recv(timeout=timeout))
            if message["type"] == wanted:
                return message

    def ping(self, lat: float, lng: float, *, seconds_ago: float = 0, speed_mps: float = 8.0,
             heading: float = 90.0) -> None:
        at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
        self.socket.send(json.dumps({"type": "ping", "lat": lat, "lng": lng, "accuracy_m": 6, "speed_mps": speed_mps,
                                     "heading": heading, "at": at.isoformat()}))
        ack = self._next("pings.ack")
        assert ack["accepted"] == 1 and ack["flagged"] == 0, ack


@pytest.fixture
def driver_devices(asgi_live_server) -> Iterator[Any]:
    """`open_device(driver)`: that driver's phone, signed in and on the driver socket."""
    with contextlib.ExitStack() as stack:

        def open_device(driver) -> DriverDevice:
            socket = stack.enter_context(ws_connect(
                f"{asgi_live_server.ws_url}/ws/driver/",
                additional_headers={"Cookie": session_cookie(driver.user), "Origin": asgi_live_server.url},
                open_timeout=10,
            ))
            return DriverDevice(socket, driver)

        yield open_device
