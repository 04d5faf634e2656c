"""ETAs follow the driver: each accepted ping refreshes the route's remaining stops from
the cached plan, writes what moved, and raises a late-risk alert once."""

from __future__ import annotations

from datetime import timedelta

import jsonschema
import pytest
from asgiref.sync import async_to_sync

from apps.accounts.actor import system_actor
from apps.dispatch.models import Stop
from apps.dispatch.optimization.travel import default_provider
from apps.dispatch.services.routes import route_set_stops, route_start
from apps.dispatch.services.stops import stop_arrive, stop_complete
from apps.eta import live
from apps.eta.models import StopPrediction
from apps.events.models import Event
from apps.realtime.groups import org_group, track_group
from apps.tracking.services import location_receive

from .conftest import DEPOT, MORNING, east_of_depot, make_route


def leg(a, b) -> int:
    return default_provider().leg(a, b)[0]


def ping_at(driver, point, clock_now=None, **fields):
    from django.utils import timezone

    moment = clock_now or timezone.now()
    return location_receive(org_id=driver.org_id, driver_id=driver.pk, pings=[
        {"lat": point[0], "lng": point[1], "accuracy_m": 8, "at": moment.isoformat(), **fields}])


@pytest.fixture
def drive(bob, django_capture_on_commit_callbacks):
    """Bob reports a position and the tracker refreshes, as the fan-out tick would."""
    def at(point):
        with django_capture_on_commit_callbacks(execute=True):
            result = ping_at(bob, point)
        assert result["accepted"] == 1 and not result["flagged"]
        with django_capture_on_commit_callbacks(execute=True):
            return live.flush()
    return at


def etas(route):
    return [s.eta for s in Stop.objects.filter(route=route).order_by("sequence")]


def test_publishing_gives_every_stop_an_eta_and_keeps_it_as_the_first_of_the_day(route):
    stored = etas(route)

    assert all(stored)
    first = dict(StopPrediction.objects.filter(route=route).values_list("stop_id", "first_eta"))
    assert [first[s.pk] for s in Stop.objects.filter(route=route).order_by("sequence")] == stored


def test_a_ping_times_the_remaining_stops_from_where_the_driver_is(route, bob, acme, drive, clock):
    with_route_started(route, acme)
    clock.shift(timedelta(minutes=10))
    here = east_of_depot(0.5)

    assert drive(here) == 1

    now = MORNING + timedelta(minutes=10)
    first, second, third = etas(route)
    assert first == now + timedelta(seconds=leg(here, east_of_depot(1)))
    # Then the service time (120 s) and the next leg, twice.
    assert second == first + timedelta(seconds=120 + leg(east_of_depot(1), east_of_depot(2)))
    assert third == second + timedelta(seconds=120 + leg(east_of_depot(2), east_of_depot(3)))


def test_a_driver_off_route_gets_later_etas_from_where_they_really_are(route, acme, drive, clock):
    with_route_started(route, acme)
    clock.shift(timedelta(minutes=10))
    drive(east_of_depot(0.5))
    on_route = etas(route)
    clock.shift(timedelta(minutes=5))

    lost = (DEPOT[0] - 0.03, DEPOT[1] - 0.02)  # 3.6 km south-west: the wrong way
    drive(lost)

    first, second, third = etas(route)
    assert first == MORNING + timedelta(minutes=15, seconds=leg(lost, east_of_depot(1)))
    assert first - on_route[0] > timedelta(minutes=10)
    # The stops after it keep their spacing: service plus the planned legs.
    assert (second - first, third - second) == (on_route[1] - on_route[0], on_route[2] - on_route[1])


def test_a_ping_that_moves_no_eta_by_30_seconds_writes_and_reads_nothing(route, acme, drive, clock,
                                                                          django_assert_num_queries):
    with_route_started(route, acme)
    drive(east_of_depot(0.5))
    before = etas(route)
    clock.shift(timedelta(seconds=1))
    live.observe(driver_id=route.driver_id, lat=east_of_depot(0.52)[0], lng=east_of_depot(0.52)[1],
                 at=(MORNING + timedelta(seconds=1)).timestamp())

    with django_assert_num_queries(0):
        assert live.flush() == 1

    assert etas(route) == before


def test_the_plan_is_read_once_and_then_a_ping_only_writes_what_moved(route, acme, drive, clock):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with_route_started(route, acme)
    drive(east_of_depot(0.2))
    clock.shift(timedelta(minutes=5))
    live.observe(driver_id=route.driver_id, lat=DEPOT[0] - 0.02, lng=DEPOT[1],
                 at=(MORNING + timedelta(minutes=5)).timestamp())

    with CaptureQueriesContext(connection) as queries:
        live.flush()

    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 1 and statements[0].startswith('UPDATE "dispatch_stop"')


def test_a_route_change_replaces_the_cached_plan(route, acme, drive, clock, django_capture_on_commit_callbacks):
    with_route_started(route, acme)
    drive(east_of_depot(0.5))
    stops = list(Stop.objects.filter(route=route).order_by("sequence"))

    with django_capture_on_commit_callbacks(execute=True):
        route_set_stops(actor=system_actor(acme), route=route, order_ids=[stops[2].order_id, stops[0].order_id,
                                                                         stops[1].order_id])

    third_first = Stop.objects.get(pk=stops[2].pk)
    assert third_first.eta == MORNING + timedelta(seconds=leg(east_of_depot(0.5), east_of_depot(3)))
    assert live.tracker.plan_for(route.driver_id).stops[0].stop_id == stops[2].pk


def test_a_stop_predicted_past_its_window_raises_late_risk_once_and_clears_when_it_recovers(
        clock, acme, acme_hub, bob, acme_van, drive, django_capture_on_commit_callbacks):
    closes = MORNING + timedelta(minutes=15)
    with django_capture_on_commit_callbacks(execute=True):
        route, _ = make_route(acme, acme_hub, bob, acme_van, windows=[(None, closes), (None, None), (None, None)])
    with_route_started(route, acme)
    first = Stop.objects.filter(route=route).order_by("sequence").first()
    far = (DEPOT[0] + 0.12, DEPOT[1])  # 13 km north: about 34 minutes away

    for seconds in (0, 5, 10):
        clock.move_to(MORNING + timedelta(seconds=seconds))
        drive(far)
    clock.move_to(MORNING + timedelta(minutes=7))  # back near the first stop, 8 minutes before it closes
    drive(east_of_depot(0.9))

    alerts = list(Event.objects.filter(org=acme, subject_type="stop", subject_id=str(first.pk),
                                       type__startswith="stop.late_risk").order_by("sequence"))
    assert [e.type for e in alerts] == ["stop.late_risk", "stop.late_risk_cleared"]
    assert alerts[0].payload["late_by_s"] > 15 * 60
    assert alerts[0].payload["route_id"] == route.pk and alerts[0].actor == "system"
    assert StopPrediction.objects.get(stop=first).late_risk_since is None


def test_an_eta_just_inside_the_window_does_not_clear_the_alert(clock, acme, acme_hub, bob, acme_van, drive,
                                                                django_capture_on_commit_callbacks, settings):
    settings.ETA_LATE_CLEAR_S = 120
    closes = MORNING + timedelta(minutes=10)
    with django_capture_on_commit_callbacks(execute=True):
        route, _ = make_route(acme, acme_hub, bob, acme_van, windows=[(None, closes), (None, None), (None, None)])
    with_route_started(route, acme)
    drive((DEPOT[0] + 0.12, DEPOT[1]))
    # 60 s inside the window: inside, but not by the 120 s that clears the alert.
    clock.shift(timedelta(seconds=5))
    target = east_of_depot(1)
    close_enough = (target[0] + 0.001, target[1])  # ~111 m: a leg of ~17 s
    clock.move_to(closes - timedelta(seconds=60 + leg(close_enough, target)))
    drive(close_enough)

    types = list(Event.objects.filter(org=acme, type__startswith="stop.late_risk").values_list("type", flat=True))
    assert types == ["stop.late_risk"]


def test_the_eta_when_the_driver_sets_off_is_kept_for_measuring_accuracy(route, acme, drive, clock,
                                                                         django_capture_on_commit_callbacks):
    first, second, _ = Stop.objects.filter(route=route).order_by("sequence")
    with_route_started(route, acme)
    at_start = Stop.objects.get(pk=first.pk).eta
    clock.shift(timedelta(minutes=3))
    with django_capture_on_commit_callbacks(execute=True):
        stop_arrive(actor=system_actor(acme), stop=first)
    clock.shift(timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        stop_complete(actor=system_actor(acme), stop=first)
    next_eta = Stop.objects.get(pk=second.pk).eta

    predictions = {p.stop_id: p for p in StopPrediction.objects.filter(route=route)}
    assert predictions[first.pk].departure_eta == at_start
    assert predictions[first.pk].departed_at == MORNING
    assert predictions[second.pk].departure_eta == next_eta
    assert predictions[second.pk].departed_at == MORNING + timedelta(minutes=5)


def test_new_etas_reach_the_console_and_the_customers_tracking_page(route, acme, drive, clock, layer):
    with_route_started(route, acme)
    console = async_to_sync(layer.new_channel)()
    page = async_to_sync(layer.new_channel)()
    first = Stop.objects.filter(route=route).order_by("sequence").first()
    async_to_sync(layer.group_add)(org_group(acme.pk), console)
    async_to_sync(layer.group_add)(track_group(first.order_id), page)
    clock.shift(timedelta(minutes=3))

    drive((DEPOT[0] - 0.02, DEPOT[1]))

    from apps.realtime.schemas import MESSAGE_SCHEMAS

    etas_message = async_to_sync(layer.receive)(console)["payload"]
    jsonschema.validate(etas_message, MESSAGE_SCHEMAS["etas"], format_checker=jsonschema.FormatChecker())
    assert etas_message["type"] == "etas" and etas_message["route_id"] == route.pk
    assert {e["stop_id"] for e in etas_message["etas"]} == set(Stop.objects.filter(route=route).values_list("pk", flat=True))
    delivery = async_to_sync(layer.receive)(page)["payload"]
    jsonschema.validate(delivery, MESSAGE_SCHEMAS["delivery"], format_checker=jsonschema.FormatChecker())
    assert delivery["type"] == "delivery"
    assert delivery["delivery"]["eta"] == Stop.objects.get(pk=first.pk).eta.isoformat()


def with_route_started(route, acme):
    from django.db import transaction

    with transaction.atomic():
        route_start(actor=system_actor(acme), route=route)
    route.refresh_from_db()


def test_a_live_update_shows_the_driver_only_to_the_customers_he_is_close_to(route, acme, drive, clock, layer):
    from apps.tracking.models import TrackingSettings

    TrackingSettings.objects.create(org=acme, driver_visible_within_stops=0, driver_visible_within_minutes=0)
    live.tracker.reset()
    with_route_started(route, acme)
    first, _, third = Stop.objects.filter(route=route).order_by("sequence")
    near, far = async_to_sync(layer.new_channel)(), async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(track_group(first.order_id), near)
    async_to_sync(layer.group_add)(track_group(third.order_id), far)
    clock.shift(timedelta(minutes=3))

    drive((DEPOT[0] - 0.02, DEPOT[1]))

    near_update = async_to_sync(layer.receive)(near)["payload"]["delivery"]
    far_update = async_to_sync(layer.receive)(far)["payload"]["delivery"]
    assert near_update["stops_away"] == 0 and near_update["driver"]["position"]["lat"] == DEPOT[0] - 0.02
    assert far_update["stops_away"] == 2 and far_update["driver"] == {"first_name": "Bob", "position": None}
