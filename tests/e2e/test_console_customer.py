"""What the console shows of the customer side: on a stop's detail, the customer's notes
from the tracking page and every message sent to them; and the day's ETA accuracy."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from apps.notifications.services import message_prepare, message_send
from apps.tracking.models import DeliveryPreferences
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_stops_detail_shows_the_customers_notes_and_messages(page: Page, asgi_live_server, dave, acme_day):
    mia = acme_day["bobs_stops"][4].order  # still to come
    DeliveryPreferences.objects.create(order=mia, org=mia.org, instructions="Back door, ring twice", gate_code="4711")
    message_send(message_id=message_prepare(order_id=mia.pk, trigger="out_for_delivery").pk)

    sign_in(page, asgi_live_server, "dave", acme_day["day"])
    page.get_by_test_id("route-card").filter(has_text="Prenzlauer Berg").click()
    page.get_by_test_id("stop-row").nth(4).click()

    detail = page.get_by_test_id("stop-detail")
    expect(detail).to_contain_text("Back door, ring twice")
    expect(detail).to_contain_text("4711")
    messages = detail.get_by_test_id("order-messages")
    expect(messages).to_contain_text("out for delivery")
    expect(messages).to_contain_text("sms")
    expect(messages).to_contain_text("Delivered")  # the logging SMS backend delivers at once


def test_the_eta_accuracy_page_is_one_click_from_the_console(page: Page, asgi_live_server, dave, acme_day):
    sign_in(page, asgi_live_server, "dave", acme_day["day"])

    page.get_by_test_id("eta-accuracy-link").click()

    table = page.get_by_test_id("eta-accuracy")
    expect(table).to_contain_text("All routes")
    # Bob's route has completed stops (one delivered, one failed at the door): it has a row.
    expect(table).to_contain_text("Prenzlauer Berg")
