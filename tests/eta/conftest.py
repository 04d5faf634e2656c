"""ETA fixtures: a frozen delivery morning, Bob's published route of three deliveries
heading east from the depot, and the live tracker run by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.services.routes import route_create, route_publish
from apps.eta import live
from apps.tracking import fanout
from tests.factories import OrderFactory

# 08:00 UTC on the delivery day.
MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
DEPOT = (52.5290, 13.3726)


@pytest.fixture(autouse=True)
def manual_tracker():
    fanout.coalescer.stop()
    fanout.coalescer.autostart = False
    fanout.coalescer.discard_pending()
    from apps.notifications.triggers import requested

    live.tracker.reset()
    requested.reset()
    yield live.tracker
    live.tracker.reset()
    requested.reset()
    fanout.coalescer.discard_pending()


@pytest.fixture
def clock():
    with time_machine.travel(MORNING, tick=False) as traveller:
        yield traveller


@pytest.fixture
def layer(settings):
    from channels.layers import get_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


def east_of_depot(km: float) -> tuple[float, float]:
    return DEPOT[0], DEPOT[1] + km / 67.8  # 1 degree of longitude is ~67.8 km at Berlin's latitude


def make_route(acme, hub, driver, van, *, windows=None, planned_start=None):
    """Deliveries 1, 2 and 3 km east of the depot, in that order."""
    windows = windows or [(None, None)] * 3
    orders = []
    for km, (start, end) in zip((1, 2, 3), windows, strict=True):
        lat, lng = east_of_depot(km)
        orders.append(OrderFactory(org=acme, lat=lat, lng=lng, service_time_s=120, window_start=start, window_end=end))
    actor = system_actor(acme)
    route = route_create(actor=actor, data=RouteIn(
        hub=hub.pk, date="2026-11-23", driver=driver.pk, vehicle=van.pk, orders=[o.pk for o in orders],
        planned_start=(planned_start or MORNING).isoformat()))
    return route_publish(actor=actor, route=route), orders


@pytest.fixture
def route(clock, acme, acme_hub, bob, acme_van, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        built, _ = make_route(acme, acme_hub, bob, acme_van)
    return built


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
