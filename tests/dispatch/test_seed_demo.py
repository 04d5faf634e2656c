"""``manage.py seed_demo``: the Berlin demo organization a fresh install starts with."""

from __future__ import annotations

import itertools
import zoneinfo
from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from apps.accounts.actor import system_actor
from apps.accounts.models import Membership, Organization
from apps.dispatch.demo import demo_delete
from apps.dispatch.models import (
    Driver,
    FailureReason,
    Hub,
    Order,
    OrderState,
    Route,
    RouteStatus,
    Stop,
    StopOutcome,
    StopState,
    Vehicle,
)
from apps.eta.selectors import eta_accuracy
from apps.events.models import Event
from apps.notifications.models import Message
from apps.pod.models import ProofOfDelivery
from apps.pod.requirements import requirements_for
from apps.reports.selectors import ReportFilters, report_kpis
from apps.reports.summary import summary_rebuild_day
from tests.factories import OrganizationFactory, member

DAY = date(2026, 11, 23)
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
PASSWORD = "lastmile-demo"
LOGINS = {"admin": "admin", "dispatcher": "dispatcher", **{f"driver{n}": "driver" for n in range(1, 9)}}
# Berlin's bounding box, a little generous at the edges.
LAT_RANGE, LNG_RANGE = (52.33, 52.68), (13.08, 13.77)


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    # PBKDF2 takes half a second per login and the demo has ten of them.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(*args: str, history_days: int = 0) -> str:
    # The past days are tested on their own below: most tests are about today.
    out = StringIO()
    call_command("seed_demo", *args, "--history-days", str(history_days), stdout=out)
    return out.getvalue()


@pytest.fixture
def demo(db) -> Organization:
    seed("--date", DAY.isoformat())
    return Organization.objects.get(slug="demo")


def test_it_creates_the_organization_in_berlin(demo):
    assert demo.name == "Lastmile Demo Berlin"
    assert demo.timezone == "Europe/Berlin"
    hub = Hub.objects.get(org=demo)
    assert hub.city == "Berlin" and hub.timezone == "Europe/Berlin"
    assert LAT_RANGE[0] < hub.lat < LAT_RANGE[1] and LNG_RANGE[0] < hub.lng < LNG_RANGE[1]
    assert hub.opening_hours["mon"]


def test_it_creates_one_hub_eight_vehicles_and_eight_drivers(demo):
    assert Hub.objects.filter(org=demo).count() == 1
    assert Vehicle.objects.filter(org=demo).count() == 8
    drivers = Driver.objects.filter(org=demo)
    assert drivers.count() == 8
    assert all(d.current_vehicle is not None and d.phone.startswith("+49") for d in drivers)
    assert len({d.current_vehicle_id for d in drivers}) == 8


def test_it_has_a_cargo_bike_and_a_refrigerated_van(demo):
    vehicles = Vehicle.objects.filter(org=demo)
    assert vehicles.filter(type="cargo_bike").count() == 1
    assert [v.type for v in vehicles if "refrigerated" in v.skills] == ["van"]


def test_it_gives_the_admin_the_dispatcher_and_the_drivers_working_logins(demo):
    for username, role in LOGINS.items():
        user = authenticate(username=username, password=PASSWORD)
        assert user is not None, username
        assert user.membership.org == demo and user.membership.role == role


def test_it_creates_about_120_orders_inside_berlin(demo):
    orders = Order.objects.filter(org=demo)
    assert 110 <= orders.count() <= 130
    for order in orders:
        assert LAT_RANGE[0] < order.lat < LAT_RANGE[1], order
        assert LNG_RANGE[0] < order.lng < LNG_RANGE[1], order
        assert order.address_line1 and order.postal_code.startswith(("10", "12", "13", "14")), order
        assert order.items.exists() and order.total_weight_kg > 0, order
    assert {o.source for o in orders} == {"demo"}
    assert orders.filter(geocode_confidence="low").count() >= 1
    assert orders.exclude(pod_requirements=[]).count() >= 1


def test_it_gives_orders_windows_on_the_day_that_end_after_they_start(demo):
    windowed = Order.objects.filter(org=demo, window_start__isnull=False)
    assert 0 < windowed.count() < Order.objects.filter(org=demo).count()
    for order in windowed:
        start, end = order.window_start.astimezone(BERLIN), order.window_end.astimezone(BERLIN)
        assert end > start
        assert start.date() == DAY and start.hour >= 8 and (end.hour, end.minute) <= (18, 0)


def test_it_publishes_eight_routes_whose_loads_fit_their_vehicles(demo):
    routes = Route.objects.filter(org=demo)
    assert routes.count() == 8
    for route in routes:
        assert route.status in (RouteStatus.PUBLISHED, RouteStatus.IN_PROGRESS)
        assert route.date == DAY
        orders = [s.order for s in route.stops.select_related("order")]
        assert orders
        assert sum((o.total_weight_kg for o in orders), Decimal(0)) <= route.vehicle.capacity_weight_kg
        assert sum((o.total_volume_l for o in orders), Decimal(0)) <= route.vehicle.capacity_volume_l
        assert sum(o.parcel_count for o in orders) <= route.vehicle.capacity_parcels
        assert route.driver.current_vehicle == route.vehicle


def test_it_puts_refrigerated_orders_only_on_the_refrigerated_vehicle(demo):
    stops = Stop.objects.filter(org=demo).select_related("order", "route__vehicle")
    cold_stops = [s for s in stops if "refrigerated" in s.order.required_skills]
    assert cold_stops
    assert {"refrigerated" in s.route.vehicle.skills for s in cold_stops} == {True}


def test_it_plans_every_stop_to_arrive_before_its_window_closes(demo):
    for stop in Stop.objects.filter(org=demo).select_related("order"):
        if stop.order.window_end is not None:
            assert stop.planned_arrival <= stop.order.window_end, stop


def test_it_leaves_some_orders_for_the_dispatcher_to_plan(demo):
    waiting = Order.objects.filter(org=demo, state=OrderState.CREATED)
    assert 10 <= waiting.count() <= 30
    assert not Stop.objects.filter(order__in=waiting).exists()


def test_it_has_three_drivers_under_way_and_one_recipient_absent(demo):
    started = Route.objects.filter(org=demo, status=RouteStatus.IN_PROGRESS)
    assert started.count() == 3
    assert all(r.driver.on_duty for r in started)
    delivered = Stop.objects.filter(org=demo, outcome=StopOutcome.SUCCEEDED)
    assert delivered.count() >= 3
    assert {s.order.state for s in delivered} == {OrderState.COMPLETED}
    failed = Stop.objects.get(org=demo, outcome=StopOutcome.FAILED)
    assert failed.failure_reason == FailureReason.RECIPIENT_ABSENT
    assert Stop.objects.filter(org=demo, state=StopState.ARRIVED).count() == 1


def test_it_records_the_drivers_work_under_their_own_names(demo):
    for route in Route.objects.filter(org=demo, status=RouteStatus.IN_PROGRESS):
        stop_ids = [str(pk) for pk in route.stops.values_list("pk", flat=True)]
        # What the driver did; late-risk alerts on the same stops are the system's own.
        actors = set(Event.objects.filter(org=demo, subject_type="stop", subject_id__in=stop_ids,
                                          type__in=["stop.arrived", "stop.completed", "stop.failed"])
                     .values_list("actor", flat=True))
        assert actors == {f"user:{route.driver.user_id}"}


def test_it_records_events_with_strictly_increasing_sequences(demo):
    sequences = list(Event.objects.filter(org=demo).order_by("id").values_list("sequence", flat=True))
    assert len(sequences) > 300
    assert all(a < b for a, b in itertools.pairwise(sequences))
    assert sequences[0] == 1


def test_it_prints_a_summary_with_the_logins(db):
    out = seed("--date", DAY.isoformat())
    assert "Lastmile Demo Berlin" in out
    assert "120" in out and "8 vehicles" in out
    assert PASSWORD in out
    assert all(username in out for username in LOGINS)


def test_it_does_nothing_when_the_demo_already_exists(demo):
    counts = (Order.objects.count(), Route.objects.count(), get_user_model().objects.count(), Event.objects.count())
    out = seed("--date", DAY.isoformat())
    assert "already exists" in out
    assert Organization.objects.filter(slug="demo").count() == 1
    assert (Order.objects.count(), Route.objects.count(), get_user_model().objects.count(),
            Event.objects.count()) == counts


def test_it_recreates_the_demo_on_reset(demo):
    before = list(Order.objects.filter(org=demo).order_by("external_id").values_list("external_id", "address_line1", "lat"))
    users = get_user_model().objects.count()
    out = seed("--reset", "--date", DAY.isoformat())
    assert "Deleted" in out
    fresh = Organization.objects.get(slug="demo")
    assert fresh.pk != demo.pk
    assert not Organization.objects.filter(pk=demo.pk).exists()
    assert get_user_model().objects.count() == users
    assert Route.objects.filter(org=fresh).count() == 8
    # Same day, same seed: the same demo.
    after = list(Order.objects.filter(org=fresh).order_by("external_id").values_list("external_id", "address_line1", "lat"))
    assert after == before
    assert authenticate(username="driver1", password=PASSWORD).membership.org == fresh


def test_it_resets_without_touching_other_organizations(demo):
    acme = OrganizationFactory(name="Acme", slug="acme")
    dave = member(acme, "dave", "dispatcher")
    seed("--reset", "--date", DAY.isoformat())
    assert Membership.objects.get(user=dave).org == acme


@time_machine.travel(datetime(2026, 11, 23, 23, 30, tzinfo=zoneinfo.ZoneInfo("UTC")), tick=False)
def test_it_defaults_to_today_in_berlin(db):
    seed()
    assert set(Route.objects.values_list("date", flat=True)) == {date(2026, 11, 24)}


def test_it_refuses_a_malformed_date(db):
    with pytest.raises(CommandError, match="--date"):
        seed("--date", "23.11.2026")
    assert not Organization.objects.filter(slug="demo").exists()


def test_it_refuses_and_creates_nothing_when_a_demo_username_is_taken(db):
    member(OrganizationFactory(name="Acme", slug="acme"), "dispatcher", "dispatcher")
    with pytest.raises(CommandError, match="dispatcher"):
        seed("--date", DAY.isoformat())
    assert not Organization.objects.filter(slug="demo").exists()
    assert not get_user_model().objects.filter(username="driver1").exists()


def test_it_turns_yesterdays_demo_into_todays_when_asked_if_stale(demo):
    from datetime import timedelta

    out = seed("--if-stale", "--date", (DAY + timedelta(days=1)).isoformat())

    fresh = Organization.objects.get(slug="demo")
    assert "Created" in out
    assert Route.objects.filter(org=fresh, date=DAY + timedelta(days=1)).count() == 8


def test_it_keeps_a_current_demo_when_asked_if_stale(demo):
    out = seed("--if-stale", "--date", DAY.isoformat())

    assert "nothing to do" in out
    assert Organization.objects.get(slug="demo").pk == demo.pk


# --- the past working days ---------------------------------------------------------

# DAY is a Monday: the two working days before it are Friday and Saturday (no Sunday rounds).
PAST = (date(2026, 11, 20), date(2026, 11, 21))


@pytest.fixture(scope="module")
def demo_with_history(django_db_setup, django_db_blocker, tmp_path_factory):
    # Seeded once for the tests below (two days of driving is seconds of work).
    media = tmp_path_factory.mktemp("media")
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=str(media)):
        jobs_before = set(DBTaskResult.objects.values_list("pk", flat=True))
        out = seed("--date", DAY.isoformat(), history_days=2)
        org = Organization.objects.get(slug="demo")
        yield org, out, media
        # Committed outside a test transaction: leave nothing for the tests that follow.
        demo_delete(org=org)
        DBTaskResult.objects.exclude(pk__in=jobs_before).delete()


@pytest.fixture
def past(demo_with_history, db):
    return demo_with_history[0]


def test_it_delivers_the_two_working_days_before_in_full(past):
    routes = Route.objects.filter(org=past).exclude(date=DAY)
    assert set(routes.values_list("date", flat=True)) == set(PAST)
    assert {r.status for r in routes} == {RouteStatus.COMPLETED}
    for route in routes:
        start = datetime.combine(route.date, route.driver.shift_start, tzinfo=BERLIN)
        assert start < route.started_at < route.completed_at < start + timedelta(hours=12), route
        for stop in route.stops.all():
            assert stop.state == StopState.COMPLETED, stop
            # Device times of that day, in visiting order.
            assert route.started_at < stop.arrived_at <= stop.completed_at < route.completed_at, stop


def test_past_visits_fail_now_and_then_for_a_stated_reason(past):
    attempts = Stop.objects.filter(org=past, route__date__in=PAST)
    failed = attempts.filter(outcome=StopOutcome.FAILED)
    assert 0 < failed.count() < attempts.count() * 0.2
    assert all(s.failure_reason and s.failure_reason != FailureReason.OTHER for s in failed)
    assert {s.order.state for s in attempts.filter(outcome=StopOutcome.SUCCEEDED)} == {OrderState.COMPLETED}


def test_every_past_delivery_carries_the_proof_its_order_required(past):
    delivered = Stop.objects.filter(org=past, route__date__in=PAST, outcome=StopOutcome.SUCCEEDED).select_related("order")
    signed = 0
    for stop in delivered:
        pod = ProofOfDelivery.objects.get(stop=stop)
        required = requirements_for(stop.order)
        assert pod.photos.count() >= required.min_photos, stop
        assert (pod.signature is not None) or not required.signature, stop
        assert pod.pin_verified or not required.pin, stop
        assert pod.distance_m is not None and pod.distance_m < 50, stop
        signed += pod.signature is not None
    assert signed > 0


def test_reports_and_eta_accuracy_have_figures_for_the_past_days(past):
    for day in PAST:
        summary_rebuild_day(org=past, day=day)
    actor = system_actor(past)
    figures = report_kpis(ReportFilters(actor=actor, date_from=PAST[0], date_to=PAST[1]))["kpis"]
    attempts = Stop.objects.filter(org=past, route__date__in=PAST)
    assert figures["attempts"] == attempts.count()
    assert figures["delivered"] == attempts.filter(outcome=StopOutcome.SUCCEEDED).count()
    assert 0.5 < figures["on_time_rate"] <= 1

    accuracy = eta_accuracy(org=past, date_from=PAST[0], date_to=PAST[1])["organization"]["departure"]
    assert accuracy["count"] == attempts.count()
    # Traffic makes legs differ from the plan by minutes, not by nothing or by hours.
    assert 30 < accuracy["mean_abs_s"] < 900


def test_past_customers_get_no_messages(past):
    assert not Message.objects.filter(org=past, order__stops__route__date__in=PAST).exists()


def test_today_is_as_without_a_past_and_the_summary_says_both(demo_with_history, db):
    org, out, _ = demo_with_history
    assert Route.objects.filter(org=org, date=DAY).count() == 8
    assert "orders    120: 100 on 8 routes" in out
    assert "history   2 working days before" in out


def test_a_demo_whose_drivers_captured_proof_resets_and_leaves_no_files(demo_with_history, db,
                                                                         django_capture_on_commit_callbacks):
    org, _, media = demo_with_history
    files = [p for p in media.rglob("*") if p.is_file()]
    assert files and ProofOfDelivery.objects.filter(org=org).exists()

    with django_capture_on_commit_callbacks(execute=True):
        seed("--reset", "--date", DAY.isoformat())

    assert not Organization.objects.filter(pk=org.pk).exists()
    assert not any(p.exists() for p in files)
