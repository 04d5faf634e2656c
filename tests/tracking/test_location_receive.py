"""location_receive: Traccar-style filters, dedupe, and a marker that only moves forward.

Bob drives for Acme; his pings arrive live (one at a time) or as a backlog (a batch).
"""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from apps.tracking.models import DriverPosition, LocationPing, PingStatus
from apps.tracking.selectors import latest_positions
from apps.tracking.services import location_receive
from tests.factories import DriverFactory

from .helpers import DEPOT, at, north_of_depot, ping, utc

pytestmark = pytest.mark.usefixtures("clock")


def receive(driver, pings):
    return location_receive(org_id=driver.org_id, driver_id=driver.pk, pings=pings)


def shown_position(driver) -> tuple[float, float, str] | None:
    position = DriverPosition.objects.filter(driver=driver, device_time__isnull=False).first()
    return (position.lat, position.lng, position.device_time.isoformat()) if position else None


# --- rejected: not stored ----------------------------------------------------------------

REJECTED = [
    ("a string, not an object", "here I am", "bad_ping"),
    ("a list, not an object", [52.5, 13.4], "bad_ping"),
    ("no latitude", ping(lat=None), "invalid_coordinates"),
    ("latitude above 90", ping(lat=90.5), "invalid_coordinates"),
    ("latitude below -90", ping(lat=-91), "invalid_coordinates"),
    ("longitude above 180", ping(lng=180.01), "invalid_coordinates"),
    ("longitude below -180", ping(lng=-200), "invalid_coordinates"),
    ("latitude as a string", ping(lat="52.52"), "invalid_coordinates"),
    ("latitude as a boolean", ping(lat=True), "invalid_coordinates"),
    ("latitude not a number", ping(lat=math.nan), "invalid_coordinates"),
    ("longitude infinite", ping(lng=math.inf), "invalid_coordinates"),
    ("null island (no fix)", ping(lat=0, lng=0), "invalid_coordinates"),
    ("no accuracy", {k: v for k, v in ping().items() if k != "accuracy_m"}, "invalid_accuracy"),
    ("negative accuracy", ping(accuracy_m=-1), "invalid_accuracy"),
    ("negative speed", ping(speed_mps=-3), "invalid_speed"),
    ("speed as a string", ping(speed_mps="fast"), "invalid_speed"),
    ("heading above 360", ping(heading=361), "invalid_heading"),
    ("negative heading", ping(heading=-1), "invalid_heading"),
    ("no device time", {k: v for k, v in ping().items() if k != "at"}, "invalid_time"),
    ("device time without an offset", ping(at="2026-11-23T09:00:00"), "invalid_time"),
    ("device time as epoch seconds", ping(at=1795424400), "invalid_time"),
    ("device time not a time", ping(at="yesterday-ish"), "invalid_time"),
]


@pytest.mark.parametrize(("raw", "code"), [(raw, code) for _, raw, code in REJECTED],
                         ids=[name for name, _, _ in REJECTED])
def test_a_malformed_ping_is_rejected_with_a_code_and_not_stored(bob, raw, code):
    result = receive(bob, [raw])

    assert result["accepted"] == 0
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(0, code)]
    assert result["rejected"][0]["message"]
    assert not LocationPing.objects.exists()


@pytest.mark.parametrize(("seconds_ahead", "code"), [(121, "future_time"), (3600, "future_time")])
def test_a_device_time_more_than_two_minutes_ahead_is_refused(bob, seconds_ahead, code):
    result = receive(bob, [ping(-seconds_ahead)])

    assert [r["code"] for r in result["rejected"]] == [code]
    assert not LocationPing.objects.exists()


def test_a_device_clock_a_little_fast_is_tolerated_and_shown(bob):
    result = receive(bob, [ping(-90)])

    assert result == {"accepted": 1, "duplicates": 0, "rejected": [], "flagged": 0}
    assert LocationPing.objects.get().status == PingStatus.SHOWN


def test_a_reset_device_clock_older_than_the_history_is_refused(bob):
    result = receive(bob, [ping(at="1901-12-13T20:45:52.2073437Z"), ping(31 * 86400)])

    assert [r["code"] for r in result["rejected"]] == ["too_old", "too_old"]


# --- stored, but not shown -----------------------------------------------------------------

FLAGGED = [
    ("accuracy worse than 100 m", {"accuracy_m": 150}, 0, PingStatus.INACCURATE),
    ("device time 13 hours old", {}, 13 * 3600, PingStatus.STALE_TIME),
]


@pytest.mark.parametrize(("fields", "seconds_ago", "status"), [case[1:] for case in FLAGGED],
                         ids=[case[0] for case in FLAGGED])
def test_a_doubtful_ping_is_kept_but_not_shown(bob, fields, seconds_ago, status):
    result = receive(bob, [ping(seconds_ago, **fields)])

    assert result == {"accepted": 1, "duplicates": 0, "rejected": [], "flagged": 1}
    assert LocationPing.objects.get().status == status
    assert shown_position(bob) is None
    assert latest_positions(org_id=bob.org_id) == []


@pytest.mark.parametrize(("accuracy", "status"), [(100, PingStatus.SHOWN), (100.5, PingStatus.INACCURATE)])
def test_the_accuracy_threshold_is_a_setting(bob, settings, accuracy, status):
    assert settings.LOCATION_MAX_ACCURACY_M == 100

    receive(bob, [ping(accuracy_m=accuracy)])

    assert LocationPing.objects.get().status == status


def test_a_jump_faster_than_70_mps_is_flagged_and_the_marker_stays(bob):
    lat, lng = north_of_depot(500)

    result = receive(bob, [ping(10), ping(9, lat=lat, lng=lng)])  # 500 m in 1 s

    assert result == {"accepted": 2, "duplicates": 0, "rejected": [], "flagged": 1}
    statuses = list(LocationPing.objects.order_by("device_time").values_list("status", flat=True))
    assert statuses == [PingStatus.SHOWN, PingStatus.JUMP]
    assert shown_position(bob)[:2] == DEPOT


def test_the_next_point_is_judged_against_the_last_shown_one_not_the_jump(bob):
    lat, lng = north_of_depot(500)
    receive(bob, [ping(10), ping(9, lat=lat, lng=lng)])
    back_on_track = north_of_depot(10)

    receive(bob, [ping(8, lat=back_on_track[0], lng=back_on_track[1])])

    assert LocationPing.objects.order_by("device_time").last().status == PingStatus.SHOWN
    assert shown_position(bob)[:2] == back_on_track


def test_driving_at_65_mps_is_not_a_jump(bob):
    lat, lng = north_of_depot(650)

    result = receive(bob, [ping(20), ping(10, lat=lat, lng=lng)])

    assert result["flagged"] == 0


def test_a_real_move_after_a_frozen_receiver_is_shown_once_the_speed_is_plausible(bob):
    """As in the Munich trace: the receiver sat still, then caught up 470 m further on
    and drove on at 16 m/s. Points are flagged until 470 m + 16 m/s over the time since
    the last shown point drops under 70 m/s: 8 of them."""
    receive(bob, [ping(s) for s in range(30, 20, -1)])
    caught_up = [north_of_depot(470 + 16 * k) for k in range(12)]

    result = receive(bob, [ping(20 - k, lat=lat, lng=lng) for k, (lat, lng) in enumerate(caught_up)])

    assert result["flagged"] == 8
    assert LocationPing.objects.filter(status=PingStatus.JUMP).count() == 8
    assert shown_position(bob)[:2] == caught_up[-1]


def test_the_speed_limit_is_a_setting(bob, settings):
    settings.LOCATION_MAX_SPEED_MPS = 20
    lat, lng = north_of_depot(30)

    result = receive(bob, [ping(10), ping(9, lat=lat, lng=lng)])

    assert result["flagged"] == 1


# --- duplicates -------------------------------------------------------------------------------


def test_a_resent_backlog_is_dropped_as_duplicates(bob):
    backlog = [ping(30), ping(20), ping(10)]
    receive(bob, backlog)

    result = receive(bob, backlog)

    assert result == {"accepted": 0, "duplicates": 3, "rejected": [], "flagged": 0}
    assert LocationPing.objects.count() == 3


def test_the_same_device_time_twice_in_one_batch_keeps_the_first(bob):
    first, again = ping(10), ping(10, lat=north_of_depot(5)[0])

    result = receive(bob, [first, again])

    assert (result["accepted"], result["duplicates"]) == (1, 1)
    assert LocationPing.objects.get().lat == DEPOT[0]


def test_the_same_instant_written_with_another_offset_is_a_duplicate(bob):
    receive(bob, [ping(at="2026-11-23T08:59:00+00:00")])

    result = receive(bob, [ping(at="2026-11-23T09:59:00+01:00")])

    assert result["duplicates"] == 1


def test_two_drivers_may_report_the_same_instant(bob, acme):
    ann = DriverFactory(org=acme, name="Ann Arbor")

    receive(bob, [ping(5)])
    result = receive(ann, [ping(5)])

    assert result["accepted"] == 1


# --- out of order -------------------------------------------------------------------------------


def test_an_out_of_order_ping_is_stored_but_never_moves_the_marker_back(bob):
    newer, older = north_of_depot(100), north_of_depot(50)
    receive(bob, [ping(10, lat=newer[0], lng=newer[1])])

    result = receive(bob, [ping(20, lat=older[0], lng=older[1])])

    assert result == {"accepted": 1, "duplicates": 0, "rejected": [], "flagged": 0}
    assert LocationPing.objects.count() == 2
    assert shown_position(bob) == (*newer, utc(at(10)).isoformat())


def test_a_backlog_in_any_order_ends_at_its_newest_point(bob):
    points = {s: north_of_depot(100 - s) for s in (60, 50, 40, 30, 20, 10)}
    shuffled = [50, 10, 60, 30, 20, 40]

    result = receive(bob, [ping(s, lat=points[s][0], lng=points[s][1]) for s in shuffled])

    assert (result["accepted"], result["flagged"]) == (6, 0)
    assert shown_position(bob)[:2] == points[10]


def test_a_late_backlog_is_judged_against_the_history_before_it(bob):
    receive(bob, [ping(300)])
    receive(bob, [ping(5, lat=north_of_depot(300)[0])])  # the live stream went on
    jump = north_of_depot(5000)

    result = receive(bob, [ping(299, lat=jump[0], lng=jump[1]), ping(200, lat=north_of_depot(100)[0])])

    assert result["flagged"] == 1
    assert LocationPing.objects.get(lat=jump[0]).status == PingStatus.JUMP
    assert shown_position(bob)[:2] == north_of_depot(300)


def test_a_mixed_backlog_reports_each_kind(bob):
    batch = [ping(40), "garbage", ping(30, accuracy_m=500), ping(40), ping(-600), ping(20)]

    result = receive(bob, batch)

    assert result == {
        "accepted": 3, "duplicates": 1, "flagged": 1,
        "rejected": [
            {"index": 1, "code": "bad_ping", "message": "A ping must be a JSON object."},
            {"index": 4, "code": "future_time", "message": result["rejected"][1]["message"]},
        ],
    }


# --- the driver -------------------------------------------------------------------------------------


def test_an_inactive_driver_cannot_report(bob):
    bob.active = False
    bob.save()

    result = receive(bob, [ping(5), ping(4)])

    assert [r["code"] for r in result["rejected"]] == ["driver_not_allowed"] * 2
    assert not LocationPing.objects.exists()


def test_a_driver_id_from_another_organization_is_refused(bob, globex):
    result = location_receive(org_id=globex.pk, driver_id=bob.pk, pings=[ping()])

    assert [r["code"] for r in result["rejected"]] == ["driver_not_allowed"]
    assert not LocationPing.objects.exists()
    assert not DriverPosition.objects.exists()


def test_a_batch_that_is_not_a_list_is_rejected_not_raised(bob):
    result = location_receive(org_id=bob.org_id, driver_id=bob.pk, pings={"lat": 1})  # type: ignore[arg-type]

    assert result["accepted"] == 0
    assert result["rejected"][0]["code"] == "bad_ping"


def test_pings_beyond_the_batch_limit_are_returned_to_send_again(bob, settings):
    settings.LOCATION_MAX_BATCH = 3

    result = receive(bob, [ping(s) for s in (50, 40, 30, 20, 10)])

    assert result["accepted"] == 3
    assert [(r["index"], r["code"]) for r in result["rejected"]] == [(3, "batch_limit"), (4, "batch_limit")]


# --- what is stored and shown -------------------------------------------------------------------------


def test_a_ping_is_stored_with_its_fields_and_both_times(bob, clock):
    receive(bob, [{"type": "ping", "lat": 52.52, "lng": 13.4, "accuracy_m": 8, "speed_mps": 6.1, "heading": 90,
                   "at": "2026-11-23T09:59:58+01:00"}])

    stored = LocationPing.objects.get()
    assert (stored.org_id, stored.driver_id) == (bob.org_id, bob.pk)
    assert (stored.lat, stored.lng, stored.accuracy_m, stored.speed_mps, stored.heading) == (52.52, 13.4, 8, 6.1, 90)
    assert stored.device_time == utc("2026-11-23T08:59:58+00:00")
    assert stored.received_at == utc("2026-11-23T09:00:00+00:00")


def test_speed_and_heading_are_optional(bob):
    result = receive(bob, [{"lat": 52.52, "lng": 13.4, "accuracy_m": 5, "at": at(1)}, ping(0, speed_mps=None)])

    assert result["accepted"] == 2
    assert latest_positions(org_id=bob.org_id)[0]["speed_mps"] is None


def test_latest_positions_are_shaped_as_the_protocol_says(bob):
    receive(bob, [ping(2, accuracy_m=8, speed_mps=6.1, heading=90)])

    assert latest_positions(org_id=bob.org_id) == [{
        "driver_id": bob.pk, "lat": DEPOT[0], "lng": DEPOT[1], "accuracy_m": 8, "speed_mps": 6.1, "heading": 90,
        "at": "2026-11-23T08:59:58+00:00",
    }]


def test_carol_sees_none_of_acmes_positions(bob, carol, globex):
    receive(bob, [ping(2)])

    assert latest_positions(org_id=globex.pk) == []
    assert len(latest_positions(org_id=bob.org_id)) == 1


def test_yesterdays_position_is_not_live(bob, clock):
    receive(bob, [ping(60)])

    clock.shift(timedelta(hours=13))

    assert latest_positions(org_id=bob.org_id) == []


def test_a_deactivated_drivers_position_is_not_listed(bob):
    receive(bob, [ping(2)])
    bob.active = False
    bob.save()

    assert latest_positions(org_id=bob.org_id) == []
