"""The console live, in a real browser against Daphne: drivers' markers move as their
phones ping, stops change colour as they are completed, and a dropped connection comes
back and catches up from the event log (docs/realtime.md)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.e2e.conftest import HEARTBEAT_S, api_post
from tests.realtime.servers import session_cookie

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Where Bob and Dana are when the test starts, and a little further on.
BOB_AT = (52.5330, 13.3950)
DANA_AT = (52.5060, 13.3930)
STEP = 0.0025  # ~280 m north: 28 m/s over the pings' 10 s, a plausible van


def open_console(page: Page, server, acme_day, dave) -> None:
    """Dave's console on today (as a date: a run across midnight must not flake), already
    signed in (test_console.py goes through the sign-in form)."""
    name, value = session_cookie(dave).split("=", 1)
    page.context.add_cookies([{"name": name, "value": value, "url": server.url}])
    page.goto(f"{server.url}/console/?date={acme_day['day'].isoformat()}")
    expect(page.get_by_test_id("live-status")).to_have_text("Live")


def driver_marker(page: Page, driver):
    return page.locator(f'[data-testid="driver-marker"][data-driver-id="{driver.pk}"]')


def stop_marker(page: Page, stop):
    return page.locator(f'.stop-marker[data-stop-id="{stop.pk}"]')


def test_drivers_appear_on_the_map_and_move_smoothly_as_their_phones_ping(
        page: Page, asgi_live_server, dave, acme_day, driver_devices):
    bob, dana = acme_day["bob"], acme_day["dana"]
    open_console(page, asgi_live_server, acme_day, dave)
    expect(page.get_by_test_id("driver-marker")).to_have_count(0)

    bobs_phone, danas_phone = driver_devices(bob), driver_devices(dana)
    bobs_phone.ping(*BOB_AT, seconds_ago=20)
    danas_phone.ping(*DANA_AT, seconds_ago=20)

    expect(driver_marker(page, bob)).to_be_visible()
    expect(driver_marker(page, dana)).to_be_visible()
    expect(driver_marker(page, bob)).to_have_text("BB")
    before = driver_marker(page, bob).bounding_box()

    # Record every position the marker is drawn at while it moves to the next fix.
    driver_marker(page, bob).evaluate("""element => {
        window.drawnAt = [];
        new MutationObserver(() => window.drawnAt.push(element.style.transform))
            .observe(element, {attributes: true, attributeFilter: ["style"]});
    }""")
    bobs_phone.ping(BOB_AT[0] + STEP, BOB_AT[1], seconds_ago=10)
    page.wait_for_function("new Set(window.drawnAt).size > 1")  # on its way
    expect(driver_marker(page, bob)).not_to_have_class(re.compile(r"\bis-gliding\b"))

    after = driver_marker(page, bob).bounding_box()
    assert after["y"] < before["y"] - 10, (before, after)  # north is up
    assert abs(after["x"] - before["x"]) < 2
    # It glided through positions in between rather than jumping.
    assert len(set(page.evaluate("window.drawnAt"))) >= 5

    # The side list: who is on duty, last seen, next stop, stops done.
    page.get_by_test_id("tab-drivers").click()
    bobs_row = page.locator(f'[data-testid="driver-row"][data-driver-id="{bob.pk}"]')
    expect(bobs_row).to_contain_text("On duty")
    expect(bobs_row.get_by_test_id("driver-next")).to_have_text("At: 3 · Kastanienallee 12")
    expect(bobs_row.get_by_test_id("driver-progress")).to_have_text("2/5")
    expect(bobs_row.get_by_test_id("driver-seen")).to_have_text(re.compile(r"^(\d+ s ago|just now)$"))
    danas_row = page.locator(f'[data-testid="driver-row"][data-driver-id="{dana.pk}"]')
    expect(danas_row).to_contain_text("Off duty")
    expect(danas_row.get_by_test_id("driver-next")).to_have_text("Next: 1 · Friedrichstraße 43")

    # Clicking a driver shows their details.
    bobs_row.click()
    detail = page.get_by_test_id("driver-detail")
    expect(detail).to_contain_text("Bob Baker")
    expect(detail).to_contain_text("Prenzlauer Berg")
    expect(detail.get_by_test_id("driver-last-seen")).to_have_text(re.compile(r"ago|just now"))
    expect(driver_marker(page, bob)).to_have_class(re.compile(r"\bis-selected\b"))

    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        page.get_by_role("button", name="‹ All drivers").click()
        danas_phone.ping(DANA_AT[0] + STEP, DANA_AT[1] + STEP, seconds_ago=5)
        api_post(page, f"/api/v1/stops/{acme_day['bobs_stops'][2].pk}/complete/")
        expect(page.get_by_test_id("feed-item").first).to_contain_text("completed stop 3")
        page.wait_for_timeout(1200)  # glide and fade-in done
        path = Path(settings.BASE_DIR) / "docs" / "screenshot-console.png"
        page.screenshot(path=str(path))

    # Another day is a static picture: not live, no positions.
    page.get_by_role("button", name="Next day").click()
    expect(page.get_by_test_id("live-status")).to_have_text("Not live")
    expect(page.get_by_test_id("driver-marker")).to_have_count(0)
    expect(page.get_by_test_id("feed")).to_have_count(0)
    page.get_by_role("button", name="Today", exact=True).click()
    expect(page.get_by_test_id("live-status")).to_have_text("Live")
    expect(driver_marker(page, bob)).to_be_visible()


def test_a_completed_stop_changes_colour_and_shows_in_the_feed_without_a_reload(
        page: Page, asgi_live_server, dave, acme_day):
    danas_first = acme_day["danas_stops"][0]
    open_console(page, asgi_live_server, acme_day, dave)
    page.evaluate("window.sameDocument = true")
    expect(stop_marker(page, danas_first)).to_have_class(re.compile(r"\bis-pending\b"))

    api_post(page, f"/api/v1/stops/{danas_first.pk}/complete/")

    expect(stop_marker(page, danas_first)).to_have_class(re.compile(r"\bis-succeeded\b"))
    kreuzberg = page.get_by_test_id("route-card").filter(has_text="Kreuzberg")
    expect(kreuzberg.get_by_test_id("route-progress")).to_have_text("1 / 4 stops")
    expect(kreuzberg).to_contain_text("In progress")
    items = page.get_by_test_id("feed-item")
    expect(items.first).to_have_text(re.compile(r"^\d\d:\d\d\s*Dana Fischer completed stop 1 \(Friedrichstraße 43\)$"))
    expect(items.nth(1)).to_contain_text("Dana Fischer started Kreuzberg")
    expect(items.nth(2)).to_contain_text("Dana Fischer went on duty")
    assert page.evaluate("window.sameDocument") is True

    # Clicking the stop on the map shows its details; so does its line in the feed.
    stop_marker(page, danas_first).click()
    detail = page.get_by_test_id("stop-detail")
    expect(detail).to_contain_text("Felix Schulz")
    expect(detail).to_contain_text("Friedrichstraße 43")
    expect(detail.get_by_test_id("stop-detail-status")).to_have_text("Delivered")
    page.get_by_role("button", name="Close stop details").click()
    expect(detail).to_have_count(0)
    items.first.click()
    expect(detail).to_contain_text("Felix Schulz")


def test_a_dropped_connection_reconnects_and_applies_what_happened_meanwhile(
        page: Page, asgi_live_server, dave, acme_day):
    danas_first = acme_day["danas_stops"][0]
    sockets: list[WebSocketRoute] = []
    refuse = {"on": False}

    def through_proxy(ws: WebSocketRoute) -> None:
        # Between the page and the server, so the test can cut the line.
        if refuse["on"]:
            ws.close(code=1013, reason="Try again later")
            return
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/console/$"), through_proxy)
    open_console(page, asgi_live_server, acme_day, dave)

    # The connection drops and stays down while Dana completes her first stop.
    refuse["on"] = True
    sockets[-1].close(code=1011, reason="Server restarting")
    expect(page.get_by_test_id("live-status")).to_have_text("Reconnecting…")
    api_post(page, f"/api/v1/stops/{danas_first.pk}/complete/")
    page.wait_for_timeout(300)
    expect(stop_marker(page, danas_first)).to_have_class(re.compile(r"\bis-pending\b"))

    # Back: the page says hello with the last sequence it applied and gets the rest.
    refuse["on"] = False
    expect(page.get_by_test_id("live-status")).to_have_text("Live", timeout=10_000)
    assert len(sockets) == 2
    expect(stop_marker(page, danas_first)).to_have_class(re.compile(r"\bis-succeeded\b"))
    expect(page.get_by_test_id("feed-item").first).to_contain_text("Dana Fischer completed stop 1")


def test_a_silent_connection_is_noticed_by_its_missing_heartbeats(page: Page, asgi_live_server, dave, acme_day):
    sockets: list[WebSocketRoute] = []
    mute = {"on": False}

    def through_proxy(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        server.on_message(lambda message: None if mute["on"] else ws.send(message))
        sockets.append(ws)

    page.route_web_socket(re.compile(r"/ws/console/$"), through_proxy)
    open_console(page, asgi_live_server, acme_day, dave)

    # A half-open connection: nothing arrives, yet the browser sees no close.
    mute["on"] = True
    expect(page.get_by_test_id("live-status")).to_have_text("Reconnecting…", timeout=HEARTBEAT_S * 2500 + 2000)
    mute["on"] = False
    expect(page.get_by_test_id("live-status")).to_have_text("Live", timeout=5000)
    assert len(sockets) == 2


def test_the_console_says_when_the_browser_is_offline(page: Page, asgi_live_server, dave, acme_day):
    open_console(page, asgi_live_server, acme_day, dave)

    page.context.set_offline(True)
    expect(page.get_by_test_id("live-status")).to_have_text("Offline")
    page.context.set_offline(False)
    expect(page.get_by_test_id("live-status")).to_have_text("Live")


def test_the_simulated_fleet_drives_across_the_console(page: Page, asgi_live_server, dave, acme_day):
    """`manage.py simulate_fleet`, as the start command runs it: real drivers' logins and
    sockets, moving along their routes; the dispatcher watches their markers move."""
    import subprocess
    import sys

    from tests.factories import PASSWORD

    bob, dana = acme_day["bob"], acme_day["dana"]
    open_console(page, asgi_live_server, acme_day, dave)
    fleet = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_fleet", "--url", asgi_live_server.url,
         "--drivers", f"{bob.user.username},{dana.user.username}", "--password", PASSWORD,
         "--date", acme_day["day"].isoformat(), "--speedup", "10", "--ping-interval", "1", "--max-seconds", "40"],
        cwd=settings.BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        expect(driver_marker(page, bob)).to_be_visible(timeout=20_000)
        expect(driver_marker(page, dana)).to_be_visible(timeout=20_000)
        start = {d.pk: driver_marker(page, d).bounding_box() for d in (bob, dana)}
        page.wait_for_function(
            """([ids, start]) => ids.every(id => {
                const box = document.querySelector(`[data-testid="driver-marker"][data-driver-id="${id}"]`)
                    .getBoundingClientRect();
                return Math.hypot(box.x - start[id].x, box.y - start[id].y) > 3;
            })""",
            arg=[[bob.pk, dana.pk], {str(k): v for k, v in start.items()}], timeout=25_000,
        )
    finally:
        fleet.terminate()
        output, _ = fleet.communicate(timeout=15)
    assert "rejected" not in output or " 0 rejected" in output, output


def test_a_large_organizations_snapshot_comes_in_pages_and_is_assembled_before_the_console_goes_live(
        page: Page, asgi_live_server, dave, acme_day, driver_devices):
    """Four thousand more drivers: their rows alone are over 1 MiB, paged past 768 KiB."""
    from tests.realtime.fleets import large_fleet_create

    large_fleet_create(acme_day["bob"].org, 4000, positions=False)
    bob, dana = acme_day["bob"], acme_day["dana"]
    driver_devices(bob).ping(*BOB_AT, seconds_ago=20)  # before the console opens: in its snapshot
    frames = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda frame: frames.append(str(frame)[:40])))

    open_console(page, asgi_live_server, acme_day, dave)

    assert any('"type": "snapshot.page"' in frame for frame in frames)
    assert any('"type": "snapshot.end"' in frame for frame in frames)
    expect(driver_marker(page, bob)).to_be_visible()  # a position from the last page
    expect(stop_marker(page, acme_day["danas_stops"][0])).to_have_class(re.compile(r"\bis-pending\b"))
    page.get_by_test_id("tab-drivers").click()
    expect(page.locator(f'[data-testid="driver-row"][data-driver-id="{dana.pk}"]')).to_be_visible()
