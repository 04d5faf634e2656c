"""Inputs found by fuzzing the API that once reached the database layer: each is now a
clear 4xx, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import base64

import pytest

from apps.dispatch.models import Order
from tests.factories import OrderFactory, order_payload

ORDERS = "/api/v1/orders/"


@pytest.mark.parametrize(("url", "params"), [
    ("/api/v1/orders/", {"hub": str(2**64)}),
    ("/api/v1/orders/", {"route": "٣"}),
    ("/api/v1/routes/", {"driver": str(2**63)}),
    ("/api/v1/stops/", {"order": "1e3"}),
])
def test_an_id_filter_that_cannot_name_a_row_is_a_400(as_dave, url, params):
    response = as_dave.get(url, params)

    assert response.status_code == 400
    assert set(response.json()["fields"]) == set(params)


def test_an_id_in_the_path_beyond_64_bits_is_a_404(as_dave):
    assert as_dave.get(f"{ORDERS}{2**64}/").status_code == 404


def test_an_id_in_the_body_beyond_64_bits_is_a_400(as_dave):
    response = as_dave.post(ORDERS, order_payload(hub=2**64), format="json")

    assert response.status_code == 400
    assert "hub" in response.json()["fields"]


def test_text_with_a_nul_character_is_refused_where_it_would_be_stored(as_dave):
    response = as_dave.post(ORDERS, order_payload(instructions="ring\x00twice", custom_fields={"k\x00": "v"}),
                            format="json")

    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"instructions", "custom_fields"}
    assert not Order.objects.exists()


def test_a_filter_with_a_nul_character_is_a_400(as_dave):
    assert as_dave.get(ORDERS, {"q": "a\x00b"}).status_code == 400


def test_a_number_too_large_for_a_float_is_malformed_json(as_dave):
    body = '{"external_id": "X", "custom_fields": {"n": 1e999}}'

    response = as_dave.post(ORDERS, data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_nan_is_not_json(as_dave):
    response = as_dave.post(ORDERS, data='{"lat": NaN}', content_type="application/json")

    assert response.json()["code"] == "malformed_request"


def test_json_nested_past_the_recursion_limit_is_malformed(as_dave):
    response = as_dave.post(ORDERS, data="[" * 100_000 + "]" * 100_000, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"


def test_a_large_offset_is_accepted_and_stored_in_utc(as_dave):
    response = as_dave.post(ORDERS, order_payload(window_start="2026-11-23T09:00:00+23:59",
                                                  window_end="2026-11-23T12:00:00+23:59"), format="json")

    assert response.status_code == 201
    assert response.json()["window_start"] == "2026-11-22T09:01:00Z"


@pytest.mark.parametrize("value", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
def test_an_offset_that_leaves_the_calendar_is_a_400(as_dave, value):
    response = as_dave.post(ORDERS, order_payload(window_start=value, window_end=None), format="json")

    assert response.status_code == 400
    assert "window_start" in response.json()["fields"]


def test_a_filter_date_time_that_leaves_the_calendar_is_a_400(as_dave):
    assert as_dave.get(ORDERS, {"window_from": "9999-12-31T23:00:00-05:00"}).status_code == 400


def test_items_whose_totals_cannot_be_stored_are_refused(as_dave):
    items = [{"sku": "ANVIL", "quantity": 10000, "weight_kg": 1000}]

    response = as_dave.post(ORDERS, order_payload(items=items), format="json")

    assert response.status_code == 400
    assert "items" in response.json()["fields"]


@pytest.mark.parametrize("value", ["²", "٣", "1" * 40])
def test_event_paging_takes_only_plain_digits(as_dave, value):
    assert as_dave.get("/api/v1/events/", {"after": value}).status_code == 400


def test_a_forged_cursor_is_a_404(as_dave, acme):
    OrderFactory(org=acme)
    forged = base64.b64encode(b"o=0&p=not-an-id").decode()

    response = as_dave.get(ORDERS, {"cursor": forged})

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_nulling_the_geocode_confidence_derives_it_again(as_dave):
    order_id = as_dave.post(ORDERS, order_payload(geocode_confidence="approximate"), format="json").json()["id"]

    response = as_dave.patch(f"{ORDERS}{order_id}/", {"geocode_confidence": None}, format="json")

    assert response.status_code == 200
    assert response.json()["geocode_confidence"] == "exact"
