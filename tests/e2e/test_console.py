"""The dispatcher console in a real browser: sign in, see the day's routes and stops."""

from __future__ import annotations

import json
import os
import re
import zoneinfo
from datetime import date, datetime, time, timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Stop
from apps.dispatch.services.routes import route_create, route_publish
from apps.dispatch.services.stops import stop_arrive, stop_complete, stop_fail
from tests.factories import PASSWORD, DriverFactory, OrderFactory, VehicleFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}

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
    return {"day": day, "bobs": bobs, "danas": danas}


def sign_in(page: Page, live_server, username: str, day: date) -> None:
    """Open the console on `day` (not "today": a run across midnight must not flake) and sign in."""
    page.goto(f"{live_server.url}/console/?date={day.isoformat()}")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(live_server.url)}/console/"))


def test_a_dispatcher_sees_the_days_routes_stops_and_unplanned_orders(page: Page, live_server, dave, acme_day):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.on("pageerror", lambda error: console_errors.append(str(error)))

    sign_in(page, live_server, "dave", acme_day["day"])

    expect(page.get_by_test_id("org-name")).to_have_text("Acme Deliveries")
    expect(page.locator("#date-picker")).to_have_value(acme_day["day"].isoformat())

    cards = page.get_by_test_id("route-card")
    expect(cards).to_have_count(3)
    bobs = cards.filter(has_text="Prenzlauer Berg")
    expect(bobs).to_contain_text("Bob Baker")
    expect(bobs).to_contain_text("In progress")
    expect(bobs.get_by_test_id("route-progress")).to_have_text("2 / 5 stops · 1 failed")
    expect(cards.filter(has_text="Kreuzberg").get_by_test_id("route-progress")).to_have_text("0 / 4 stops")
    expect(cards.filter(has_text="Moabit")).to_contain_text("No driver")

    # Every stop of the day is a numbered marker coloured by its state.
    markers = page.locator(".leaflet-marker-pane .stop-marker")
    expect(markers).to_have_count(12)
    expect(page.locator(".stop-marker.is-succeeded")).to_have_count(1)
    expect(page.locator(".stop-marker.is-failed")).to_have_count(1)
    expect(page.locator(".stop-marker.is-arrived")).to_have_count(1)
    expect(page.locator(".stop-marker.is-pending")).to_have_count(9)
    expect(page.locator(".order-marker")).to_have_count(4)
    expect(page.locator(".hub-marker")).to_have_count(1)
    expect(page.get_by_test_id("unplanned")).to_contain_text("1 more without coordinates")

    summary = page.get_by_test_id("summary")
    for state, count in [("created", 5), ("planned", 3), ("dispatched", 4), ("out_for_delivery", 3),
                         ("delivered", 1), ("failed", 1)]:
        expect(summary.locator(f'[data-state="{state}"] .summary-count')).to_have_text(str(count))

    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        page.wait_for_timeout(400)  # let fitBounds' zoom animation settle before the picture
        path = Path(settings.BASE_DIR) / "docs" / "screenshot-console.png"
        path.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(path))

    # Clicking a route lists its stops in order and dims the others on the map.
    bobs.click()
    rows = page.get_by_test_id("stop-row")
    expect(rows).to_have_count(5)
    expect(rows.nth(0)).to_contain_text("Erika Mustermann")
    expect(rows.nth(0)).to_contain_text("Delivered")
    expect(rows.nth(1)).to_contain_text("Recipient absent")
    expect(rows.nth(2)).to_contain_text("Arrived")
    expect(rows.nth(4)).to_contain_text("Mia Hoffmann")
    expect(rows.nth(4)).to_contain_text("ETA")
    expect(page.locator(".stop-marker.is-dimmed")).to_have_count(7)

    page.get_by_role("button", name="‹ All routes").click()
    expect(cards).to_have_count(3)
    expect(page.locator(".stop-marker.is-dimmed")).to_have_count(0)

    # No tiles configured: the map draws on its own background and nothing leaves localhost.
    expect(page.locator(".leaflet-tile")).to_have_count(0)
    foreign = [url for url in requested if urlparse(url).hostname not in LOCAL_HOSTS and not url.startswith("data:")]
    assert foreign == []
    assert console_errors == []


def test_the_date_picker_shows_another_day(page: Page, live_server, dave, acme_day):
    sign_in(page, live_server, "dave", acme_day["day"])
    expect(page.get_by_test_id("route-card")).to_have_count(3)

    page.get_by_role("button", name="Next day").click()

    expect(page.get_by_text("No routes on this day.")).to_be_visible()
    expect(page.locator(".stop-marker")).to_have_count(0)
    expect(page.locator(".order-marker")).to_have_count(4)  # the unplanned backlog stays in view
    tomorrow = (acme_day["day"] + timedelta(days=1)).isoformat()
    expect(page).to_have_url(f"{live_server.url}/console/?date={tomorrow}")


def test_an_api_error_is_shown_to_the_dispatcher(page: Page, live_server, dave, acme_day):
    def fail(route):
        route.fulfill(status=503, content_type="application/json",
                      body=json.dumps({"code": "unavailable", "message": "The database is being upgraded."}))

    page.route("**/api/v1/routes/?*", fail)
    sign_in(page, live_server, "dave", acme_day["day"])

    error = page.get_by_test_id("error")
    expect(error).to_contain_text("Could not load the console.")
    expect(error).to_contain_text("The database is being upgraded.")
    expect(error).to_contain_text("HTTP 503")

    page.unroute("**/api/v1/routes/?*")
    error.get_by_role("button", name="Retry").click()
    expect(page.get_by_test_id("error")).to_have_count(0)
    expect(page.get_by_test_id("route-card")).to_have_count(3)
