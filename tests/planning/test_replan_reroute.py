"""A breakdown with auto-apply: the first complete plan reaches the drivers at once, as
one route message per driver with the new stop list, through the sequenced log."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Route, StopState
from apps.dispatch.services.routes import route_create, route_publish, route_start
from apps.events.models import Event
from apps.planning.inputs import ExceptionIn
from apps.planning.models import PlanningPolicy, PlanRun, PlanStatus
from apps.planning.replans import exception_report, replan_execute
from apps.realtime.consumers import DriverConsumer
from tests.factories import DriverFactory, OrderFactory, VehicleFactory

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

NOON = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Berlin, inside every shift and window


@pytest.fixture
def clock():
    with time_machine.travel(NOON, tick=True):
        yield


def _fleet(acme, acme_hub, bob):
    """Bob, Dana and Emil on the road with four stops each; replans apply themselves."""
    PlanningPolicy.objects.create(org=acme, auto_apply=True, replan_time_limit_s=0.3, coalesce_s=0)
    actor = system_actor(acme)
    drivers = [bob, *(DriverFactory(org=acme, name=name, home_hub=acme_hub,
                                    current_vehicle=VehicleFactory(org=acme, home_hub=acme_hub))
                      for name in ("Dana Dorn", "Emil Ernst"))]
    routes = []
    for k, driver in enumerate(drivers):
        orders = [OrderFactory(org=acme, hub=acme_hub, lat=52.50 + i / 200, lng=13.36 + k / 50,
                               window_end=datetime(2026, 11, 23, 16, 0, tzinfo=UTC)) for i in range(4)]
        route = route_create(actor=actor, data=RouteIn(hub=acme_hub.pk, date="2026-11-23", driver=driver.pk,
                                                       vehicle=driver.current_vehicle_id, orders=[o.pk for o in orders]))
        route_publish(actor=actor, route=route)
        routes.append(route_start(actor=actor, route=route))
    return routes


async def test_a_breakdown_reaches_the_other_drivers_sockets_as_their_new_stop_lists(clock, acme, acme_hub, bob):
    routes = await sync_to_async(_fleet)(acme, acme_hub, bob)
    broken, others = routes[0], routes[1:]
    orphans = set(await sync_to_async(lambda: list(broken.stops.values_list("order_id", flat=True)))())
    sockets = {}
    for route in others:
        comm = WebsocketCommunicator(DriverConsumer.as_asgi(), "/ws/driver/")
        comm.scope["user"] = await sync_to_async(lambda r=route: r.driver.user)()
        assert (await comm.connect())[0]
        welcome = await comm.receive_json_from()
        await comm.send_json_to({"type": "hello", "last_seq": welcome["seq"]})
        assert (await comm.receive_json_from())["events"] == []  # up to date
        sockets[route.pk] = comm

    exc = await sync_to_async(exception_report)(actor=system_actor(acme),
                                               data=ExceptionIn(kind="vehicle_breakdown", route=broken.pk))
    await sync_to_async(replan_execute)(plan_id=exc.replan_id)

    first = await sync_to_async(PlanRun.objects.get)(pk=exc.replan_id)
    assert first.status == PlanStatus.PUBLISHED
    assert first.result["engine"] == "insertion"  # applied before any search
    changed = set(await sync_to_async(lambda: [pk for e in Event.objects.filter(type="replan.applied")
                                               for pk in e.payload["route_ids"]])())
    assert changed & set(sockets)
    received: dict[int, list[int]] = {}
    for pk, comm in sockets.items():
        if pk not in changed:
            assert await comm.receive_nothing(timeout=0.2)  # a driver whose route did not change hears nothing
            await comm.disconnect()
            continue
        current = await sync_to_async(Route.objects.get)(pk=pk)
        while pk not in received:
            message = await comm.receive_json_from(timeout=5)
            if message["type"] != "events":
                continue
            assert all(isinstance(e["seq"], int) for e in message["events"])
            for event in message["events"]:
                if event["type"] == "route.updated" and event["payload"]["route_id"] == pk:
                    received[pk] = [s["order_id"] for s in event["payload"]["stops"]]
        # The last update the driver heard is the route as it is now.
        while not await comm.receive_nothing(timeout=0.2):
            message = await comm.receive_json_from()
            for event in message.get("events", []):
                if event["type"] == "route.updated" and event["payload"]["route_id"] == pk:
                    received[pk] = [s["order_id"] for s in event["payload"]["stops"]]
        on_route = await sync_to_async(lambda c=current: list(c.stops.order_by("sequence")
                                                              .values_list("order_id", flat=True)))()
        assert received[pk] == on_route
        await comm.disconnect()
    taken = {o for stops in received.values() for o in stops} & orphans
    assert taken == orphans  # every orphan reached the driver who now has it
    pending_left = await sync_to_async(lambda: broken.stops.filter(state=StopState.PENDING).count())()
    assert pending_left == 0


async def test_an_applied_replan_announces_each_route_once_and_moves_no_order_through_the_pool(
        clock, acme, acme_hub, bob):
    routes = await sync_to_async(_fleet)(acme, acme_hub, bob)
    exc = await sync_to_async(exception_report)(actor=system_actor(acme),
                                               data=ExceptionIn(kind="vehicle_breakdown", route=routes[0].pk))
    since = exc.pk and await sync_to_async(
        lambda: Event.objects.filter(org=acme).order_by("-sequence").values_list("sequence", flat=True).first())()

    await sync_to_async(replan_execute)(plan_id=exc.replan_id)

    def written():
        applied = list(Event.objects.filter(org=acme, type="replan.applied").order_by("sequence"))
        updates = list(Event.objects.filter(org=acme, sequence__gt=since, type="route.updated"))
        moves = Event.objects.filter(org=acme, sequence__gt=since, type__in=["order.unplanned", "order.planned"])
        return applied, updates, moves.count()

    applied, updates, pool_moves = await sync_to_async(written)()
    routes_changed = sum(len(a.payload["route_ids"]) for a in applied)
    assert len(updates) == routes_changed  # one per changed route per apply, not one per stop
    assert pool_moves == 0
    # A follow-up, if the search found a meaningfully better plan, names the plan it improves.
    follow = await sync_to_async(lambda: list(PlanRun.objects.filter(org=acme).exclude(pk=exc.replan_id)))()
    assert all(p.diff.get("improves") == exc.replan_id for p in follow)
