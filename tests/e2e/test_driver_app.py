"""The driver app in a real browser against Daphne: Bob signs in, starts his shift,
loses the network, delivers one stop with a photo and a drawn signature and fails
another, gets the network back; the outbox drains, each action reaches the server
exactly once, and Dave's console shows the delivery with its photo."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from apps.dispatch.models import Driver, Order, Stop
from apps.events.models import Event
from apps.pod.models import DriverAction, PodMedia, ProofOfDelivery
from apps.tracking.models import LocationPing
from tests.e2e.conftest import sign_in
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
# Near Bernauer Straße 111 (Paul Wagner, stop 4).
AT_THE_DOOR = {"latitude": 52.53535, "longitude": 13.39045, "accuracy": 8}


def door_photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (181, 137, 87)).save(out, "JPEG", quality=85)
    return out.getvalue()


def open_driver_app(browser: Browser, server, bob) -> Page:
    context = browser.new_context(**PHONE, locale="en-GB", geolocation=AT_THE_DOOR, permissions=["geolocation"])
    page = context.new_page()
    page.on("console", lambda m: print(f"[browser {m.type}] {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: print(f"[page error] {e}"))
    page.goto(f"{server.url}/driver/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/driver/"))
    page.get_by_label("Username").fill(bob.user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/driver/")
    return page


def card(page: Page, stop) -> object:
    return page.locator(f'[data-testid="stop-card"][data-stop-id="{stop.pk}"]')


def draw_signature(page: Page) -> None:
    box = page.get_by_test_id("signature-pad").bounding_box()
    x, y = box["x"] + 30, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for i in range(1, 16):
        page.mouse.move(x + i * 15, y + (18 if i % 2 else -18), steps=3)
    page.mouse.up()


def test_a_driver_works_offline_and_everything_reaches_the_server_exactly_once(
        browser: Browser, asgi_live_server, acme_day, dave):
    bob, stops = acme_day["bob"], acme_day["bobs_stops"]
    paul, mia = stops[3], stops[4]
    Order.objects.filter(pk=paul.order_id).update(pod_requirements=["photo", "signature"])
    Driver.objects.filter(pk=bob.pk).update(on_duty=False)  # Bob starts his shift in the app

    page = open_driver_app(browser, asgi_live_server, bob)
    expect(page.get_by_test_id("stop-card")).to_have_count(5)
    expect(page.get_by_test_id("sync-status")).to_contain_text("Online")
    expect(card(page, paul)).to_contain_text("Photo, Signature")
    expect(page.get_by_test_id("duty")).to_have_text("Start shift")
    page.get_by_test_id("duty").click()
    expect(page.get_by_test_id("duty")).to_have_text("End shift")
    assert Driver.objects.get(pk=bob.pk).on_duty
    page.evaluate("navigator.serviceWorker.ready")

    # The network goes; the app still opens, from the service worker and IndexedDB.
    page.context.set_offline(True)
    page.reload()
    expect(page.get_by_test_id("stop-card")).to_have_count(5)
    expect(page.get_by_test_id("sync-status")).to_contain_text("Offline")
    expect(page.get_by_test_id("duty")).to_have_text("End shift")  # the phone remembers the shift

    # Stop 4: deliver with a photo from the camera and a signature.
    card(page, paul).click()
    expect(page.get_by_test_id("proof-needed")).to_have_text("Photo, Signature")
    page.get_by_role("button", name="Deliver", exact=True).click()
    page.get_by_role("button", name="Confirm delivery").click()
    expect(page.get_by_test_id("missing-photos")).to_be_visible()  # the app checks the rules itself
    expect(page.get_by_test_id("missing-signature")).to_be_visible()
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Take photo").click()
    chooser.value.set_files(files=[{"name": "IMG_2041.jpg", "mimeType": "image/jpeg", "buffer": door_photo()}])
    expect(page.get_by_role("img", name="Photo 1")).to_be_visible()
    draw_signature(page)
    page.get_by_label("Recipient's name (optional)").fill("P. Wagner")
    page.get_by_role("button", name="Confirm delivery").click()
    expect(page.get_by_test_id("stop-state")).to_have_text("Delivered")
    expect(page.get_by_test_id("pending-count")).to_have_text("· 1 waiting to sync")

    # Stop 5: nobody home.
    page.get_by_role("button", name="‹ All stops").click()
    card(page, mia).click()
    page.get_by_role("button", name="Could not deliver").click()
    page.get_by_label("Recipient absent").check()
    page.get_by_label("Notes").fill("Rang twice, no answer")
    page.get_by_role("button", name="Report failed delivery").click()
    expect(page.get_by_test_id("pending-count")).to_have_text("· 2 waiting to sync")

    # Nothing has reached the server yet, and the photo is kept on the phone.
    assert Stop.objects.get(pk=paul.pk).state == "pending"
    assert Stop.objects.get(pk=mia.pk).state == "pending"
    assert page.evaluate("""() => new Promise((resolve) => {
        const open = indexedDB.open("lastmile-driver");
        open.onsuccess = () => {
            const request = open.result.transaction("blobs").objectStore("blobs").count();
            request.onsuccess = () => resolve(request.result);
        };
    })""") == 2

    # Back online: the outbox drains.
    page.context.set_offline(False)
    expect(page.get_by_test_id("pending-count")).to_have_text("· all synced", timeout=20_000)
    expect(page.get_by_test_id("sync-status")).to_contain_text("Online")
    # The positions recorded offline went up as one HTTP batch.
    expect(page.get_by_test_id("sync-status")).not_to_contain_text("locations kept", timeout=10_000)
    # (The emulated GPS repeats one fix with one device time: the server keeps it once.)
    assert LocationPing.objects.filter(driver=bob).exists()

    paul_now, mia_now = Stop.objects.get(pk=paul.pk), Stop.objects.get(pk=mia.pk)
    assert (paul_now.state, paul_now.outcome) == ("completed", "succeeded")
    assert (mia_now.state, mia_now.outcome, mia_now.failure_reason) == ("completed", "failed", "recipient_absent")
    assert mia_now.notes == "Rang twice, no answer"
    # Exactly once: one action each, one completion event, one POD, each image stored once.
    assert DriverAction.objects.count() == 2
    assert Event.objects.filter(type="stop.completed", subject_id=str(paul.pk)).count() == 1
    assert Event.objects.filter(type="stop.failed", subject_id=str(mia.pk)).count() == 1
    pod = ProofOfDelivery.objects.get()
    assert pod.stop_id == paul.pk and pod.recipient_name == "P. Wagner"
    assert pod.photos.count() == 1 and pod.signature is not None
    assert "captured_offline" in pod.flags and pod.distance_m is not None and pod.distance_m < 100
    assert PodMedia.objects.count() == 2
    assert PodMedia.objects.get(kind="photo").original_bytes == len(door_photo())
    # Acknowledged images are gone from the phone.
    assert page.evaluate("""() => new Promise((resolve) => {
        const open = indexedDB.open("lastmile-driver");
        open.onsuccess = () => {
            const request = open.result.transaction("blobs").objectStore("blobs").count();
            request.onsuccess = () => resolve(request.result);
        };
    })""") == 0

    # Dave's console shows the delivered stop with its photo.
    console = browser.new_page()
    sign_in(console, asgi_live_server, dave.username, acme_day["day"])
    console.locator(f'[data-testid="route-card"][data-route-id="{acme_day["bobs"].pk}"]').click()
    console.locator(f'[data-testid="stop-row"][data-stop-id="{paul.pk}"] button').click()
    pod_panel = console.get_by_test_id("pod")
    expect(pod_panel).to_contain_text("P. Wagner")
    photo = pod_panel.get_by_test_id("pod-photo").first
    expect(photo).to_be_visible()
    console.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=photo.element_handle())
    expect(pod_panel.get_by_test_id("pod-signature")).to_be_visible()
    expect(pod_panel).to_contain_text("m from the address")


def test_changes_from_dispatch_appear_live_with_a_notice(browser: Browser, asgi_live_server, acme_day, acme):
    """Dispatch cancels one of Bob's orders and adds another while his app is open."""
    from apps.accounts.actor import system_actor
    from apps.dispatch.models import Route
    from apps.dispatch.services.orders import order_cancel
    from apps.dispatch.services.routes import route_set_stops
    from tests.factories import OrderFactory

    bob, stops = acme_day["bob"], acme_day["bobs_stops"]
    page = open_driver_app(browser, asgi_live_server, bob)
    expect(page.get_by_test_id("stop-card")).to_have_count(5)
    expect(page.get_by_test_id("sync-status")).to_contain_text("Online")
    actor = system_actor(acme)
    route = Route.objects.get(pk=acme_day["bobs"].pk)

    order_cancel(actor=actor, order=stops[4].order, reason="customer moved")
    extra = OrderFactory(org=acme, customer_name="Nina Sommer", address_line1="Zionskirchstraße 5", lat=52.5340,
                         lng=13.4030)
    pending = [s.order_id for s in Stop.objects.filter(route=route, state="pending").order_by("sequence")]
    route_set_stops(actor=actor, route=route, order_ids=[*pending, extra.pk])

    # The server tells the app by its socket (here within a heartbeat: the test process
    # has no channel layer, so the socket finds the changes in the event log).
    notice = page.get_by_test_id("notice")
    expect(notice.first).to_be_visible(timeout=15_000)
    expect(page.locator(".notices")).to_contain_text("New stop: Nina Sommer")
    expect(page.locator(".notices")).to_contain_text("Cancelled: Mia Hoffmann")
    expect(page.get_by_test_id("stop-card")).to_have_count(6)
    expect(card(page, stops[4])).to_contain_text("Cancelled")


def test_a_delivery_made_offline_after_dispatch_cancelled_the_order_goes_to_review(
        browser: Browser, asgi_live_server, acme_day, acme, dave):
    """Bob delivers stop 4 offline; meanwhile dispatch cancelled its order. Nothing is
    overwritten: the order stays cancelled, Bob's proof is kept, dispatch gets an exception."""
    from apps.accounts.actor import system_actor
    from apps.dispatch.services.orders import order_cancel
    from apps.pod.models import DispatchException

    bob, stops = acme_day["bob"], acme_day["bobs_stops"]
    paul = stops[3]
    page = open_driver_app(browser, asgi_live_server, bob)
    expect(page.get_by_test_id("stop-card")).to_have_count(5)
    page.context.set_offline(True)
    expect(page.get_by_test_id("sync-status")).to_contain_text("Offline")
    order_cancel(actor=system_actor(acme), order=paul.order, reason="customer called")

    card(page, paul).click()
    page.get_by_role("button", name="Deliver", exact=True).click()
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Take photo").click()
    chooser.value.set_files(files=[{"name": "IMG_2042.jpg", "mimeType": "image/jpeg", "buffer": door_photo()}])
    page.get_by_role("button", name="Confirm delivery").click()
    expect(page.get_by_test_id("pending-count")).to_have_text("· 1 waiting to sync")

    page.context.set_offline(False)
    expect(page.get_by_test_id("pending-count")).to_have_text("· all synced", timeout=20_000)
    expect(page.locator(".notices")).to_contain_text("Sent to dispatch for review")

    assert Order.objects.get(pk=paul.order_id).state == "cancelled"
    exception = DispatchException.objects.get()
    assert (exception.kind, exception.stop_id) == ("completed_after_close", paul.pk)
    assert ProofOfDelivery.objects.get().photos.count() == 1

    # Dave sees it to review, with Bob's photo on the stop, and marks it reviewed.
    console = browser.new_page()
    sign_in(console, asgi_live_server, dave.username, acme_day["day"])
    review = console.get_by_test_id("exceptions")
    expect(review).to_contain_text("Delivered after the order closed")
    review.get_by_role("button", name="Show").click()
    expect(console.get_by_test_id("pod")).to_contain_text("Completed after the order was closed: review")
    expect(console.get_by_test_id("pod-photo")).to_be_visible()
    console.get_by_role("button", name="‹ All routes").click()
    console.get_by_test_id("exceptions").get_by_role("button", name="Mark reviewed").click()
    expect(console.get_by_test_id("exceptions")).to_have_count(0)
    exception.refresh_from_db()
    assert exception.resolved_at is not None


def test_the_driver_sees_what_the_customer_said_on_the_tracking_page(browser: Browser, asgi_live_server, acme_day):
    """Before Bob sets off, the customer of his first stop leaves a note, a gate code and
    a confirmed drop-off pin on her tracking page; his app shows them on the stop."""
    from django.utils import timezone

    from apps.tracking.models import DeliveryPreferences

    bob, stops = acme_day["bob"], acme_day["bobs_stops"]
    order = stops[0].order
    # Saved on the tracking page before Bob set off (preferences_set refuses afterwards).
    DeliveryPreferences.objects.create(org=order.org, order=order, instructions="Parcel box behind the blue door",
                                       gate_code="4711#", pin_lat=order.lat + 0.0002, pin_lng=order.lng,
                                       pin_confirmed_at=timezone.now())
    page = open_driver_app(browser, asgi_live_server, bob)
    card(page, stops[0]).click()

    expect(page.get_by_test_id("customer-note")).to_have_text("Parcel box behind the blue door")
    expect(page.get_by_test_id("gate-code")).to_have_text("4711#")
    expect(page.get_by_test_id("customer-pin")).to_be_visible()
    expect(page.get_by_test_id("navigate")).to_have_attribute("href", re.compile(rf"destination={order.lat + 0.0002}"))
