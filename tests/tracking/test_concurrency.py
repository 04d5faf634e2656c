"""A phone reconnecting sends its backlog over HTTP while the WebSocket still delivers
live pings: the same driver, two connections, at the same moment (PostgreSQL in CI)."""

from __future__ import annotations

import pytest

from apps.tracking.models import DriverPosition, LocationPing
from apps.tracking.services import location_receive
from tests.dispatch.test_concurrency import _race
from tests.factories import DriverFactory

from .helpers import north_of_depot, ping

pytestmark = pytest.mark.django_db(transaction=True)


def send(driver, pings):
    return lambda: location_receive(org_id=driver.org_id, driver_id=driver.pk, pings=pings)


@pytest.mark.parametrize("attempt", range(3))
def test_the_same_backlog_twice_at_once_is_stored_once(bob, attempt):
    backlog = [ping(s, lat=north_of_depot(100 - s)[0]) for s in range(60, 0, -3)]

    first, second = _race(send(bob, backlog), send(bob, backlog))

    assert isinstance(first, dict) and isinstance(second, dict), (first, second)
    assert first["accepted"] + second["accepted"] == len(backlog)
    assert first["duplicates"] + second["duplicates"] == len(backlog)
    assert LocationPing.objects.filter(driver=bob).count() == len(backlog)
    assert DriverPosition.objects.get(driver=bob).lat == north_of_depot(97)[0]


@pytest.mark.parametrize("attempt", range(3))
def test_an_old_backlog_and_a_live_ping_at_once_leave_the_marker_on_the_live_one(bob, attempt):
    backlog = [ping(s, lat=north_of_depot(200 - s)[0]) for s in range(120, 10, -5)]
    live = ping(1, lat=north_of_depot(199)[0])

    results = _race(send(bob, backlog), send(bob, [live]))

    assert all(isinstance(r, dict) for r in results), results
    assert DriverPosition.objects.get(driver=bob).lat == live["lat"]
    assert LocationPing.objects.filter(driver=bob).count() == len(backlog) + 1


def test_two_drivers_first_pings_at_once_each_get_their_row(bob, acme):
    ann = DriverFactory(org=acme)

    results = _race(send(bob, [ping(1)]), send(ann, [ping(1)]))

    assert [r["accepted"] for r in results] == [1, 1], results
    assert DriverPosition.objects.count() == 2
