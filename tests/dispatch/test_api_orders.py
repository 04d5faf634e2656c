"""The orders API: ingest (single and bulk, idempotent), validation, filters, updates."""

from __future__ import annotations

import json

import pytest

from apps.dispatch.models import Order, OrderItem
from apps.events.models import Event
from tests.factories import OrderFactory, order_payload

URL = "/api/v1/orders/"
BULK = "/api/v1/orders/bulk/"


def _counts():
    return Order.objects.count(), OrderItem.objects.count(), Event.objects.count()


class TestCreate:
    def test_it_creates_an_order_with_items_and_totals(self, as_dave, acme, acme_hub):
        response = as_dave.post(URL, order_payload(hub=acme_hub.pk), format="json")

        assert response.status_code == 201
        body = response.json()
        assert body["state"] == "created"
        assert body["outcome"] == ""
        assert body["hub"] == acme_hub.pk
        assert body["parcel_count"] == 2
        assert body["total_weight_kg"] == "0.80"
        assert body["total_volume_l"] == "2.40"
        assert body["geocode_confidence"] == "exact"
        assert body["items"] == [
            {"sku": "MUG-RED", "description": "Red mug", "quantity": 2, "weight_kg": "0.400", "volume_l": "1.200"}
        ]
        order = Order.objects.get(pk=body["id"])
        assert order.org == acme

    def test_it_records_an_order_created_event(self, as_dave, acme):
        order_id = as_dave.post(URL, order_payload(), format="json").json()["id"]

        event = Event.objects.get(org=acme, type="order.created")
        assert event.subject_id == str(order_id)
        assert event.payload["external_id"] == "SHOP-1001"
        assert event.actor.startswith("user:")

    def test_reposting_the_same_order_returns_the_existing_one(self, as_dave):
        first = as_dave.post(URL, order_payload(), format="json")
        before = _counts()

        again = as_dave.post(URL, order_payload(), format="json")

        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        assert _counts() == before

    def test_the_same_key_with_different_content_is_a_conflict(self, as_dave):
        first = as_dave.post(URL, order_payload(), format="json").json()
        before = _counts()

        response = as_dave.post(URL, order_payload(customer_name="Somebody Else"), format="json")

        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_conflict"
        assert response.json()["existing_id"] == first["id"]
        assert _counts() == before
        assert Order.objects.get(pk=first["id"]).customer_name == "Erika Mustermann"

    def test_the_same_external_id_from_another_source_is_another_order(self, as_dave):
        as_dave.post(URL, order_payload(), format="json")

        response = as_dave.post(URL, order_payload(source="shopify:acme-store"), format="json")

        assert response.status_code == 201
        assert Order.objects.count() == 2

    def test_key_order_inside_custom_fields_does_not_make_a_conflict(self, as_dave):
        as_dave.post(URL, order_payload(custom_fields={"a": 1, "b": 2}), format="json")

        response = as_dave.post(URL, order_payload(custom_fields={"b": 2, "a": 1}), format="json")

        assert response.status_code == 200

    def test_an_order_without_coordinates_is_marked_not_geocoded(self, as_dave):
        body = order_payload()
        del body["lat"], body["lng"]

        response = as_dave.post(URL, body, format="json")

        assert response.status_code == 201
        assert response.json()["geocode_confidence"] == "none"

    def test_a_hub_of_another_organization_is_rejected_without_saying_it_exists(self, as_dave, globex):
        from tests.factories import HubFactory

        foreign_hub = HubFactory(org=globex)

        response = as_dave.post(URL, order_payload(hub=foreign_hub.pk), format="json")

        assert response.status_code == 400
        assert response.json()["fields"] == {"hub": ["No such hub."]}
        assert Order.objects.count() == 0


INVALID = [
    ("latitude out of range", {"lat": 91}, "lat"),
    ("longitude out of range", {"lng": -180.5}, "lng"),
    ("latitude as a string", {"lat": "52.5"}, "lat"),
    ("quantity as a string", {"items": [{"sku": "A", "quantity": "2"}]}, "items.0.quantity"),
    ("zero quantity", {"items": [{"sku": "A", "quantity": 0}]}, "items.0.quantity"),
    ("negative weight", {"items": [{"sku": "A", "weight_kg": -1}]}, "items.0.weight_kg"),
    ("weight as a string", {"items": [{"sku": "A", "weight_kg": "1.5"}]}, "items.0.weight_kg"),
    ("unknown POD requirement", {"pod_requirements": ["selfie"]}, "pod_requirements.0"),
    ("unknown geocode confidence", {"geocode_confidence": "great"}, "geocode_confidence"),
    ("priority out of range", {"priority": 9}, "priority"),
    ("priority as a boolean", {"priority": True}, "priority"),
    ("naive window start", {"window_start": "2026-11-23T09:00:00"}, "window_start"),
    ("window that is not a date", {"window_end": "tomorrow"}, "window_end"),
    ("country that is not ISO", {"country": "Germany"}, "country"),
    ("blank customer name", {"customer_name": "  "}, "customer_name"),
    ("bad email", {"customer_email": "not-an-email"}, "customer_email"),
    ("unknown field", {"colour": "blue"}, "colour"),
    ("source with spaces", {"source": "my shop"}, "source"),
]


class TestValidation:
    @pytest.mark.parametrize(("case", "change", "field"), INVALID, ids=[c[0] for c in INVALID])
    def test_it_rejects_invalid_input_naming_the_field_and_writes_nothing(self, as_dave, case, change, field):
        response = as_dave.post(URL, order_payload(**change), format="json")

        assert response.status_code == 400, response.json()
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["message"]
        assert field in body["fields"], body["fields"]
        assert _counts() == (0, 0, 0)

    def test_it_rejects_a_window_that_ends_before_it_starts(self, as_dave):
        response = as_dave.post(URL, order_payload(window_end="2026-11-23T08:00:00+01:00"), format="json")

        assert response.status_code == 400
        assert "window_end must be after window_start" in json.dumps(response.json()["fields"])
        assert Order.objects.count() == 0

    def test_it_rejects_a_latitude_without_longitude(self, as_dave):
        body = order_payload()
        del body["lng"]

        response = as_dave.post(URL, body, format="json")

        assert response.status_code == 400
        assert "lat and lng must be given together" in json.dumps(response.json()["fields"])

    def test_it_lists_every_missing_required_field(self, as_dave):
        response = as_dave.post(URL, {}, format="json")

        assert response.status_code == 400
        assert {"external_id", "customer_name", "address_line1", "city", "country"} <= set(response.json()["fields"])

    def test_it_rejects_malformed_json(self, as_dave):
        response = as_dave.post(URL, data='{"external_id": "x",', content_type="application/json")

        assert response.status_code == 400
        assert response.json()["code"] == "malformed_request"

    def test_it_rejects_a_list_where_an_object_is_expected(self, as_dave):
        response = as_dave.post(URL, [order_payload()], format="json")

        assert response.status_code == 400
        assert response.json()["code"] == "validation_error"


class TestBulk:
    def _batch(self, n: int, **overrides):
        return {"orders": [order_payload(external_id=f"B-{i}", **overrides) for i in range(n)]}

    def test_it_creates_every_order_and_reports_each(self, as_dave, acme):
        response = as_dave.post(BULK, self._batch(5), format="json")

        assert response.status_code == 201
        body = response.json()
        assert body["created"] == 5 and body["existing"] == 0
        assert [r["external_id"] for r in body["results"]] == [f"B-{i}" for i in range(5)]
        assert all(r["status"] == "created" for r in body["results"])
        assert Order.objects.filter(org=acme).count() == 5
        assert OrderItem.objects.count() == 5
        sequences = list(Event.objects.filter(org=acme, type="order.created").values_list("sequence", flat=True))
        assert sequences == list(range(sequences[0], sequences[0] + 5))

    def test_a_retried_batch_creates_nothing_new(self, as_dave):
        as_dave.post(BULK, self._batch(3), format="json")
        before = _counts()

        response = as_dave.post(BULK, self._batch(3), format="json")

        assert response.status_code == 200
        assert response.json()["existing"] == 3
        assert _counts() == before

    def test_a_batch_mixing_new_and_known_orders_creates_only_the_new(self, as_dave):
        as_dave.post(BULK, self._batch(2), format="json")

        response = as_dave.post(BULK, self._batch(4), format="json")

        assert response.status_code == 201
        assert [r["status"] for r in response.json()["results"]] == ["existing", "existing", "created", "created"]
        assert Order.objects.count() == 4

    def test_one_invalid_order_rejects_the_whole_batch(self, as_dave):
        batch = self._batch(4)
        batch["orders"][2]["lat"] = 123

        response = as_dave.post(BULK, batch, format="json")

        assert response.status_code == 400
        assert "orders.2.lat" in response.json()["fields"]
        assert _counts() == (0, 0, 0)

    def test_one_conflicting_order_rejects_the_whole_batch(self, as_dave):
        as_dave.post(URL, order_payload(external_id="B-1"), format="json")
        before = _counts()
        batch = self._batch(3)
        batch["orders"][1]["customer_name"] = "Changed Name"

        response = as_dave.post(BULK, batch, format="json")

        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_conflict"
        assert response.json()["indexes"] == [1]
        assert _counts() == before

    def test_a_batch_repeating_an_external_id_is_rejected(self, as_dave):
        batch = self._batch(2)
        batch["orders"][1]["external_id"] = "B-0"

        response = as_dave.post(BULK, batch, format="json")

        assert response.status_code == 400
        assert "orders.1.external_id" in response.json()["fields"]
        assert Order.objects.count() == 0

    def test_a_batch_over_the_limit_is_rejected_before_validation(self, as_dave, settings):
        settings.BULK_MAX_ORDERS = 3

        response = as_dave.post(BULK, self._batch(4), format="json")

        assert response.status_code == 400
        assert "At most 3 orders" in response.json()["fields"]["orders"][0]

    def test_an_empty_batch_is_rejected(self, as_dave):
        response = as_dave.post(BULK, {"orders": []}, format="json")

        assert response.status_code == 400
        assert "orders" in response.json()["fields"]

    def test_an_oversized_body_is_refused_with_413_and_nothing_is_written(self, as_dave, settings):
        settings.API_MAX_BODY_BYTES = 2000

        response = as_dave.post(BULK, self._batch(10), format="json")

        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert Order.objects.count() == 0


class TestList:
    def test_it_lists_orders_newest_first_with_a_cursor(self, as_dave, acme):
        orders = [OrderFactory(org=acme) for _ in range(5)]

        first = as_dave.get(URL, {"page_size": 2}).json()
        second = as_dave.get(first["next"]).json()
        third = as_dave.get(second["next"]).json()

        seen = [o["id"] for page in (first, second, third) for o in page["results"]]
        assert seen == [o.pk for o in reversed(orders)]
        assert third["next"] is None

    def test_it_filters_by_state(self, as_dave, acme):
        OrderFactory(org=acme, state="created")
        cancelled = OrderFactory(org=acme, state="cancelled")

        response = as_dave.get(URL, {"state": "cancelled"})

        assert [o["id"] for o in response.json()["results"]] == [cancelled.pk]

    def test_it_searches_customer_and_reference(self, as_dave, acme):
        OrderFactory(org=acme, customer_name="Hans Müller")
        wanted = OrderFactory(org=acme, customer_name="Grete Weiß", reference="#77")

        assert [o["id"] for o in as_dave.get(URL, {"q": "Weiß"}).json()["results"]] == [wanted.pk]
        assert [o["id"] for o in as_dave.get(URL, {"q": "#77"}).json()["results"]] == [wanted.pk]

    def test_it_filters_by_delivery_window(self, as_dave, acme):
        from datetime import UTC, datetime

        morning = OrderFactory(org=acme, window_start=datetime(2026, 11, 23, 8, tzinfo=UTC))
        OrderFactory(org=acme, window_start=datetime(2026, 11, 24, 8, tzinfo=UTC))

        response = as_dave.get(URL, {"window_from": "2026-11-23T00:00:00+00:00", "window_to": "2026-11-23T23:59:59+00:00"})

        assert [o["id"] for o in response.json()["results"]] == [morning.pk]

    def test_it_finds_an_order_by_its_external_id(self, as_dave, acme):
        wanted = OrderFactory(org=acme, external_id="SHOP-42")
        OrderFactory(org=acme)

        response = as_dave.get(URL, {"external_id": "SHOP-42"})

        assert [o["id"] for o in response.json()["results"]] == [wanted.pk]

    @pytest.mark.parametrize("params", [{"state": "lost"}, {"window_from": "yesterday"}, {"hub": "x"},
                                        {"created_after": "2026-11-23T00:00:00"}])
    def test_it_rejects_invalid_filters(self, as_dave, params):
        response = as_dave.get(URL, params)

        assert response.status_code == 400
        assert set(response.json()["fields"]) == set(params)


class TestUpdate:
    def test_it_changes_only_the_fields_sent_and_records_them(self, as_dave, acme):
        order_id = as_dave.post(URL, order_payload(), format="json").json()["id"]

        response = as_dave.patch(f"{URL}{order_id}/", {"instructions": "Gate code 4711"}, format="json")

        assert response.status_code == 200
        assert response.json()["instructions"] == "Gate code 4711"
        assert response.json()["customer_name"] == "Erika Mustermann"
        event = Event.objects.get(org=acme, type="order.updated")
        assert event.payload["changed"] == ["instructions"]

    def test_replacing_items_recomputes_the_totals(self, as_dave):
        order_id = as_dave.post(URL, order_payload(), format="json").json()["id"]

        response = as_dave.patch(f"{URL}{order_id}/", {"items": [
            {"sku": "BOX", "quantity": 3, "weight_kg": 5, "volume_l": 20},
        ]}, format="json")

        assert response.json()["parcel_count"] == 3
        assert response.json()["total_weight_kg"] == "15.00"
        assert [i["sku"] for i in response.json()["items"]] == ["BOX"]

    def test_after_an_update_the_partner_reposting_the_new_version_is_a_retry(self, as_dave):
        order_id = as_dave.post(URL, order_payload(), format="json").json()["id"]
        as_dave.patch(f"{URL}{order_id}/", {"customer_name": "Erika Muster"}, format="json")

        response = as_dave.post(URL, order_payload(customer_name="Erika Muster"), format="json")

        assert response.status_code == 200
        assert response.json()["id"] == order_id

    def test_an_update_that_would_invert_the_window_is_rejected(self, as_dave):
        order_id = as_dave.post(URL, order_payload(), format="json").json()["id"]

        response = as_dave.patch(f"{URL}{order_id}/", {"window_end": "2026-11-23T07:00:00+01:00"}, format="json")

        assert response.status_code == 400
        assert Order.objects.get(pk=order_id).window_end.hour == 11  # 12:00+01:00 unchanged

    @pytest.mark.parametrize("field", ["customer_name", "address_line1", "country", "priority", "items"])
    def test_a_required_field_cannot_be_nulled(self, as_dave, field):
        order_id = as_dave.post(URL, order_payload(), format="json").json()["id"]

        response = as_dave.patch(f"{URL}{order_id}/", {field: None}, format="json")

        assert response.status_code == 400
        assert field in response.json()["fields"]

    def test_the_coordinates_can_be_cleared_together(self, as_dave):
        order_id = as_dave.post(URL, order_payload(), format="json").json()["id"]

        response = as_dave.patch(f"{URL}{order_id}/", {"lat": None, "lng": None}, format="json")

        assert response.status_code == 200
        assert (response.json()["lat"], response.json()["lng"]) == (None, None)
        assert response.json()["geocode_confidence"] == "none"

    def test_source_and_external_id_cannot_be_changed(self, as_dave):
        order_id = as_dave.post(URL, order_payload(), format="json").json()["id"]

        response = as_dave.patch(f"{URL}{order_id}/", {"external_id": "OTHER"}, format="json")

        assert response.status_code == 400
        assert "external_id" in response.json()["fields"]

    def test_a_finished_order_cannot_be_changed(self, as_dave, acme):
        order = OrderFactory(org=acme, state="cancelled")

        response = as_dave.patch(f"{URL}{order.pk}/", {"instructions": "x"}, format="json")

        assert response.status_code == 409
        assert response.json()["code"] == "order_not_editable"
        assert response.json()["current_state"] == "cancelled"


class TestRetrieve:
    def test_it_returns_one_order(self, as_dave, acme):
        order = OrderFactory(org=acme)

        response = as_dave.get(f"{URL}{order.pk}/")

        assert response.status_code == 200
        assert response.json()["external_id"] == order.external_id

    def test_an_unknown_id_is_a_json_404(self, as_dave, acme):
        response = as_dave.get(f"{URL}999999/")

        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_an_order_carries_its_own_proof_minimums_and_an_old_retry_still_matches(as_dave):
    from tests.factories import order_payload

    created = as_dave.post("/api/v1/orders/", order_payload(external_id="MIN-1", pod_min_photos=2, pod_min_age=18),
                           format="json")
    assert created.status_code == 201, created.json()
    assert (created.json()["pod_min_photos"], created.json()["pod_min_age"]) == (2, 18)
    # A payload without the new fields (a partner that never heard of them) is the same
    # order as one that sends their defaults: retries stay idempotent across the upgrade.
    first = as_dave.post("/api/v1/orders/", order_payload(external_id="MIN-2"), format="json")
    again = as_dave.post("/api/v1/orders/", order_payload(external_id="MIN-2", pod_min_photos=0, pod_min_age=0),
                         format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    bad = as_dave.post("/api/v1/orders/", order_payload(external_id="MIN-3", pod_min_photos=-1), format="json")
    assert bad.status_code == 400 and "pod_min_photos" in bad.json()["fields"]
