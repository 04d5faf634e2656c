"""Planning in a real browser: Dave plans the day and publishes it; a van breaks down,
the replan's diff is shown on the console and applied."""

from __future__ import annotations

import time as clock
from datetime import datetime, time, timedelta

import pytest
from playwright.sync_api import Page, expect

from apps.dispatch.models import Route, RouteStatus, StopState
from apps.planning.models import PlanningPolicy, PlanRun, PlanStatus
from apps.planning.replans import replan_execute
from apps.planning.services import plan_execute
from tests.e2e.conftest import BERLIN, NORTH, SOUTH, UNPLANNED, WEST, sign_in
from tests.factories import DriverFactory, OrderFactory, VehicleFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _wait_for(query, timeout=20):
    """The test plays the task worker: wait for the job the page queued, by polling the database."""
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        found = query()
        if found is not None:
            return found
        clock.sleep(0.1)  # a real browser is creating it; there is no clock to inject
    raise AssertionError("the page never queued the job")


@pytest.fixture
def open_day(acme, acme_hub, acme_van, bob):
    """Today at Acme: three vans at the hub and sixteen orders nobody has planned yet."""
    day = datetime.now(BERLIN).date()
    # Shifts around the clock: the test runs at any hour.
    bob.shift_start, bob.shift_end = time(0, 0), time(23, 59)
    bob.save()
    # Seven parcels a van: sixteen orders need all three.
    acme_van.capacity_parcels = 7
    acme_van.save()
    for name in ("Dana Fischer", "Emil Ernst"):
        DriverFactory(org=acme, name=name, home_hub=acme_hub, shift_start=time(0, 0), shift_end=time(23, 59),
                      current_vehicle=VehicleFactory(org=acme, home_hub=acme_hub, capacity_parcels=7))
    start = datetime.now(BERLIN).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    for index, (name, street, lat, lng) in enumerate(NORTH + SOUTH + WEST + UNPLANNED):
        OrderFactory(org=acme, hub=acme_hub, customer_name=name, address_line1=street, lat=lat, lng=lng,
                     window_start=start, window_end=start + timedelta(hours=6), external_id=f"E2E-{index}")
    PlanningPolicy.objects.create(org=acme, replan_time_limit_s=0.5, coalesce_s=0)
    return day


def test_dave_plans_publishes_and_applies_a_breakdown_replan(page: Page, asgi_live_server, dave, open_day):
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, asgi_live_server, "dave", open_day)

    page.get_by_test_id("planning-toggle").click()
    page.get_by_label("Time limit in seconds").fill("1")
    page.get_by_test_id("plan-start").click()
    plan = _wait_for(lambda: PlanRun.objects.filter(kind="day").first())
    expect(page.get_by_test_id("plan-progress")).to_be_visible()
    plan_execute(plan_id=plan.pk)

    draft = page.get_by_test_id("plan-draft")
    expect(draft).to_contain_text("16 stops on")
    expect(page.locator("path.draft-stop")).to_have_count(16)  # the draft is drawn on the map
    page.get_by_test_id("plan-publish").click()
    expect(page.get_by_test_id("plan-done")).to_contain_text("Published")
    routes = list(Route.objects.filter(status=RouteStatus.PUBLISHED).order_by("id"))
    assert len(routes) >= 2
    expect(page.get_by_test_id("route-card")).to_have_count(len(routes))  # arrived live on the console

    broken = max(routes, key=lambda r: r.stops.count())
    orphans = set(broken.stops.values_list("order_id", flat=True))
    report = page.get_by_test_id("report-exception")
    expect(report.get_by_label("Route").locator("option")).to_have_count(len(routes) + 1)
    report.get_by_label("Route").select_option(str(broken.pk))
    report.get_by_label("What happened").select_option("vehicle_breakdown")
    page.get_by_test_id("report-submit").click()
    replan = _wait_for(lambda: PlanRun.objects.filter(kind="replan").first())
    expect(page.locator(".feed")).to_contain_text("Exception: vehicle breakdown")  # on the live feed
    assert replan_execute(plan_id=replan.pk).status == PlanStatus.READY
    replan.refresh_from_db()
    moved_to_others = [m for m in replan.diff["moved"] if m["to_driver_id"]]
    assert moved_to_others

    diff = page.get_by_test_id("replan-diff")
    expect(diff).to_be_visible(timeout=10_000)
    expect(diff.get_by_test_id("diff-compare")).to_contain_text("Distance")
    expect(diff.get_by_test_id("diff-moves").locator("li")).to_have_count(len(replan.diff["moved"]))
    expect(diff.get_by_test_id("diff-moves")).to_contain_text(broken.driver.name)
    page.get_by_test_id("replan-apply").click()

    expect(page.get_by_test_id("exceptions-message")).to_contain_text("applied")
    expect(page.locator(".feed")).to_contain_text("Replan applied to")
    assert not Route.objects.get(pk=broken.pk).stops.filter(state=StopState.PENDING).exists()
    taken = {o for r in routes if r.pk != broken.pk
             for o in Route.objects.get(pk=r.pk).stops.filter(state=StopState.PENDING).values_list("order_id", flat=True)}
    # Each of the broken van's orders is on another van now, or listed on the diff as not placeable.
    assert orphans <= taken | {u["order_id"] for u in replan.diff["unassigned"]}
    assert errors == []
