"""The reports page in a real browser: tiles and a chart for a seeded history, a filter
that changes the numbers, the orders behind a figure, and CSV links."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from apps.reports.summary import summary_rebuild_day
from tests.e2e.conftest import sign_in
from tests.reports.conftest import D1, D2, build_history

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def history(acme, acme_hub, acme_van, bob, dave):
    world = build_history(acme, acme_hub, acme_van, bob)
    for day in (D1, D2):
        summary_rebuild_day(org=acme, day=day)
    return world


def tile(page: Page, name: str):
    return page.get_by_test_id(f"tile-{name}").get_by_test_id("tile-value")


def test_a_dispatcher_reads_filters_and_drills_into_the_figures(page: Page, asgi_live_server, history):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    sign_in(page, asgi_live_server, "dave", D1)

    page.get_by_test_id("reports-link").click()
    page.goto(f"{asgi_live_server.url}/console/reports/?from={D1}&to={D2}")

    expect(tile(page, "delivered")).to_have_text("5")
    expect(tile(page, "on-time")).to_have_text("75 %")
    expect(tile(page, "first-attempt")).to_have_text("80 %")
    expect(tile(page, "cancelled")).to_have_text("2")
    expect(tile(page, "pod")).to_have_text("50 %")
    expect(tile(page, "webhooks")).to_have_text("—")  # no partner endpoint: nothing sent, no rate
    chart = page.get_by_test_id("daily-chart")
    expect(chart).to_have_attribute("data-points", "2")
    assert chart.bounding_box()["height"] > 100
    expect(page.get_by_test_id("breakdown-row")).to_have_count(3)  # Bob, Dan, no driver (cancellations)

    # A filter changes the numbers, and the URL says so.
    page.get_by_test_id("filter-driver").select_option(label="Dan Driver")
    expect(tile(page, "delivered")).to_have_text("2")
    expect(tile(page, "cancelled")).to_have_text("0")
    assert f"driver={history['dan'].pk}" in page.url

    # Back to everyone; the orders behind "on time" are the late one.
    page.get_by_role("button", name="Clear filters").click()
    expect(tile(page, "delivered")).to_have_text("5")
    page.get_by_test_id("tile-on-time").click()
    rows = page.get_by_test_id("drill-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("o3")
    expect(rows.first).to_contain_text("late")
    expect(rows.first).to_contain_text("photo")

    page.get_by_test_id("tile-failed").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("recipient absent")
    csv_href = page.get_by_test_id("drill").get_by_test_id("csv-orders").get_attribute("href")
    assert "metric=failed" in csv_href and f"from={D1}" in csv_href

    response = page.request.get(csv_href)
    assert response.ok and response.headers["content-type"].startswith("text/csv")
    assert "o2" in response.text()
    assert errors == []
