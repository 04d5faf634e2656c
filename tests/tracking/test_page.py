"""The customer's tracking page and its API: reached by the token alone, privacy-graded,
and the customer's two actions (delivery notes with the pin, a rating)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Stop
from apps.dispatch.serializers import RouteDetailSerializer
from apps.dispatch.services.routes import route_create, route_publish, route_start
from apps.dispatch.services.stops import stop_complete, stop_fail
from apps.events.models import Event
from apps.tracking.customer import tracking_snapshot
from apps.tracking.models import DeliveryRating, DriverPosition, TrackingSettings
from apps.tracking.services import tracking_token_issue, tracking_token_revoke
from tests.factories import OrderFactory

MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
DEPOT = (52.5290, 13.3726)


@pytest.fixture(autouse=True)
def clean_rate_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock():
    with time_machine.travel(MORNING, tick=False) as traveller:
        yield traveller


@pytest.fixture
def day(clock, acme, acme_hub, bob, acme_van):
    """Bob's published route: Erika's order fourth of five, stops 1 km apart heading east."""
    orders = [OrderFactory(org=acme, lat=DEPOT[0], lng=DEPOT[1] + (i + 1) / 67.8, customer_name=f"Customer {i}",
                           customer_phone=f"+49301234{i}", window_start=None, window_end=None, reference=f"ACME-REF-{i}")
              for i in range(5)]
    actor = system_actor(acme)
    route = route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date="2026-11-23", driver=bob.pk,
                                                   vehicle=acme_van.pk, orders=[o.pk for o in orders],
                                                   planned_start=MORNING.isoformat()))
    route_publish(actor=actor, route=route)
    erika = orders[3]
    return {"route": route, "orders": orders, "erika": erika, "token": tracking_token_issue(order=erika).token,
            "actor": actor}


def bob_at(bob, point, at=None):
    DriverPosition.objects.update_or_create(driver=bob, defaults={
        "org_id": bob.org_id, "lat": point[0], "lng": point[1], "accuracy_m": 5, "device_time": at or MORNING})


def snapshot(anonymous, token):
    response = anonymous.get(f"/api/v1/track/{token}/")
    assert response.status_code == 200
    return response.json()


class TestThePage:
    def test_a_valid_link_opens_the_branded_page(self, client, day, acme):
        TrackingSettings.objects.create(org=acme, brand_name="Acme Express", brand_colour="#aa3300",
                                        logo_url="https://acme.example/logo.png")

        response = client.get(f"/track/{day['token']}/")

        assert response.status_code == 200
        page = response.content.decode()
        assert "Acme Express" in page and "--brand: #aa3300" in page and "https://acme.example/logo.png" in page
        assert response["Referrer-Policy"] == "no-referrer" and response["Cache-Control"] == "no-store"
        assert "Erika" not in page  # the shell carries no order data; the socket does

    @pytest.mark.parametrize("token", ["nope", "x" * 32, "a" * 80])
    def test_a_bad_link_is_a_plain_404_page(self, client, day, token):
        response = client.get(f"/track/{token}/")

        assert response.status_code == 404
        assert response["Content-Type"].startswith("text/html")
        assert "no longer valid" in response.content.decode()

    def test_a_revoked_link_is_the_same_404(self, client, day):
        from apps.tracking.models import TrackingToken

        tracking_token_revoke(token=TrackingToken.objects.get(token=day["token"]))

        assert client.get(f"/track/{day['token']}/").status_code == 404

    def test_the_link_stops_working_the_configured_time_after_completion(self, client, day, acme, clock):
        TrackingSettings.objects.create(org=acme, link_valid_after_completion_h=24)
        route_start(actor=day["actor"], route=day["route"])
        stop_complete(actor=day["actor"], stop=Stop.objects.get(order=day["erika"]))
        clock.shift(timedelta(hours=23))
        assert client.get(f"/track/{day['token']}/").status_code == 200

        clock.shift(timedelta(hours=1))

        assert client.get(f"/track/{day['token']}/").status_code == 404

    def test_too_many_requests_from_one_address_are_refused(self, client, day, settings):
        settings.TRACKING_RATE_PER_MIN = 3
        codes = [client.get(f"/track/{t}/").status_code for t in ("a", "b", "c", day["token"])]

        assert codes == [404, 404, 404, 429]


class TestPrivacy:
    def test_the_driver_is_hidden_while_more_than_n_stops_and_m_minutes_away(self, anonymous, day, bob, acme):
        TrackingSettings.objects.create(org=acme, driver_visible_within_stops=2, driver_visible_within_minutes=5)
        bob_at(bob, DEPOT)

        delivery = snapshot(anonymous, day["token"])["delivery"]

        assert delivery["stops_away"] == 3
        assert delivery["driver"] == {"first_name": "Bob", "position": None}

    def test_the_driver_shows_within_n_stops(self, anonymous, day, bob, acme, clock):
        TrackingSettings.objects.create(org=acme, driver_visible_within_stops=2, driver_visible_within_minutes=0)
        route_start(actor=day["actor"], route=day["route"])
        for order in day["orders"][:2]:
            stop_complete(actor=day["actor"], stop=Stop.objects.get(order=order))
        bob_at(bob, (DEPOT[0], DEPOT[1] + 2.5 / 67.8))

        delivery = snapshot(anonymous, day["token"])["delivery"]

        assert delivery["stops_away"] == 1
        assert delivery["driver"]["position"]["lat"] == pytest.approx(DEPOT[0])

    def test_the_driver_shows_within_m_minutes_even_with_stops_between(self, anonymous, day, bob, acme):
        TrackingSettings.objects.create(org=acme, driver_visible_within_stops=0, driver_visible_within_minutes=60)
        bob_at(bob, DEPOT)

        assert snapshot(anonymous, day["token"])["delivery"]["driver"]["position"] is not None

    def test_a_stale_position_is_never_shown(self, anonymous, day, bob, acme):
        TrackingSettings.objects.create(org=acme, driver_visible_within_stops=10)
        bob_at(bob, DEPOT, at=MORNING - timedelta(hours=1))

        assert snapshot(anonymous, day["token"])["delivery"]["driver"]["position"] is None

    def test_after_delivery_there_is_no_driver_and_no_eta(self, anonymous, day, bob, acme):
        TrackingSettings.objects.create(org=acme, driver_visible_within_stops=10)
        route_start(actor=day["actor"], route=day["route"])
        stop_complete(actor=day["actor"], stop=Stop.objects.get(order=day["erika"]))
        bob_at(bob, DEPOT)

        body = snapshot(anonymous, day["token"])

        assert body["delivery"] is None and body["eta"] is None
        assert "Bob" not in str(body) and str(DEPOT[1]) not in str(body)

    def test_no_other_customers_data_is_in_the_payload(self, anonymous, day, bob, acme):
        TrackingSettings.objects.create(org=acme, driver_visible_within_stops=10)
        bob_at(bob, DEPOT)

        body = str(snapshot(anonymous, day["token"]))

        for other in day["orders"]:
            if other.pk == day["erika"].pk:
                continue
            assert other.customer_name not in body and other.customer_phone not in body
            assert other.reference not in body and other.external_id not in body
            assert str(other.lng) not in body
        assert "Baker" not in body  # the driver's first name only
        assert bob.phone not in body

    def test_the_wrong_token_opens_nothing(self, anonymous, day):
        response = anonymous.get(f"/api/v1/track/{day['token'][:-1]}x/")

        assert response.status_code == 404 and response.json()["code"] == "not_found"


class TestTheEtaWindow:
    def test_the_window_narrows_as_the_driver_gets_closer(self):
        from apps.tracking.privacy import eta_window

        now = MORNING.timestamp()
        far = eta_window(now + 3 * 3600, now)
        near = eta_window(now + 600, now)

        assert far[1] - far[0] > near[1] - near[0]
        assert far[0] <= now + 3 * 3600 <= far[1] and near[0] <= now + 600 <= near[1]
        assert all(t % 300 == 0 for t in (*far, *near))  # on five-minute marks


class TestPreferences:
    def test_the_customer_leaves_notes_and_a_pin_and_the_driver_sees_them(self, anonymous, day):
        response = anonymous.put(f"/api/v1/track/{day['token']}/preferences/", {
            "instructions": "Back door, ring twice", "gate_code": "4711#", "pin": {"lat": 52.53, "lng": 13.45}},
            format="json")

        assert response.status_code == 200
        assert response.json()["pin_confirmed_at"] == MORNING.isoformat()
        stops = RouteDetailSerializer(day["route"]).data["stops"]
        prefs = next(s for s in stops if s["order"]["id"] == day["erika"].pk)["order"]["customer_preferences"]
        assert (prefs["instructions"], prefs["gate_code"], prefs["pin_lat"]) == ("Back door, ring twice", "4711#", 52.53)
        event = Event.objects.get(type="order.preferences_updated")
        assert event.payload["route_id"] == day["route"].pk  # so the driver's app hears it
        assert event.payload["changed"] == ["instructions", "gate_code", "pin"]

    def test_once_the_driver_has_set_off_the_notes_are_final(self, anonymous, day):
        route_start(actor=day["actor"], route=day["route"])

        response = anonymous.put(f"/api/v1/track/{day['token']}/preferences/", {"instructions": "x"}, format="json")

        assert response.status_code == 409 and response.json()["code"] == "invalid_transition"

    @pytest.mark.parametrize("body", [{"gate_code": "x" * 33}, {"pin": {"lat": 91, "lng": 0}}, {"colour": "red"}, []])
    def test_bad_notes_are_a_400(self, anonymous, day, body):
        response = anonymous.put(f"/api/v1/track/{day['token']}/preferences/", body, format="json")

        assert response.status_code == 400 and response.json()["code"] == "validation_error"


class TestAfterDelivery:
    @pytest.fixture
    def delivered(self, day):
        route_start(actor=day["actor"], route=day["route"])
        stop_complete(actor=day["actor"], stop=Stop.objects.get(order=day["erika"]))
        return day

    def test_one_tap_rating_with_an_optional_comment_once(self, anonymous, delivered):
        url = f"/api/v1/track/{delivered['token']}/rating/"

        first = anonymous.post(url, {"score": 5, "comment": "Quick!"}, format="json")
        again = anonymous.post(url, {"score": 1}, format="json")

        assert first.status_code == 201
        assert again.status_code == 409 and again.json()["code"] == "already_rated"
        assert DeliveryRating.objects.get(order=delivered["erika"]).score == 5
        assert snapshot(anonymous, delivered["token"])["rating"] == {"score": 5, "comment": "Quick!"}

    def test_an_undelivered_order_cannot_be_rated(self, anonymous, day):
        response = anonymous.post(f"/api/v1/track/{day['token']}/rating/", {"score": 4}, format="json")

        assert response.status_code == 409

    def test_a_failed_attempt_cannot_be_rated_and_says_why(self, anonymous, day):
        route_start(actor=day["actor"], route=day["route"])
        stop_fail(actor=day["actor"], stop=Stop.objects.get(order=day["erika"]), reason="recipient_absent")

        body = snapshot(anonymous, day["token"])

        assert body["can_rate"] is False and body["order"]["failure_reason"] == "recipient_absent"
        assert body["timeline"][-1]["label"] == "Delivery attempted"

    def test_the_pod_display_copy_shows_when_the_organization_allows_it(self, anonymous, delivered, acme, monkeypatch):
        from apps.tracking import customer

        monkeypatch.setattr(customer, "pod_display_url", lambda *, order: f"https://media.example/pod/{order.pk}.webp")
        assert snapshot(anonymous, delivered["token"])["pod_url"].endswith(f"/{delivered['erika'].pk}.webp")

        TrackingSettings.objects.create(org=acme, show_pod=False)

        assert snapshot(anonymous, delivered["token"])["pod_url"] is None

    def test_without_a_pod_provider_the_page_shows_none(self, delivered):
        assert tracking_snapshot(order=delivered["erika"])["pod_url"] is None


def test_the_timeline_tells_when_each_step_happened(anonymous, day, clock):
    clock.shift(timedelta(minutes=5))
    route_start(actor=day["actor"], route=day["route"])

    steps = {s["step"]: s for s in snapshot(anonymous, day["token"])["timeline"]}

    assert steps["scheduled"]["done"] and steps["out_for_delivery"]["at"] == (MORNING + timedelta(minutes=5)).isoformat()
    assert not steps["completed"]["done"]
