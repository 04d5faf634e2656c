"""The customer's tracking page in a real browser against Daphne: Bob's phone pings on
the driver socket, the server's ETA engine refreshes, and Erika's page shows the ETA
and Bob's marker moving live, then "Delivered" with the marker gone (docs/tracking.md)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Stop
from apps.dispatch.services.routes import route_create, route_publish
from apps.dispatch.services.stops import stop_complete
from apps.tracking.models import TrackingSettings
from apps.tracking.services import tracking_token_issue
from tests.e2e.conftest import BERLIN
from tests.factories import OrderFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Bob's stops head north-east from the depot (52.5290, 13.3726); Erika is the second.
STOPS = [("Mia Hoffmann", 52.5308, 13.3838), ("Erika Mustermann", 52.5340, 13.3950),
         ("Jonas Becker", 52.5405, 13.4123)]


@pytest.fixture
def erikas_link(acme, acme_hub, acme_van, bob):
    day = timezone.now().astimezone(BERLIN).date()
    TrackingSettings.objects.create(org=acme, brand_name="Acme Express", brand_colour="#0a7d4f",
                                    driver_visible_within_stops=2, driver_visible_within_minutes=0)
    orders = [OrderFactory(org=acme, hub=acme_hub, customer_name=name, lat=lat, lng=lng,
                           window_start=datetime.combine(day, time(0, 0), tzinfo=BERLIN),
                           window_end=datetime.combine(day, time(23, 59), tzinfo=BERLIN))
              for name, lat, lng in STOPS]
    actor = system_actor(acme)
    route = route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date=day.isoformat(), driver=bob.pk,
                                                   vehicle=acme_van.pk, orders=[o.pk for o in orders],
                                                   planned_start=(timezone.now() - timedelta(minutes=5)).isoformat()))
    route_publish(actor=actor, route=route)
    return {"token": tracking_token_issue(order=orders[1]).token, "orders": orders, "route": route}


def eta_of(page: Page) -> str:
    return page.get_by_test_id("eta").get_attribute("data-eta")


def test_erika_watches_bob_come_closer_then_sees_her_parcel_delivered(
        page: Page, asgi_live_server, erikas_link, bob, driver_devices):
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    page.goto(f"{asgi_live_server.url}/track/{erikas_link['token']}/")
    expect(page.get_by_test_id("brand-name")).to_have_text("Acme Express")
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-status", "live")
    expect(page.get_by_test_id("headline")).to_contain_text("Arriving")
    expect(page.get_by_test_id("driver")).to_contain_text("Bob")
    expect(page.get_by_test_id("driver-marker")).to_have_count(0)  # no position yet
    planned = eta_of(page)

    # Bob sets off from the depot: 1 stop before Erika's, within the 2 the organization allows.
    phone = driver_devices(bob)
    phone.ping(52.5290, 13.3726, seconds_ago=120)
    marker = page.get_by_test_id("driver-marker")
    expect(marker).to_be_visible(timeout=10_000)
    expect(marker).to_have_attribute("data-lat", "52.529")
    from_depot = eta_of(page)
    assert from_depot != planned

    # A minute later he is much closer: the ETA comes forward and the marker moves.
    phone.ping(52.5320, 13.3900, seconds_ago=60)
    expect(marker).to_have_attribute("data-lat", "52.532", timeout=10_000)
    page.wait_for_function(f"document.querySelector('[data-testid=eta]').dataset.eta !== {from_depot!r}",
                           timeout=10_000)
    assert datetime.fromisoformat(eta_of(page)) < datetime.fromisoformat(from_depot)
    expect(page.get_by_test_id("eta-window")).to_contain_text("–")

    # He delivers the first stop and then Erika's parcel (through the services, in this
    # process: the page hears of it from the event log on its next heartbeat).
    for order in erikas_link["orders"][:2]:
        stop_complete(actor=system_actor(bob.org), stop=Stop.objects.get(order=order))

    expect(page.get_by_test_id("headline")).to_contain_text("Delivered", timeout=15_000)
    expect(page.get_by_test_id("driver-marker")).to_have_count(0)
    expect(page.get_by_test_id("rating")).to_be_visible()


def test_a_bad_link_is_a_plain_not_found_page(page: Page, asgi_live_server):
    response = page.goto(f"{asgi_live_server.url}/track/not-a-real-token/")

    assert response.status == 404
    expect(page.get_by_role("heading")).to_have_text("Link not found")


def test_erika_leaves_notes_before_bob_sets_off_and_rates_after_delivery(
        page: Page, asgi_live_server, erikas_link, bob):
    from apps.tracking.models import DeliveryPreferences, DeliveryRating

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{asgi_live_server.url}/track/{erikas_link['token']}/")
    form = page.get_by_test_id("preferences")
    form.get_by_label("Delivery instructions").fill("Back door, ring twice")
    form.get_by_label("Gate or door code").fill("4711#")
    form.get_by_role("button").click()

    expect(form).to_contain_text("Saved. Your driver will see this.")
    prefs = DeliveryPreferences.objects.get(order=erikas_link["orders"][1])
    assert (prefs.instructions, prefs.gate_code) == ("Back door, ring twice", "4711#")
    assert prefs.pin_confirmed_at is not None  # saving confirms the pin where it stands

    actor = system_actor(bob.org)
    for order in erikas_link["orders"][:2]:
        stop_complete(actor=actor, stop=Stop.objects.get(order=order))
    expect(page.get_by_test_id("headline")).to_contain_text("Delivered", timeout=15_000)
    page.get_by_test_id("rating").get_by_role("button", name="5 of 5").click()

    expect(page.get_by_text("Thank you for your rating (5/5).")).to_be_visible()
    assert DeliveryRating.objects.get(order=erikas_link["orders"][1]).score == 5
