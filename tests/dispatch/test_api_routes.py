"""Routes over the API: building, editing, publishing, starting, completing, deleting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from apps.dispatch.models import Order, Route, Stop
from apps.events.models import Event
from tests.factories import DriverFactory, OrderFactory, VehicleFactory

URL = "/api/v1/routes/"


@pytest.fixture
def orders(acme):
    """Three orders along Torstraße, west to east."""
    return [OrderFactory(org=acme, lat=52.529, lng=13.38 + 0.01 * i) for i in range(3)]


def _create(client, hub, orders, **extra):
    body = {"hub": hub.pk, "date": "2026-11-23", "orders": [o.pk for o in orders], **extra}
    return client.post(URL, body, format="json")


class TestCreate:
    def test_it_builds_a_draft_route_with_planned_arrivals_in_order(self, as_dave, acme_hub, bob, acme_van, orders):
        response = _create(as_dave, acme_hub, orders, driver=bob.pk, vehicle=acme_van.pk)

        assert response.status_code == 201
        route = response.json()
        assert (route["status"], route["version"]) == ("draft", 1)
        assert [s["order"]["id"] for s in route["stops"]] == [o.pk for o in orders]
        assert [s["sequence"] for s in route["stops"]] == [1, 2, 3]
        arrivals = [s["planned_arrival"] for s in route["stops"]]
        assert arrivals == sorted(arrivals) and len(set(arrivals)) == 3
        assert route["planned_start"] < arrivals[0] < route["planned_end"]
        assert route["start_lat"] == acme_hub.lat

    def test_it_waits_for_a_window_that_opens_later(self, as_dave, acme, acme_hub, bob):
        from datetime import UTC, datetime

        late = OrderFactory(org=acme, window_start=datetime(2026, 11, 23, 14, tzinfo=UTC),
                            window_end=datetime(2026, 11, 23, 16, tzinfo=UTC))

        route = _create(as_dave, acme_hub, [late], driver=bob.pk).json()

        assert route["stops"][0]["planned_arrival"] == "2026-11-23T14:00:00Z"

    def test_it_plans_the_orders(self, as_dave, acme_hub, orders):
        _create(as_dave, acme_hub, orders)

        assert set(Order.objects.values_list("state", flat=True)) == {"planned"}
        assert Event.objects.filter(type="order.planned").count() == 3
        assert Event.objects.filter(type="route.created").count() == 1

    def test_an_order_already_on_a_route_cannot_be_planned_again(self, as_dave, acme_hub, orders):
        _create(as_dave, acme_hub, orders[:1])

        response = _create(as_dave, acme_hub, orders)

        assert response.status_code == 409
        assert response.json()["code"] == "invalid_transition"
        assert response.json()["current_state"] == "planned"
        assert Route.objects.count() == 1
        assert Order.objects.filter(state="created").count() == 2

    def test_orders_over_the_vehicle_capacity_are_refused_with_422(self, as_dave, acme, acme_hub):
        small = VehicleFactory(org=acme, capacity_parcels=2)
        orders = [OrderFactory(org=acme, parcel_count=1) for _ in range(3)]

        response = _create(as_dave, acme_hub, orders, vehicle=small.pk)

        assert response.status_code == 422
        assert response.json()["code"] == "capacity_exceeded"
        assert response.json()["dimension"] == "parcels"
        assert Route.objects.count() == 0
        assert Order.objects.filter(state="created").count() == 3

    def test_a_heavy_order_is_refused_by_weight(self, as_dave, acme, acme_hub):
        bike = VehicleFactory(org=acme, type="cargo_bike", capacity_weight_kg=Decimal("100"))
        heavy = OrderFactory(org=acme, total_weight_kg=Decimal("150"))

        response = _create(as_dave, acme_hub, [heavy], vehicle=bike.pk)

        assert (response.status_code, response.json()["dimension"]) == (422, "weight_kg")

    def test_an_order_needing_a_skill_the_vehicle_lacks_is_refused(self, as_dave, acme, acme_hub, acme_van):
        frozen = OrderFactory(org=acme, required_skills=["refrigerated"])

        response = _create(as_dave, acme_hub, [frozen], vehicle=acme_van.pk)

        assert response.status_code == 422
        assert response.json()["code"] == "skill_missing"
        assert response.json()["skills"] == ["refrigerated"]

    def test_a_refrigerated_van_takes_the_frozen_order(self, as_dave, acme, acme_hub):
        fridge = VehicleFactory(org=acme, skills=["refrigerated"])
        frozen = OrderFactory(org=acme, required_skills=["refrigerated"])

        assert _create(as_dave, acme_hub, [frozen], vehicle=fridge.pk).status_code == 201

    def test_references_to_another_organization_are_unknown(self, as_dave, acme_hub, globex):
        from tests.factories import HubFactory

        foreign_order = OrderFactory(org=globex)
        foreign_driver = DriverFactory(org=globex, home_hub=HubFactory(org=globex))

        response = _create(as_dave, acme_hub, [foreign_order], driver=foreign_driver.pk)

        assert response.status_code == 400
        assert response.json()["fields"] == {"driver": ["No such driver."]}
        response = _create(as_dave, acme_hub, [foreign_order])
        assert response.json()["fields"] == {"orders": [f"No such order: {foreign_order.pk}."]}
        foreign_order.refresh_from_db()
        assert foreign_order.state == "created"

    def test_an_order_listed_twice_is_rejected(self, as_dave, acme_hub, orders):
        response = _create(as_dave, acme_hub, [orders[0], orders[0]])

        assert response.status_code == 400

    def test_an_impossible_date_is_rejected(self, as_dave, acme_hub):
        response = as_dave.post(URL, {"hub": acme_hub.pk, "date": "2026-02-30"}, format="json")

        assert response.status_code == 400
        assert "date" in response.json()["fields"]


@pytest.fixture
def draft(as_dave, acme_hub, bob, acme_van, orders):
    return Route.objects.get(pk=_create(as_dave, acme_hub, orders, driver=bob.pk, vehicle=acme_van.pk).json()["id"])


class TestEditStops:
    def test_reordering_bumps_the_version_and_replans_times(self, as_dave, draft, orders):
        response = as_dave.put(f"{URL}{draft.pk}/stops/", {"orders": [orders[2].pk, orders[0].pk, orders[1].pk]},
                               format="json")

        assert response.status_code == 200
        route = response.json()
        assert route["version"] == 2
        assert [s["order"]["id"] for s in route["stops"]] == [orders[2].pk, orders[0].pk, orders[1].pk]
        arrivals = [s["planned_arrival"] for s in route["stops"]]
        assert arrivals == sorted(arrivals)

    def test_leaving_an_order_out_unplans_it_and_adding_one_plans_it(self, as_dave, acme, draft, orders):
        newcomer = OrderFactory(org=acme)

        response = as_dave.put(f"{URL}{draft.pk}/stops/", {"orders": [orders[0].pk, newcomer.pk]}, format="json")

        assert [s["order"]["id"] for s in response.json()["stops"]] == [orders[0].pk, newcomer.pk]
        assert Order.objects.get(pk=orders[1].pk).state == "created"
        assert Order.objects.get(pk=newcomer.pk).state == "planned"
        event = Event.objects.filter(type="route.updated").last()
        assert event.payload["added"] == [newcomer.pk]
        assert sorted(event.payload["removed"]) == sorted([orders[1].pk, orders[2].pk])

    def test_an_edit_based_on_a_stale_version_is_a_409(self, as_dave, draft, orders):
        as_dave.put(f"{URL}{draft.pk}/stops/", {"orders": [o.pk for o in orders], "expected_version": 1}, format="json")

        response = as_dave.put(f"{URL}{draft.pk}/stops/", {"orders": [orders[0].pk], "expected_version": 1},
                               format="json")

        assert response.status_code == 409
        assert response.json() | {"message": ""} == {"code": "version_conflict", "message": "", "current_version": 2}
        assert Stop.objects.filter(route=draft).count() == 3

    def test_an_order_added_to_a_published_route_is_dispatched(self, as_dave, acme, draft, orders):
        as_dave.post(f"{URL}{draft.pk}/publish/")
        newcomer = OrderFactory(org=acme)

        as_dave.put(f"{URL}{draft.pk}/stops/", {"orders": [*(o.pk for o in orders), newcomer.pk]}, format="json")

        assert Order.objects.get(pk=newcomer.pk).state == "dispatched"

    def test_visited_stops_keep_their_place_at_the_front(self, as_dave, as_bob, draft, orders):
        as_dave.post(f"{URL}{draft.pk}/publish/")
        second = Stop.objects.get(route=draft, order=orders[1])
        as_bob.post(f"/api/v1/stops/{second.pk}/complete/", {}, format="json")

        response = as_dave.put(f"{URL}{draft.pk}/stops/", {"orders": [orders[2].pk, orders[0].pk]}, format="json")

        assert [s["order"]["id"] for s in response.json()["stops"]] == [orders[1].pk, orders[2].pk, orders[0].pk]

    def test_a_visited_order_cannot_be_listed_as_pending(self, as_dave, as_bob, draft, orders):
        as_dave.post(f"{URL}{draft.pk}/publish/")
        first = Stop.objects.get(route=draft, order=orders[0])
        as_bob.post(f"/api/v1/stops/{first.pk}/complete/", {}, format="json")

        response = as_dave.put(f"{URL}{draft.pk}/stops/", {"orders": [o.pk for o in orders]}, format="json")

        assert response.status_code == 400
        assert "Already visited" in response.json()["fields"]["orders"][0]


class TestLifecycle:
    def test_publishing_dispatches_every_order(self, as_dave, draft):
        response = as_dave.post(f"{URL}{draft.pk}/publish/")

        assert response.json()["status"] == "published"
        assert set(Order.objects.values_list("state", flat=True)) == {"dispatched"}

    def test_a_route_without_driver_cannot_be_published(self, as_dave, acme_hub, orders):
        route = _create(as_dave, acme_hub, orders).json()

        response = as_dave.post(f"{URL}{route['id']}/publish/")

        assert response.status_code == 422
        assert response.json()["code"] == "route_incomplete"
        assert "a driver and a vehicle" in response.json()["message"]
        assert Route.objects.get(pk=route["id"]).status == "draft"

    def test_an_empty_route_cannot_be_published(self, as_dave, acme_hub, bob, acme_van):
        route = _create(as_dave, acme_hub, [], driver=bob.pk, vehicle=acme_van.pk).json()

        response = as_dave.post(f"{URL}{route['id']}/publish/")

        assert response.status_code == 422
        assert "at least one stop" in response.json()["message"]

    def test_unpublishing_brings_orders_back_to_planned(self, as_dave, draft):
        as_dave.post(f"{URL}{draft.pk}/publish/")

        response = as_dave.post(f"{URL}{draft.pk}/unpublish/")

        assert response.json()["status"] == "draft"
        assert set(Order.objects.values_list("state", flat=True)) == {"planned"}

    def test_the_driver_starting_the_route_puts_orders_out_for_delivery_and_goes_on_duty(self, as_dave, as_bob,
                                                                                        draft, bob):
        as_dave.post(f"{URL}{draft.pk}/publish/")

        response = as_bob.post(f"{URL}{draft.pk}/start/")

        assert response.status_code == 200
        assert response.json()["status"] == "in_progress"
        assert set(Order.objects.values_list("state", flat=True)) == {"out_for_delivery"}
        bob.refresh_from_db()
        assert bob.on_duty is True

    def test_a_draft_route_cannot_be_started(self, as_dave, draft):
        response = as_dave.post(f"{URL}{draft.pk}/start/")

        assert response.status_code == 409
        assert response.json()["current_state"] == "draft"

    def test_a_route_with_open_stops_cannot_be_completed(self, as_dave, draft):
        as_dave.post(f"{URL}{draft.pk}/publish/")
        as_dave.post(f"{URL}{draft.pk}/start/")

        response = as_dave.post(f"{URL}{draft.pk}/complete/")

        assert response.status_code == 422
        assert response.json()["open_stops"] == 3

    def test_changing_the_vehicle_rechecks_capacity(self, as_dave, acme, draft):
        tiny = VehicleFactory(org=acme, capacity_parcels=1)

        response = as_dave.patch(f"{URL}{draft.pk}/", {"vehicle": tiny.pk}, format="json")

        assert response.status_code == 422
        draft.refresh_from_db()
        assert draft.vehicle.capacity_parcels == 120

    def test_a_published_route_cannot_lose_its_driver(self, as_dave, draft):
        as_dave.post(f"{URL}{draft.pk}/publish/")

        response = as_dave.patch(f"{URL}{draft.pk}/", {"driver": None}, format="json")

        assert response.status_code == 422

    def test_renaming_a_route_bumps_its_version(self, as_dave, draft):
        response = as_dave.patch(f"{URL}{draft.pk}/", {"name": "North loop"}, format="json")

        assert (response.json()["name"], response.json()["version"]) == ("North loop", 2)


class TestDelete:
    def test_deleting_a_draft_returns_its_orders_to_the_pool(self, as_dave, draft):
        response = as_dave.delete(f"{URL}{draft.pk}/")

        assert response.status_code == 204
        assert not Route.objects.exists() and not Stop.objects.exists()
        assert set(Order.objects.values_list("state", flat=True)) == {"created"}
        assert Event.objects.filter(type="route.deleted", subject_id=str(draft.pk)).exists()

    def test_a_published_route_cannot_be_deleted(self, as_dave, draft):
        as_dave.post(f"{URL}{draft.pk}/publish/")

        response = as_dave.delete(f"{URL}{draft.pk}/")

        assert response.status_code == 409
        assert response.json()["code"] == "route_not_draft"
        assert Route.objects.filter(pk=draft.pk).exists()


class TestList:
    def test_it_filters_by_date_and_status(self, as_dave, draft, acme_hub):
        _create(as_dave, acme_hub, [], date="2026-11-24")

        by_date = as_dave.get(URL, {"date": "2026-11-23"}).json()["results"]
        by_status = as_dave.get(URL, {"status": "draft"}).json()["results"]

        assert [r["id"] for r in by_date] == [draft.pk]
        assert len(by_status) == 2

    def test_a_bad_date_filter_is_a_400(self, as_dave):
        assert as_dave.get(URL, {"date": "23.11.2026"}).status_code == 400

    def test_a_driver_sees_only_his_published_routes(self, as_dave, as_bob, draft, acme, acme_hub, acme_van):
        other = DriverFactory(org=acme, home_hub=acme_hub)
        _create(as_dave, acme_hub, [], driver=other.pk, vehicle=acme_van.pk)

        assert as_bob.get(URL).json()["results"] == []  # his route is still a draft
        as_dave.post(f"{URL}{draft.pk}/publish/")
        assert [r["id"] for r in as_bob.get(URL).json()["results"]] == [draft.pk]

    def test_a_driver_cannot_edit_routes(self, as_dave, as_bob, draft):
        as_dave.post(f"{URL}{draft.pk}/publish/")

        response = as_bob.put(f"{URL}{draft.pk}/stops/", {"orders": []}, format="json")

        assert response.status_code == 403
