"""The dispatcher console in a real browser: sign in, see the day's routes and stops."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def test_a_dispatcher_sees_the_days_routes_stops_and_unplanned_orders(page: Page, asgi_live_server, dave, acme_day):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    console_errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.on("pageerror", lambda error: console_errors.append(str(error)))

    sign_in(page, asgi_live_server, "dave", acme_day["day"])

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


def test_the_date_picker_shows_another_day(page: Page, asgi_live_server, dave, acme_day):
    sign_in(page, asgi_live_server, "dave", acme_day["day"])
    expect(page.get_by_test_id("route-card")).to_have_count(3)

    page.get_by_role("button", name="Next day").click()

    expect(page.get_by_text("No routes on this day.")).to_be_visible()
    expect(page.locator(".stop-marker")).to_have_count(0)
    expect(page.locator(".order-marker")).to_have_count(4)  # the unplanned backlog stays in view
    tomorrow = (acme_day["day"] + timedelta(days=1)).isoformat()
    expect(page).to_have_url(f"{asgi_live_server.url}/console/?date={tomorrow}")


def test_an_api_error_is_shown_to_the_dispatcher(page: Page, asgi_live_server, dave, acme_day):
    def fail(route):
        route.fulfill(status=503, content_type="application/json",
                      body=json.dumps({"code": "unavailable", "message": "The database is being upgraded."}))

    page.route("**/api/v1/routes/?*", fail)
    sign_in(page, asgi_live_server, "dave", acme_day["day"])

    error = page.get_by_test_id("error")
    expect(error).to_contain_text("Could not load the console.")
    expect(error).to_contain_text("The database is being upgraded.")
    expect(error).to_contain_text("HTTP 503")

    page.unroute("**/api/v1/routes/?*")
    error.get_by_role("button", name="Retry").click()
    expect(page.get_by_test_id("error")).to_have_count(0)
    expect(page.get_by_test_id("route-card")).to_have_count(3)
