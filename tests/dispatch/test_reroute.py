"""Re-routing several routes at once (a replan's apply): stops change driver in one
pass, each changed route is announced once with its new stop list, all or nothing."""

from __future__ import annotations

import pytest

from apps.accounts.actor import system_actor
from apps.common.exceptions import Conflict, ValidationFailed
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Order, OrderState, Route, Stop, StopState
from apps.dispatch.services.reroute import routes_reroute
from apps.dispatch.services.routes import route_create, route_publish, route_start
from apps.dispatch.services.stops import stop_complete
from apps.events.models import Event
from tests.factories import DriverFactory, OrderFactory, VehicleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_vans(acme, acme_hub, bob):
    """Bob and Dana on the road today with three orders each; Bob has done his first."""
    actor = system_actor(acme)
    dana = DriverFactory(org=acme, name="Dana Dorn", home_hub=acme_hub,
                         current_vehicle=VehicleFactory(org=acme, home_hub=acme_hub))
    routes = []
    for k, driver in enumerate((bob, dana)):
        orders = [OrderFactory(org=acme, hub=acme_hub, lat=52.5 + i / 100, lng=13.4 + k / 100) for i in range(3)]
        route = route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date="2026-11-23", driver=driver.pk,
                                                       vehicle=driver.current_vehicle_id, orders=[o.pk for o in orders]))
        route_publish(actor=actor, route=route)
        routes.append(route_start(actor=actor, route=route))
    stop_complete(actor=actor, stop=routes[0].stops.order_by("sequence").first())
    return routes


def pending(route):
    return list(Stop.objects.filter(route=route, state=StopState.PENDING).order_by("sequence")
                .values_list("order_id", flat=True))


def test_a_stop_moved_to_another_driver_keeps_its_order_state_and_history(acme, two_vans):
    bob_route, dana_route = two_vans
    moving = pending(bob_route)[0]
    stop_id = Stop.objects.get(order_id=moving, state=StopState.PENDING).pk
    since = Event.objects.filter(org=acme).order_by("-sequence").values_list("sequence", flat=True).first()

    changed = routes_reroute(actor=system_actor(acme), sequences={
        bob_route.pk: pending(bob_route)[1:], dana_route.pk: [moving, *pending(dana_route)]})

    assert {r.pk for r in changed} == {bob_route.pk, dana_route.pk}
    assert pending(dana_route)[0] == moving
    moved = Stop.objects.get(pk=stop_id)
    assert moved.route_id == dana_route.pk and moved.sequence == 1
    assert Order.objects.get(pk=moving).state == OrderState.OUT_FOR_DELIVERY
    new = Event.objects.filter(org=acme, sequence__gt=since)
    # One announcement per changed route; no unplan/plan/dispatch/start round trip per stop.
    assert not new.filter(type__startswith="order.").exists()
    assert sorted(new.filter(type="route.updated").values_list("subject_id", flat=True)) == sorted(
        [str(bob_route.pk), str(dana_route.pk)])


def test_each_route_update_carries_the_whole_new_stop_list_with_times(acme, two_vans):
    bob_route, dana_route = two_vans
    moving = pending(bob_route)[0]
    routes_reroute(actor=system_actor(acme), sequences={
        bob_route.pk: pending(bob_route)[1:], dana_route.pk: [*pending(dana_route), moving]})

    update = Event.objects.filter(type="route.updated", subject_id=str(dana_route.pk)).latest("sequence")
    payload = update.payload
    assert payload["reason"] == "replan" and payload["added"] == [moving] and payload["removed"] == []
    assert payload["version"] == Route.objects.get(pk=dana_route.pk).version
    stops = payload["stops"]
    assert [s["order_id"] for s in stops] == [*pending(dana_route)]
    assert [s["sequence"] for s in stops] == [1, 2, 3, 4]
    # Who the customers are stays out of the log (it feeds partners' webhooks).
    assert not {"customer_name", "address_line1", "order"} & set(stops[0])
    done = Event.objects.filter(type="route.updated", subject_id=str(bob_route.pk)).latest("sequence").payload["stops"]
    assert done[0]["state"] == StopState.COMPLETED and [s["sequence"] for s in done] == [1, 2]


def test_the_moved_stop_gets_its_new_times_once_the_reroute_is_committed(
        acme, two_vans, django_capture_on_commit_callbacks):
    bob_route, dana_route = two_vans
    moving = pending(bob_route)[0]
    Stop.objects.filter(order_id=moving).update(eta=None, planned_arrival=None)

    with django_capture_on_commit_callbacks(execute=True):
        routes_reroute(actor=system_actor(acme), sequences={
            bob_route.pk: pending(bob_route)[1:], dana_route.pk: [*pending(dana_route), moving]})

    stop = Stop.objects.get(order_id=moving)
    assert stop.eta is not None and stop.planned_arrival is not None
    last_before = Stop.objects.filter(route=dana_route, sequence=3).get()
    assert stop.planned_arrival > last_before.planned_arrival  # timed as the last stop of Dana's route


def test_an_order_from_the_pool_is_planned_and_one_left_out_returns_to_it(acme, acme_hub, two_vans):
    bob_route, dana_route = two_vans
    urgent = OrderFactory(org=acme, hub=acme_hub, lat=52.51, lng=13.41)
    dropped = pending(dana_route)[-1]

    routes_reroute(actor=system_actor(acme), sequences={
        bob_route.pk: [urgent.pk, *pending(bob_route)], dana_route.pk: pending(dana_route)[:-1]})

    assert Order.objects.get(pk=urgent.pk).state == OrderState.OUT_FOR_DELIVERY
    assert Order.objects.get(pk=dropped).state == OrderState.CREATED
    assert not Stop.objects.filter(order_id=dropped).exists()
    assert list(Event.objects.filter(subject_type="order", subject_id=str(urgent.pk))
                .values_list("type", flat=True).order_by("sequence")) == [
        "order.planned", "order.dispatched", "order.out_for_delivery"]
    assert Event.objects.filter(type="order.unplanned", subject_id=str(dropped)).exists()


def test_a_route_changed_underneath_aborts_the_whole_reroute(acme, two_vans):
    bob_route, dana_route = two_vans
    before = {r.pk: (Route.objects.get(pk=r.pk).version, pending(r)) for r in two_vans}
    moving = pending(bob_route)[0]

    with pytest.raises(Conflict) as caught:
        routes_reroute(actor=system_actor(acme), sequences={
            bob_route.pk: pending(bob_route)[1:], dana_route.pk: [moving, *pending(dana_route)]},
            expected_versions={bob_route.pk: before[bob_route.pk][0], dana_route.pk: before[dana_route.pk][0] - 1})

    assert caught.value.code == "version_conflict"
    assert {r.pk: (Route.objects.get(pk=r.pk).version, pending(r)) for r in two_vans} == before


def test_a_visited_order_cannot_be_put_back_on_a_route(acme, two_vans):
    bob_route, dana_route = two_vans
    done = Stop.objects.get(route=bob_route, state=StopState.COMPLETED).order_id

    with pytest.raises(ValidationFailed):
        routes_reroute(actor=system_actor(acme), sequences={bob_route.pk: pending(bob_route),
                                                            dana_route.pk: [done, *pending(dana_route)]})
