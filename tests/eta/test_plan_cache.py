"""The live tracker's plan cache: a plan is checked every ETA_PLAN_TTL_S with one query
for all due plans, kept while its route is unchanged, and loaded again as soon as a
change made elsewhere (another process: no after-commit hand-over here) shows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import OrderPatch
from apps.dispatch.models import Stop
from apps.dispatch.optimization.travel import default_provider
from apps.dispatch.services.orders import order_update
from apps.dispatch.services.stops import stop_complete
from apps.eta import live
from apps.tracking.models import TrackingSettings
from tests.factories import DriverFactory, VehicleFactory

from .conftest import DEPOT, MORNING, east_of_depot, make_route
from .test_live import etas, with_route_started


def leg(a, b) -> int:
    return default_provider().leg(a, b)[0]


def ping(route, point, clock, *, after: timedelta):
    """The driver reports ``point`` ``after`` the morning began; the tick refreshes."""
    clock.move_to(MORNING + after)
    live.observe(driver_id=route.driver_id, lat=point[0], lng=point[1], at=(MORNING + after).timestamp())
    return live.flush()


@pytest.fixture
def started(route, acme, clock):
    with_route_started(route, acme)
    live.tracker.reset()  # a plan adopted after a change in this process has no stamp yet
    ping(route, east_of_depot(0.5), clock, after=timedelta(minutes=1))
    return route


def test_an_unchanged_route_keeps_its_plan_after_one_query_for_its_stamp(started, clock):
    plan = live.tracker.plan_for(started.driver_id)
    live.tracker.expire()  # the check falls due

    with CaptureQueriesContext(connection) as queries:
        ping(started, east_of_depot(0.6), clock, after=timedelta(minutes=2))

    reads = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    # The stamp of every due route in one query, then the organizations' two settings.
    assert len(reads) == 3 and 'FROM "dispatch_route"' in reads[0]
    assert live.tracker.plan_for(started.driver_id) is plan


def test_a_stop_visited_elsewhere_invalidates_the_cached_plan_at_the_next_check(started, acme, clock):
    first, second, third = Stop.objects.filter(route=started).order_by("sequence")
    clock.move_to(MORNING + timedelta(minutes=4))
    # Another process records the visit: this process's tracker is not told.
    stop_complete(actor=system_actor(acme), stop=first)
    live.tracker.expire()
    here = (DEPOT[0] - 0.02, DEPOT[1])  # gone back south: the next ETA moves by minutes

    ping(started, here, clock, after=timedelta(minutes=5))

    assert [s.stop_id for s in live.tracker.plan_for(started.driver_id).stops] == [second.pk, third.pk]
    assert Stop.objects.get(pk=second.pk).eta == MORNING + timedelta(minutes=5, seconds=leg(here, east_of_depot(2)))


def test_an_address_edited_elsewhere_moves_the_eta_at_the_next_check(started, acme, clock):
    first = Stop.objects.filter(route=started).order_by("sequence").first()
    moved_to = east_of_depot(1.4)
    clock.move_to(MORNING + timedelta(minutes=2))
    order_update(actor=system_actor(acme), order=first.order, patch=OrderPatch(lat=moved_to[0], lng=moved_to[1]))
    live.tracker.expire()
    here = east_of_depot(0.5)

    ping(started, here, clock, after=timedelta(minutes=3))

    assert Stop.objects.get(pk=first.pk).eta == MORNING + timedelta(minutes=3, seconds=leg(here, moved_to))


def test_a_change_is_not_seen_before_the_check_falls_due(started, acme, clock):
    first = Stop.objects.filter(route=started).order_by("sequence").first()
    clock.move_to(MORNING + timedelta(minutes=4))
    stop_complete(actor=system_actor(acme), stop=first)

    ping(started, east_of_depot(1.5), clock, after=timedelta(minutes=5))

    # Within ETA_PLAN_TTL_S the cached plan answers; the visited stop keeps its last ETA
    # (writes only ever touch open stops).
    assert live.tracker.plan_for(started.driver_id).stops[0].stop_id == first.pk
    assert Stop.objects.get(pk=first.pk).state == "completed"


def test_a_setting_changed_in_the_console_reaches_a_kept_plan(started, acme, clock):
    plan = live.tracker.plan_for(started.driver_id)
    TrackingSettings.objects.update_or_create(org=acme, defaults={"driver_visible_within_stops": 0,
                                                                  "driver_visible_within_minutes": 1})
    live.tracker.expire()

    ping(started, east_of_depot(0.6), clock, after=timedelta(minutes=2))

    assert live.tracker.plan_for(started.driver_id) is plan
    assert (plan.visibility.within_stops, plan.visibility.within_minutes) == (0, 1)


def test_a_route_no_longer_active_drops_the_plan(started, clock):
    from apps.dispatch.models import Route

    Route.objects.filter(pk=started.pk).update(status="completed")  # completed elsewhere
    live.tracker.expire()

    assert ping(started, east_of_depot(0.6), clock, after=timedelta(minutes=2)) == 0
    assert live.tracker.plan_for(started.driver_id) is None


def test_every_route_of_a_flush_writes_its_etas_in_one_statement(started, acme, acme_hub, clock,
                                                                 django_capture_on_commit_callbacks):
    ann = DriverFactory(org=acme, name="Ann Weber", home_hub=acme_hub)
    with django_capture_on_commit_callbacks(execute=True):
        other, _ = make_route(acme, acme_hub, ann, VehicleFactory(org=acme, home_hub=acme_hub))
    with_route_started(other, acme)
    ping(other, east_of_depot(0.5), clock, after=timedelta(minutes=1))
    clock.move_to(MORNING + timedelta(minutes=8))
    for route in (started, other):  # both drivers far south: every ETA moves
        live.observe(driver_id=route.driver_id, lat=DEPOT[0] - 0.02, lng=DEPOT[1],
                     at=(MORNING + timedelta(minutes=8)).timestamp())

    with CaptureQueriesContext(connection) as queries:
        assert live.flush() == 2

    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(writes) == 1
    here = (DEPOT[0] - 0.02, DEPOT[1])
    for route in (started, other):
        assert etas(route)[0] == MORNING + timedelta(minutes=8, seconds=leg(here, east_of_depot(1)))


def test_a_batch_that_fails_to_write_drops_its_plans_and_the_next_ping_writes(started, clock, monkeypatch):
    from apps.eta import services

    def broken(pairs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "write_etas", broken)
    assert ping(started, (DEPOT[0] - 0.02, DEPOT[1]), clock, after=timedelta(minutes=3)) == 0
    assert started.driver_id not in live.tracker._plans
    monkeypatch.undo()

    assert ping(started, (DEPOT[0] - 0.02, DEPOT[1]), clock, after=timedelta(minutes=4)) == 1
    here = (DEPOT[0] - 0.02, DEPOT[1])
    assert etas(started)[0] == MORNING + timedelta(minutes=4, seconds=leg(here, east_of_depot(1)))
