"""Driver actions arrive, complete and fail exactly once, whatever the network does;
a completion is never silently overwritten."""

from __future__ import annotations

import uuid

import pytest

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Order, Stop
from apps.dispatch.services.orders import order_cancel
from apps.dispatch.services.routes import route_create, route_publish, route_set_stops
from apps.events.models import Event
from apps.pod.models import DispatchException, DriverAction, PodPolicy, ProofOfDelivery
from apps.pod.requirements import delivery_pin
from tests.factories import DriverFactory

from . import images
from .conftest import action, photo_and_signature, upload

BERLIN_POINT = {"lat": 52.5291, "lng": 13.4001, "accuracy_m": 8.0}


def _events(kind: str) -> list[Event]:
    return list(Event.objects.filter(type=kind).order_by("sequence"))


class TestExactlyOnce:
    def test_arriving_is_applied(self, as_bob, stops):
        response = action(as_bob, "arrive", stops[0])

        assert response.status_code == 200
        assert response.json()["outcome"] == "applied"
        assert response.json()["stop"]["state"] == "arrived"

    def test_a_retried_completion_returns_the_first_result_and_changes_nothing(self, as_bob, stops):
        key = str(uuid.uuid4())
        first = action(as_bob, "complete", stops[0], key=key, notes="At the door", pod=BERLIN_POINT)
        events = Event.objects.count()

        retry = action(as_bob, "complete", stops[0], key=key, notes="At the door", pod=BERLIN_POINT)

        assert retry.status_code == 200
        assert retry.json() == first.json()
        assert retry["Idempotent-Replayed"] == "true"
        assert Event.objects.count() == events
        assert ProofOfDelivery.objects.count() == 1
        assert len(_events("stop.completed")) == 1

    def test_a_retried_failure_returns_the_first_result(self, as_bob, stops):
        key = str(uuid.uuid4())
        first = action(as_bob, "fail", stops[1], key=key, reason="recipient_absent", notes="Nobody home")

        retry = action(as_bob, "fail", stops[1], key=key, reason="recipient_absent", notes="Nobody home")

        assert retry.json() == first.json()
        assert len(_events("stop.failed")) == 1
        assert Order.objects.get(pk=stops[1].order_id).attempts == 1

    def test_the_same_key_with_other_content_is_a_409(self, as_bob, stops):
        key = str(uuid.uuid4())
        action(as_bob, "fail", stops[1], key=key, reason="recipient_absent")

        response = action(as_bob, "fail", stops[1], key=key, reason="refused")

        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_key_reused"

    def test_a_refused_action_can_be_sent_again_with_its_key(self, as_bob, stops):
        PodPolicy.objects.create(org=stops[0].org, recipient_name=True)
        key = str(uuid.uuid4())
        assert action(as_bob, "complete", stops[0], key=key).status_code == 422

        # The key was not spent on the refusal: the corrected action under a new key goes through,
        # and nothing from the refused one was stored.
        assert not DriverAction.objects.filter(key=key).exists()
        response = action(as_bob, "complete", stops[0], pod={"recipient_name": "E. Mustermann"})
        assert response.status_code == 200

    def test_an_arrive_synced_after_the_completion_is_ignored(self, as_bob, stops):
        action(as_bob, "complete", stops[0])

        response = action(as_bob, "arrive", stops[0])

        assert response.status_code == 200
        assert response.json()["outcome"] == "ignored"
        assert Stop.objects.get(pk=stops[0].pk).state == "completed"

    def test_only_drivers_send_driver_actions(self, as_dave, stops):
        response = action(as_dave, "arrive", stops[0])

        assert response.status_code == 403

    def test_a_malformed_action_is_a_400(self, as_bob, stops):
        response = as_bob.post("/api/v1/driver/actions/", {"id": "not-a-uuid", "type": "fail", "stop": stops[0].pk},
                               format="json")

        assert response.status_code == 400
        assert "id" in response.json()["fields"]


class TestProofOfDelivery:
    def test_completing_records_the_pod_and_its_event(self, as_bob, stops):
        photo, signature = photo_and_signature(as_bob)

        response = action(as_bob, "complete", stops[0], notes="Handed over", device_time="2026-11-23T10:02:00+01:00",
                          pod={"photos": [photo], "signature": signature, "recipient_name": "Erika", **BERLIN_POINT})

        assert response.json()["outcome"] == "applied"
        pod = ProofOfDelivery.objects.get()
        assert pod.stop_id == stops[0].pk and pod.driver.name == "Bob Baker"
        assert [p.sha256 for p in pod.photos.all()] == [photo]
        assert pod.signature.sha256 == signature
        assert pod.recipient_name == "Erika" and pod.notes == "Handed over"
        assert pod.device_time.isoformat() == "2026-11-23T09:02:00+00:00"
        assert pod.distance_m is not None and pod.distance_m < 50
        assert pod.flags == []
        (captured,) = _events("pod.captured")
        assert captured.payload["photos"] == 1 and captured.payload["signature"] is True
        assert captured.payload["route_id"] == stops[0].route_id
        # The order's own events went through the same pipeline, in order.
        types = list(Event.objects.order_by("sequence").values_list("type", flat=True))
        assert types.index("stop.completed") < types.index("order.delivered") < types.index("pod.captured")

    def test_a_capture_far_from_the_address_is_flagged(self, as_bob, stops, settings):
        settings.POD_FAR_FROM_ADDRESS_M = 300

        action(as_bob, "complete", stops[0], pod={"lat": 52.5400, "lng": 13.4000, "accuracy_m": 10})

        pod = ProofOfDelivery.objects.get()
        assert pod.distance_m > 1000
        assert "far_from_address" in pod.flags

    def test_a_capture_without_location_is_flagged(self, as_bob, stops):
        action(as_bob, "complete", stops[0], offline=True)

        assert ProofOfDelivery.objects.get().flags == ["no_location", "captured_offline"]

    def test_a_photo_that_was_not_uploaded_is_a_422(self, as_bob, stops):
        response = action(as_bob, "complete", stops[0], pod={"photos": ["a" * 64]})

        assert response.status_code == 422
        assert response.json()["code"] == "media_missing"
        assert Stop.objects.get(pk=stops[0].pk).state == "pending"

    def test_a_signature_cannot_stand_in_for_a_photo(self, as_bob, stops):
        _, signature = photo_and_signature(as_bob)

        response = action(as_bob, "complete", stops[0], pod={"photos": [signature]})

        assert response.status_code == 422
        assert response.json()["code"] == "media_kind_mismatch"


class TestRequirements:
    def _require_everything(self, org, **extra):
        PodPolicy.objects.create(org=org, min_photos=2, signature=True, recipient_name=True, notes=True, pin=True,
                                 min_age=18, **extra)

    def test_completing_without_the_required_proof_is_a_422_listing_it(self, as_bob, stops):
        self._require_everything(stops[0].org)

        response = action(as_bob, "complete", stops[0])

        assert response.status_code == 422
        body = response.json()
        assert body["code"] == "pod_requirements_missing"
        assert set(body["missing"]) == {"photos", "signature", "recipient_name", "notes", "pin", "age_verified"}
        assert Stop.objects.get(pk=stops[0].pk).state == "pending"
        assert not ProofOfDelivery.objects.exists()

    def test_completing_with_everything_required_is_applied(self, as_bob, stops):
        self._require_everything(stops[0].org)
        photo, signature = photo_and_signature(as_bob)
        second = upload(as_bob, images.jpeg(color="red")).json()["sha256"]

        response = action(as_bob, "complete", stops[0], notes="ID checked", pod={
            "photos": [photo, second], "signature": signature, "recipient_name": "Erika",
            "pin": delivery_pin(stops[0].order), "age_verified": True})

        assert response.status_code == 200, response.json()
        assert ProofOfDelivery.objects.get().pin_verified is True

    def test_a_wrong_pin_is_a_422(self, as_bob, stops):
        order = stops[0].order
        order.pod_requirements = ["pin"]
        order.save()
        wrong = f"{(int(delivery_pin(order)) + 1) % 10000:04d}"

        response = action(as_bob, "complete", stops[0], pod={"pin": wrong})

        assert response.status_code == 422
        assert response.json()["missing"] == {"pin": "The PIN does not match this order's delivery PIN."}

    def test_the_orders_own_list_adds_to_the_defaults(self, as_bob, stops):
        order = stops[0].order
        order.pod_requirements = ["photo", "signature"]
        order.save()

        response = action(as_bob, "complete", stops[0])

        assert set(response.json()["missing"]) == {"photos", "signature"}

    def test_an_order_can_ask_for_more_photos_and_an_age_check_than_the_policies(self, as_bob, stops):
        PodPolicy.objects.create(org=stops[0].org, min_photos=1)
        Order.objects.filter(pk=stops[0].order_id).update(pod_min_photos=2, pod_min_age=18)
        photo = upload(as_bob, images.jpeg()).json()["sha256"]

        refused = action(as_bob, "complete", stops[0], pod={"photos": [photo]})

        assert refused.status_code == 422
        assert set(refused.json()["missing"]) == {"photos", "age_verified"}
        second = upload(as_bob, images.jpeg(color="red")).json()["sha256"]
        done = action(as_bob, "complete", stops[0], pod={"photos": [photo, second], "age_verified": True})
        assert done.status_code == 200, done.json()
        # The other orders keep the organization's rule: one photo is enough.
        assert action(as_bob, "complete", stops[1], pod={"photos": [photo]}).status_code == 200

    def test_a_partners_policy_applies_to_its_orders_only(self, as_bob, stops):
        PodPolicy.objects.create(org=stops[0].org, source="shopify:acme", recipient_name=True)
        Order.objects.filter(pk=stops[0].order_id).update(source="shopify:acme")

        assert action(as_bob, "complete", stops[0]).status_code == 422
        assert action(as_bob, "complete", stops[1]).status_code == 200

    def test_the_plain_stop_endpoint_enforces_the_same_rules_for_drivers(self, as_bob, stops):
        PodPolicy.objects.create(org=stops[0].org, signature=True)

        response = as_bob.post(f"/api/v1/stops/{stops[0].pk}/complete/", {}, format="json")

        assert response.status_code == 422
        assert response.json()["missing"] == {"signature": "The recipient's signature is required."}

    def test_the_route_rules_tell_the_app_what_each_stop_needs(self, as_bob, stops, route):
        PodPolicy.objects.create(org=stops[0].org, min_photos=1)
        Order.objects.filter(pk=stops[1].order_id).update(pod_requirements=["signature", "pin"])

        response = as_bob.get("/api/v1/pod/requirements/", {"route": route.pk})

        rules = {r["stop"]: r["rules"] for r in response.json()["results"]}
        assert rules[stops[0].pk]["min_photos"] == 1 and rules[stops[0].pk]["signature"] is False
        assert rules[stops[1].pk]["signature"] is True and rules[stops[1].pk]["pin"] is True


class TestConflicts:
    def test_a_stop_completed_twice_becomes_a_dispatcher_exception(self, as_bob, stops):
        first = action(as_bob, "complete", stops[0], notes="First").json()

        second = action(as_bob, "complete", stops[0], notes="Second")

        assert second.status_code == 200
        assert second.json()["outcome"] == "exception"
        assert second.json()["exception"]["kind"] == "double_completion"
        stop = Stop.objects.get(pk=stops[0].pk)
        assert stop.notes == "First"  # never overwritten
        assert ProofOfDelivery.objects.count() == 2
        assert ProofOfDelivery.objects.get(pk=second.json()["pod"]).flags[0] == "double_completion"
        assert DispatchException.objects.get().pod_id == second.json()["pod"]
        assert len(_events("pod.exception")) == 1
        assert len(_events("order.delivered")) == 1
        assert first["pod"] != second.json()["pod"]

    def test_a_completion_after_the_stop_failed_is_kept_as_an_exception(self, as_bob, stops):
        action(as_bob, "fail", stops[0], reason="recipient_absent")

        response = action(as_bob, "complete", stops[0])

        assert response.json()["exception"]["kind"] == "completed_after_close"
        assert Stop.objects.get(pk=stops[0].pk).outcome == "failed"

    def test_an_offline_completion_wins_over_a_later_reassignment(self, acme, acme_hub, as_bob, stops, route):
        """Bob delivers stop 1 offline; meanwhile dispatch moves the order to Dana's route.
        When Bob syncs, the delivery stands and Dana's copy of the stop is cancelled."""
        actor = system_actor(acme)
        order = stops[0].order
        dana = DriverFactory(org=acme, name="Dana Fischer")
        route_set_stops(actor=actor, route=route, order_ids=[s.order_id for s in stops[1:]])
        danas = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
            hub=acme_hub.pk, date="2026-11-23", driver=dana.pk, vehicle=route.vehicle_id, orders=[order.pk])))

        response = action(as_bob, "complete", stops[0], order=order.pk, route=route.pk, offline=True,
                          device_time="2026-11-23T10:02:00+01:00", pod=BERLIN_POINT)

        assert response.status_code == 200, response.json()
        assert response.json()["outcome"] == "applied"
        order.refresh_from_db()
        assert (order.state, order.outcome) == ("completed", "delivered")
        bobs_stop = Stop.objects.get(pk=response.json()["stop"]["id"])
        assert (bobs_stop.route_id, bobs_stop.state, bobs_stop.outcome) == (route.pk, "completed", "succeeded")
        assert Stop.objects.get(route=danas).state == "cancelled"
        assert ProofOfDelivery.objects.get().stop_id == bobs_stop.pk

    def test_an_offline_completion_after_another_driver_delivered_is_an_exception(self, acme, acme_hub, as_bob,
                                                                                  stops, route):
        actor = system_actor(acme)
        order = stops[0].order
        dana = DriverFactory(org=acme, name="Dana Fischer")
        route_set_stops(actor=actor, route=route, order_ids=[s.order_id for s in stops[1:]])
        danas = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
            hub=acme_hub.pk, date="2026-11-23", driver=dana.pk, vehicle=route.vehicle_id, orders=[order.pk])))
        from apps.dispatch.services.stops import stop_complete

        stop_complete(actor=actor, stop=Stop.objects.get(route=danas))

        response = action(as_bob, "complete", stops[0], order=order.pk, route=route.pk)

        assert response.json()["outcome"] == "exception"
        assert response.json()["exception"]["kind"] == "double_completion"
        assert Stop.objects.get(route=danas).outcome == "succeeded"  # Dana's delivery stands too
        assert DispatchException.objects.count() == 1

    def test_a_completion_for_a_cancelled_order_is_kept_as_an_exception(self, acme, as_bob, stops):
        order_cancel(actor=system_actor(acme), order=stops[0].order, reason="customer called")

        response = action(as_bob, "complete", stops[0])

        assert response.json()["outcome"] == "exception"
        assert response.json()["exception"]["kind"] == "completed_after_close"
        assert Order.objects.get(pk=stops[0].order_id).state == "cancelled"

    def test_a_removed_stop_cannot_be_claimed_by_a_driver_it_never_belonged_to(self, acme, as_bob, stops, route):
        other = DriverFactory(org=acme, name="Eve")
        from tests.conftest import client_for

        route_set_stops(actor=system_actor(acme), route=route, order_ids=[s.order_id for s in stops[1:]])

        response = action(client_for(other.user), "complete", stops[0], order=stops[0].order_id, route=route.pk)

        assert response.status_code == 404


class TestTenancy:
    def test_carol_gets_404_for_acmes_pods_and_media(self, as_bob, as_carol, stops):
        photo, _ = photo_and_signature(as_bob)
        action(as_bob, "complete", stops[0], pod={"photos": [photo]})
        pod = ProofOfDelivery.objects.get()

        assert as_carol.get(f"/api/v1/pods/{pod.pk}/").status_code == 404
        assert as_carol.get("/api/v1/pods/").json()["results"] == []
        assert as_carol.get("/api/v1/pod-exceptions/").json()["results"] == []

    def test_carol_cannot_complete_acmes_stop_with_her_own_driver(self, globex, stops):
        from tests.conftest import client_for

        mallory = DriverFactory(org=globex, name="Mallory")

        response = action(client_for(mallory.user), "complete", stops[0])

        assert response.status_code == 404
        assert Stop.objects.get(pk=stops[0].pk).state == "pending"

    def test_carol_cannot_use_acmes_photo_hash(self, as_bob, globex, stops):
        from tests.conftest import client_for

        photo, _ = photo_and_signature(as_bob)
        mallory = DriverFactory(org=globex, name="Mallory")
        # Even knowing the hash, another organization's driver cannot attach Acme's photo.
        response = action(client_for(mallory.user), "complete", stops[0], pod={"photos": [photo]})

        assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_action_apply_it_once(acme, bob, route):
    """Two copies of the same completion race (the online event and a manual sync):
    one applies, the other gets the stored result."""
    import threading

    from django.db import connection

    from apps.accounts.permissions import actor_for_request  # noqa: F401 (imported for the thread's app registry)
    from apps.pod.inputs import DriverActionIn
    from apps.pod.services import driver_action_apply
    from tests.conftest import client_for  # noqa: F401

    if connection.vendor == "sqlite":
        pytest.skip("SQLite serializes writers; the race needs PostgreSQL's row locks")
    from apps.accounts.actor import Actor
    from apps.accounts.roles import ROLE_SCOPES

    actor = Actor(org=acme, scopes=ROLE_SCOPES["driver"], user_id=bob.user_id, role="driver", driver_id=bob.pk)
    stop = Stop.objects.filter(route=route).order_by("sequence").first()
    data = DriverActionIn(id=uuid.uuid4(), type="complete", stop=stop.pk)
    results, barrier = [], threading.Barrier(2)

    def run():
        barrier.wait()
        try:
            results.append(driver_action_apply(actor=actor, data=data))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(replayed for _, replayed in results) == [False, True]
    assert ProofOfDelivery.objects.count() == 1
    assert Event.objects.filter(type="stop.completed").count() == 1


def test_an_offline_completion_wins_over_handing_the_whole_route_to_another_driver(acme, as_bob, stops, route):
    """Dispatch gives Bob's route to Dana while Bob, offline, is delivering stop 1."""
    from apps.dispatch.inputs import RoutePatch
    from apps.dispatch.services.routes import route_update

    dana = DriverFactory(org=acme, name="Dana Fischer")
    route_update(actor=system_actor(acme), route=route, patch=RoutePatch(driver=dana.pk))

    response = action(as_bob, "complete", stops[0], order=stops[0].order_id, route=route.pk, offline=True)

    assert response.status_code == 200, response.json()
    assert response.json()["outcome"] == "applied"
    assert Stop.objects.get(pk=stops[0].pk).outcome == "succeeded"
    assert ProofOfDelivery.objects.get().driver.name == "Bob Baker"
    # Only a completion gets through: Bob cannot arrive at or fail Dana's stops now.
    assert action(as_bob, "fail", stops[1], reason="refused").status_code == 404


class TestIdempotencyKeyOnTheStopEndpoints:
    """API clients and dispatchers get the same exactly-once answer with a header."""

    def test_a_retried_completion_with_the_same_key_is_applied_once(self, as_dave, stops):
        key = str(uuid.uuid4())
        url = f"/api/v1/stops/{stops[0].pk}/complete/"

        first = as_dave.post(url, {"notes": "Porch"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
        retry = as_dave.post(url, {"notes": "Porch"}, format="json", HTTP_IDEMPOTENCY_KEY=key)

        assert first.status_code == retry.status_code == 200
        assert retry.json() == first.json()
        assert retry["Idempotent-Replayed"] == "true"
        assert len(_events("stop.completed")) == 1

    def test_without_a_key_a_second_completion_is_a_409_as_before(self, as_dave, stops):
        url = f"/api/v1/stops/{stops[0].pk}/complete/"
        as_dave.post(url, {}, format="json")

        assert as_dave.post(url, {}, format="json").status_code == 409

    def test_the_same_key_for_another_stop_is_a_409(self, as_dave, stops):
        key = str(uuid.uuid4())
        as_dave.post(f"/api/v1/stops/{stops[0].pk}/arrive/", format="json", HTTP_IDEMPOTENCY_KEY=key)

        response = as_dave.post(f"/api/v1/stops/{stops[1].pk}/arrive/", format="json", HTTP_IDEMPOTENCY_KEY=key)

        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_key_reused"

    def test_a_key_that_is_not_a_uuid_is_a_400(self, as_dave, stops):
        response = as_dave.post(f"/api/v1/stops/{stops[0].pk}/fail/", {"reason": "refused"}, format="json",
                                HTTP_IDEMPOTENCY_KEY="retry-1")

        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()["fields"]

    def test_carol_cannot_use_a_key_to_reach_acmes_stop(self, as_carol, stops):
        response = as_carol.post(f"/api/v1/stops/{stops[0].pk}/arrive/", format="json",
                                 HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()))

        assert response.status_code == 404
        assert not DriverAction.objects.exists()


class TestExceptionReview:
    def _double(self, as_bob, stops):
        action(as_bob, "complete", stops[0])
        action(as_bob, "complete", stops[0])
        return DispatchException.objects.get()

    def test_dave_lists_and_resolves_an_exception(self, as_bob, as_dave, stops):
        exception = self._double(as_bob, stops)
        listed = as_dave.get("/api/v1/pod-exceptions/").json()["results"]
        assert [e["id"] for e in listed] == [exception.pk]
        assert listed[0]["route"] == stops[0].route_id

        response = as_dave.post(f"/api/v1/pod-exceptions/{exception.pk}/resolve/", {"note": "Called the customer"},
                                format="json")

        assert response.status_code == 200
        assert response.json()["resolved_at"]
        assert as_dave.get("/api/v1/pod-exceptions/").json()["results"] == []
        assert _events("pod.exception_resolved")[0].payload["note"] == "Called the customer"
        assert Stop.objects.get(pk=stops[0].pk).outcome == "succeeded"  # resolving changes no outcome

    def test_resolving_twice_is_a_409(self, as_bob, as_dave, stops):
        exception = self._double(as_bob, stops)
        as_dave.post(f"/api/v1/pod-exceptions/{exception.pk}/resolve/", {}, format="json")

        response = as_dave.post(f"/api/v1/pod-exceptions/{exception.pk}/resolve/", {}, format="json")

        assert response.status_code == 409
        assert response.json()["code"] == "already_resolved"

    def test_drivers_and_carol_cannot_resolve(self, as_bob, as_carol, stops):
        exception = self._double(as_bob, stops)

        assert as_bob.post(f"/api/v1/pod-exceptions/{exception.pk}/resolve/", {}, format="json").status_code == 403
        assert as_carol.post(f"/api/v1/pod-exceptions/{exception.pk}/resolve/", {}, format="json").status_code == 404
        assert DispatchException.objects.get().resolved_at is None


@pytest.mark.django_db(transaction=True)
def test_a_completion_picked_as_a_deadlock_victim_is_applied_once_on_the_retry(acme, bob, route, monkeypatch):
    """PostgreSQL breaks a lock cycle by aborting one transaction; the driver's
    completion is run again instead of answering 503, and counts once."""
    import psycopg.errors
    from django.db import OperationalError

    from apps.accounts.actor import Actor
    from apps.accounts.roles import ROLE_SCOPES
    from apps.pod import services
    from apps.pod.inputs import DriverActionIn

    real_apply, attempts = services._apply, []

    def deadlocked_once(*args, **kwargs):
        attempts.append(1)
        result = real_apply(*args, **kwargs)  # its writes are rolled back with the abort
        if len(attempts) == 1:
            raise OperationalError("deadlock detected") from psycopg.errors.DeadlockDetected("deadlock detected")
        return result

    monkeypatch.setattr(services, "_apply", deadlocked_once)
    actor = Actor(org=acme, scopes=ROLE_SCOPES["driver"], user_id=bob.user_id, role="driver", driver_id=bob.pk)
    stop = Stop.objects.filter(route=route).order_by("sequence").first()

    action_row, replayed = services.driver_action_apply(
        actor=actor, data=DriverActionIn(id=uuid.uuid4(), type="complete", stop=stop.pk))

    assert (len(attempts), replayed) == (2, False)
    assert Stop.objects.get(pk=stop.pk).outcome == "succeeded"
    assert DriverAction.objects.filter(pk=action_row.pk).count() == 1
    assert ProofOfDelivery.objects.count() == 1
    assert Event.objects.filter(type="stop.completed").count() == 1
