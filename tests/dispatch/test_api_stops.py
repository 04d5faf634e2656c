"""Working a route stop by stop: arrive, complete, fail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Order, Route, Stop
from apps.dispatch.services.routes import route_create, route_publish
from apps.events.models import Event
from tests.factories import DriverFactory, OrderFactory

URL = "/api/v1/stops/"


@pytest.fixture(autouse=True)
def delivery_morning():
    """08:00 UTC on the routes' day, before the orders' 09:00-12:00 windows: no stop is
    at risk of being late, so the event log holds only what the driver did."""
    with time_machine.travel(datetime(2026, 11, 23, 8, 0, tzinfo=UTC), tick=True):
        yield


@pytest.fixture
def route(acme, acme_hub, bob, acme_van):
    """Bob's published route with two deliveries."""
    orders = [OrderFactory(org=acme, lng=13.39 + 0.01 * i) for i in range(2)]
    actor = system_actor(acme)
    route = route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date="2026-11-23", driver=bob.pk,
                                                    vehicle=acme_van.pk, orders=[o.pk for o in orders]))
    return route_publish(actor=actor, route=route)


def _stops(route):
    return list(Stop.objects.filter(route=route).order_by("sequence"))


class TestArrive:
    def test_arriving_marks_the_stop_and_starts_the_route(self, as_bob, route):
        first, _ = _stops(route)

        response = as_bob.post(f"{URL}{first.pk}/arrive/")

        assert response.status_code == 200
        assert response.json()["state"] == "arrived"
        assert response.json()["arrived_at"]
        route.refresh_from_db()
        assert route.status == "in_progress"
        assert set(Order.objects.values_list("state", flat=True)) == {"out_for_delivery"}

    def test_arriving_twice_is_a_409(self, as_bob, route):
        first, _ = _stops(route)
        as_bob.post(f"{URL}{first.pk}/arrive/")

        response = as_bob.post(f"{URL}{first.pk}/arrive/")

        assert response.status_code == 409
        assert response.json()["current_state"] == "arrived"


class TestComplete:
    def test_completing_delivers_the_order(self, as_bob, route):
        first, _ = _stops(route)

        response = as_bob.post(f"{URL}{first.pk}/complete/", {"notes": "Left with neighbour"}, format="json")

        assert response.status_code == 200
        stop = response.json()
        assert (stop["state"], stop["outcome"], stop["notes"]) == ("completed", "succeeded", "Left with neighbour")
        order = Order.objects.get(pk=first.order_id)
        assert (order.state, order.outcome, order.attempts) == ("completed", "delivered", 1)
        assert order.completed_at is not None

    def test_the_last_stop_completes_the_route(self, as_bob, route):
        first, last = _stops(route)
        as_bob.post(f"{URL}{first.pk}/complete/", {}, format="json")

        as_bob.post(f"{URL}{last.pk}/fail/", {"reason": "recipient_absent"}, format="json")

        route.refresh_from_db()
        assert route.status == "completed"
        assert route.completed_at is not None

    def test_the_event_log_tells_the_story_in_order(self, as_bob, route, acme):
        first, _ = _stops(route)
        start = Event.objects.filter(org=acme).order_by("-sequence").first().sequence

        as_bob.post(f"{URL}{first.pk}/arrive/")
        as_bob.post(f"{URL}{first.pk}/complete/", {}, format="json")

        types = list(Event.objects.filter(org=acme, sequence__gt=start).order_by("sequence").values_list("type", flat=True))
        assert types == ["order.out_for_delivery", "order.out_for_delivery", "driver.duty_changed", "route.started",
                         "stop.arrived", "stop.completed", "order.delivered"]
        assert set(Event.objects.filter(org=acme, sequence__gt=start).values_list("actor", flat=True)) == {
            f"user:{route.driver.user_id}"}

    def test_a_completed_stop_cannot_be_completed_again(self, as_bob, route):
        first, _ = _stops(route)
        as_bob.post(f"{URL}{first.pk}/complete/", {}, format="json")

        response = as_bob.post(f"{URL}{first.pk}/complete/", {}, format="json")

        assert response.status_code == 409
        assert response.json()["current_state"] == "completed (succeeded)"
        assert Order.objects.get(pk=first.order_id).attempts == 1


class TestFail:
    def test_failing_records_the_reason_on_stop_and_order(self, as_bob, route):
        first, _ = _stops(route)

        response = as_bob.post(f"{URL}{first.pk}/fail/", {"reason": "access_denied", "notes": "Gate locked"},
                               format="json")

        assert response.status_code == 200
        assert (response.json()["outcome"], response.json()["failure_reason"]) == ("failed", "access_denied")
        order = Order.objects.get(pk=first.order_id)
        assert (order.state, order.outcome, order.failure_reason, order.failure_notes) == (
            "completed", "failed", "access_denied", "Gate locked")

    @pytest.mark.parametrize("body", [{}, {"reason": "dog"}, {"reason": "refused", "notes": 5}])
    def test_a_failure_needs_a_known_reason(self, as_bob, route, body):
        first, _ = _stops(route)

        response = as_bob.post(f"{URL}{first.pk}/fail/", body, format="json")

        assert response.status_code == 400
        assert Stop.objects.get(pk=first.pk).state == "pending"

    def test_a_failed_order_can_be_planned_again_on_a_new_stop(self, as_bob, as_dave, route, acme_hub):
        first, _ = _stops(route)
        as_bob.post(f"{URL}{first.pk}/fail/", {"reason": "recipient_absent"}, format="json")

        as_dave.post(f"/api/v1/orders/{first.order_id}/reschedule/")
        response = as_dave.post("/api/v1/routes/", {"hub": acme_hub.pk, "date": "2026-11-24",
                                                   "orders": [first.order_id]}, format="json")

        assert response.status_code == 201
        attempts = Stop.objects.filter(order_id=first.order_id).order_by("id")
        assert [(s.state, s.outcome) for s in attempts] == [("completed", "failed"), ("pending", "")]


class TestCancellation:
    def test_cancelling_an_order_on_a_route_cancels_its_stop_and_bumps_the_version(self, as_dave, route):
        first, _ = _stops(route)

        response = as_dave.post(f"/api/v1/orders/{first.order_id}/cancel/", {"reason": "Customer called"},
                                format="json")

        assert response.status_code == 200
        assert response.json()["state"] == "cancelled"
        first.refresh_from_db()
        assert first.state == "cancelled"
        route.refresh_from_db()
        assert route.version == 2
        assert Event.objects.filter(type="stop.cancelled", subject_id=str(first.pk)).exists()

    def test_a_cancelled_stop_cannot_be_worked(self, as_dave, as_bob, route):
        first, _ = _stops(route)
        as_dave.post(f"/api/v1/orders/{first.order_id}/cancel/", {}, format="json")

        response = as_bob.post(f"{URL}{first.pk}/arrive/")

        assert response.status_code == 409


class TestAccess:
    def test_a_stop_on_a_draft_route_cannot_be_worked(self, as_dave, acme, acme_hub):
        order = OrderFactory(org=acme)
        draft = route_create(actor=system_actor(acme), data=RouteIn(hub=acme_hub.pk, date="2026-11-23",
                                                                    orders=[order.pk]))
        stop = draft.stops.get()

        response = as_dave.post(f"{URL}{stop.pk}/arrive/")

        assert response.status_code == 409
        assert response.json()["current_state"] == "not yet published"

    def test_a_driver_cannot_see_or_work_another_drivers_stops(self, acme, acme_hub, route):
        from tests.conftest import client_for

        other = DriverFactory(org=acme, home_hub=acme_hub)
        as_other = client_for(other.user)
        first, _ = _stops(route)

        assert as_other.get(f"{URL}{first.pk}/").status_code == 404
        assert as_other.post(f"{URL}{first.pk}/complete/", {}, format="json").status_code == 404
        assert as_other.get(URL).json()["results"] == []
        assert Stop.objects.get(pk=first.pk).state == "pending"

    def test_the_driver_sees_his_stops_with_what_he_needs(self, as_bob, route):
        response = as_bob.get(URL, {"route": route.pk})

        stops = response.json()["results"]
        assert len(stops) == 2
        order = stops[0]["order"]
        assert {"customer_name", "customer_phone", "address_line1", "window_start", "instructions",
                "pod_requirements", "items"} <= set(order)
        assert "custom_fields" not in order

    def test_a_driver_reads_his_route_with_its_stops(self, as_bob, route):
        response = as_bob.get(f"/api/v1/routes/{route.pk}/")

        assert response.status_code == 200
        assert len(response.json()["stops"]) == 2

    def test_the_route_version_is_visible_to_detect_stale_copies(self, as_bob, route):
        assert as_bob.get(f"/api/v1/routes/{route.pk}/").json()["version"] == Route.objects.get(pk=route.pk).version


class TestEtas:
    def test_a_driver_running_late_pushes_the_remaining_etas_back_but_not_the_plan(self, as_bob, route):
        from datetime import timedelta

        import time_machine

        first, second = _stops(route)
        planned = second.planned_arrival
        late = first.planned_arrival + timedelta(hours=2)

        with time_machine.travel(late, tick=False):
            as_bob.post(f"{URL}{first.pk}/complete/", {}, format="json")

        second.refresh_from_db()
        assert second.planned_arrival == planned
        assert second.eta > late
        assert second.eta - planned > timedelta(hours=1, minutes=50)

    def test_stops_of_a_day_come_in_one_request(self, as_dave, route):
        on_day = as_dave.get(URL, {"date": "2026-11-23"}).json()["results"]
        other_day = as_dave.get(URL, {"date": "2026-11-24"}).json()["results"]

        assert len(on_day) == 2 and other_day == []
        assert as_dave.get(URL, {"date": "tomorrow"}).status_code == 400


class TestAutoStart:
    def test_working_the_first_stop_puts_the_driver_on_duty(self, as_bob, route, bob):
        first, _ = _stops(route)

        as_bob.post(f"{URL}{first.pk}/arrive/")

        bob.refresh_from_db()
        assert bob.on_duty is True
        assert Event.objects.filter(type="driver.duty_changed", subject_id=str(bob.pk)).count() == 1

    def test_state_changes_move_the_orders_updated_at(self, as_bob, route):
        from datetime import timedelta

        import time_machine

        first, _ = _stops(route)
        before = Order.objects.get(pk=first.order_id).updated_at

        with time_machine.travel(before + timedelta(minutes=30)):
            as_bob.post(f"{URL}{first.pk}/arrive/")

        other = Order.objects.exclude(pk=first.order_id).get()
        assert other.state == "out_for_delivery"
        assert other.updated_at >= before + timedelta(minutes=30)


class TestOfflineActions:
    """A driver app that worked offline says when each action happened; the stop keeps
    that time, the event log says when the server heard of it."""

    def test_a_completion_synced_later_keeps_the_time_it_happened(self, as_bob, route, acme):
        from datetime import UTC, datetime, timedelta

        from django.utils import timezone

        first, _ = _stops(route)
        happened = (timezone.now() - timedelta(hours=3)).replace(microsecond=0)

        response = as_bob.post(f"{URL}{first.pk}/complete/", {"occurred_at": happened.isoformat()}, format="json")

        assert response.status_code == 200
        first.refresh_from_db()
        assert first.completed_at == happened
        assert Order.objects.get(pk=first.order_id).completed_at == happened
        recorded = Event.objects.get(org=acme, type="stop.completed").created_at
        assert recorded - happened > timedelta(hours=2, minutes=59)
        assert happened.tzinfo is not None and happened.astimezone(UTC) == datetime.fromisoformat(
            response.json()["completed_at"].replace("Z", "+00:00"))

    def test_an_arrival_synced_later_keeps_the_time_it_happened(self, as_bob, route):
        from datetime import timedelta

        from django.utils import timezone

        first, _ = _stops(route)
        happened = (timezone.now() - timedelta(minutes=40)).replace(microsecond=0)

        response = as_bob.post(f"{URL}{first.pk}/arrive/", {"occurred_at": happened.isoformat()}, format="json")

        assert response.status_code == 200
        first.refresh_from_db()
        assert (first.state, first.arrived_at) == ("arrived", happened)

    @pytest.mark.parametrize(("occurred_at", "why"), [
        ("2999-01-01T10:00:00+00:00", "in the future"),
        ("2026-11-23T10:00:00", "timezone"),
    ])
    def test_a_device_time_in_the_future_or_without_a_zone_is_refused(self, as_bob, route, occurred_at, why):
        first, _ = _stops(route)

        response = as_bob.post(f"{URL}{first.pk}/fail/", {"reason": "refused", "occurred_at": occurred_at},
                               format="json")

        assert response.status_code == 400
        assert why in " ".join(response.json()["fields"]["occurred_at"])
        first.refresh_from_db()
        assert first.state == "pending"
