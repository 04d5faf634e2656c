"""Real GPS traces (../shared/data/realworld/gps/, see PROVENANCE.md) replayed through
location_receive, live (one ping per call) and as offline backlogs.

Each replay runs with the clock stopped just after the trace ended, so the device
times are as fresh as they were on the day.
"""

from __future__ import annotations

import csv
import json
import random
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import datetime, timedelta

import pytest
import time_machine

from apps.tracking.models import DriverPosition, LocationPing, PingStatus
from apps.tracking.services import location_receive
from tests.factories import DriverFactory
from tests.shared_data import REALWORLD, require

GPS = REALWORLD / "gps"


@pytest.fixture(autouse=True)
def _traces_present():
    require(GPS)

Point = tuple[datetime, float, float]  # device time, lat, lng


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def gpx_points(name: str) -> list[tuple[str | None, float, float]]:
    """Track points of a GPX 1.0/1.1 file (any namespace, or none), with their raw time text."""
    points = []
    for element in ET.parse(GPS / name).getroot().iter():  # noqa: S314 -- vetted files (PROVENANCE.md)
        if _local(element.tag) == "trkpt":
            times = [child.text for child in element if _local(child.tag) == "time"]
            points.append((times[0] if times else None, float(element.get("lat")), float(element.get("lon"))))
    return points


def munich_json(name: str = "barefoot_munich_x0001-001.json") -> list[Point]:
    """barefoot's format: WKT ``POINT(lon lat)`` and a ``+0200`` offset."""
    points = []
    for row in json.loads((GPS / name).read_text()):
        lng, lat = (float(v) for v in row["point"].removeprefix("POINT(").removesuffix(")").split())
        points.append((datetime.strptime(row["time"], "%Y-%m-%d %H:%M:%S%z"), lat, lng))
    return points


def munich_csv() -> list[Point]:
    with (GPS / "barefoot_munich_x0001-001_DERIVED.csv").open() as f:
        return [(datetime.fromisoformat(r["time_iso8601"]), float(r["lat"]), float(r["lon"])) for r in csv.DictReader(f)]


def aracaju_tracks() -> dict[str, list[Point]]:
    """UCI GPS Trajectories: local time in Aracaju (UTC-3) without an offset."""
    tracks: dict[str, list[Point]] = defaultdict(list)
    with (GPS / "uci_go_track_trackspoints_aracaju.csv").open() as f:
        for r in csv.DictReader(f):
            moment = datetime.fromisoformat(r["time"].replace(" ", "T") + "-03:00")
            tracks[r["track_id"]].append((moment, float(r["latitude"]), float(r["longitude"])))
    return tracks


def as_pings(points: list[Point]) -> list[dict]:
    return [{"lat": lat, "lng": lng, "accuracy_m": 10, "at": moment.isoformat()} for moment, lat, lng in points]


def replay(driver, points: list[Point], *, batch: int = 1) -> dict:
    """Send the trace in batches of ``batch`` with the clock just after its last point."""
    totals = {"accepted": 0, "duplicates": 0, "flagged": 0, "rejected": 0}
    pings = as_pings(points)
    with time_machine.travel(max(p[0] for p in points) + timedelta(seconds=30), tick=False):
        for start in range(0, len(pings), batch):
            result = location_receive(org_id=driver.org_id, driver_id=driver.pk, pings=pings[start:start + batch])
            for key in ("accepted", "duplicates", "flagged"):
                totals[key] += result[key]
            totals["rejected"] += len(result["rejected"])
    return totals


def final_position(driver) -> tuple[float, float]:
    position = DriverPosition.objects.get(driver=driver)
    return position.lat, position.lng


def statuses(driver) -> list[str]:
    return list(LocationPing.objects.filter(driver=driver).order_by("device_time").values_list("status", flat=True))


# --- Munich: a car drive at 1 Hz with a receiver that froze, then caught up 470 m on -------------


@pytest.mark.parametrize("batch", [1, 100], ids=["live", "backlog"])
def test_the_munich_drive_flags_the_470_mps_jump_and_ends_at_the_last_point(bob, batch):
    points = munich_json()

    totals = replay(bob, points, batch=batch)

    assert totals == {"accepted": 1194, "duplicates": 0, "flagged": totals["flagged"], "rejected": 0}
    assert 1 <= totals["flagged"] <= 10, "a handful of noisy points, not the drive"
    jump_at = datetime.fromisoformat("2014-09-10T07:04:27+02:00")
    assert LocationPing.objects.get(driver=bob, device_time=jump_at).status == PingStatus.JUMP
    assert final_position(bob) == points[-1][1:]


def test_live_and_backlog_judge_the_munich_drive_alike(bob, acme):
    twin = DriverFactory(org=acme, name="Twin")

    replay(bob, munich_json(), batch=1)
    replay(twin, munich_csv(), batch=250)

    assert statuses(bob) == statuses(twin)


def test_the_munich_drive_uploaded_shuffled_still_ends_at_its_last_point(bob):
    points = munich_json()
    shuffled = random.Random(7).sample(points, len(points))

    totals = replay(bob, shuffled, batch=50)

    assert totals["accepted"] == 1194
    assert totals["flagged"] <= 10  # judged against other neighbours, but still only a handful
    assert final_position(bob) == points[-1][1:]


def test_the_munich_drive_sampled_every_15_s_has_no_noise(bob):
    points = munich_json("barefoot_munich_x0001-015.json")

    totals = replay(bob, points, batch=1)

    assert (totals["accepted"], totals["flagged"]) == (80, 0)
    assert final_position(bob) == points[-1][1:]


# --- Aracaju: city drives sampled every ~6 s, with jitter, jumps and repeated times ----------------


ARACAJU = [  # track, (flagged, duplicates): the longest drives, and the ones with noise
    ("30", (0, 0)), ("31", (0, 0)), ("41", (0, 0)), ("37962", (0, 0)),
    ("11", (1, 0)), ("58", (2, 0)), ("65", (0, 1)), ("70", (0, 1)),
]


@pytest.mark.parametrize(("track", "expected"), ARACAJU, ids=[t for t, _ in ARACAJU])
def test_an_aracaju_drive_is_kept_whole_and_only_its_jumps_are_hidden(acme, track, expected):
    driver = DriverFactory(org=acme)
    points = aracaju_tracks()[track]

    totals = replay(driver, points, batch=20)

    flagged, duplicates = expected
    assert (totals["flagged"], totals["duplicates"], totals["rejected"]) == (flagged, duplicates, 0)
    assert totals["accepted"] == len(points) - duplicates
    last_shown = LocationPing.objects.filter(driver=driver, status=PingStatus.SHOWN).order_by("device_time").last()
    assert final_position(driver) == (last_shown.lat, last_shown.lng) == points[-1][1:]


def test_aracaju_as_a_whole_has_few_flagged_points(acme):
    """163 drives, 18,107 points; PROVENANCE counts 16 steps faster than 50 m/s."""
    tracks = aracaju_tracks()
    flagged = accepted = 0
    for track in ("11", "49", "58", "30", "31", "41"):
        totals = replay(DriverFactory(org=acme), tracks[track], batch=50)
        flagged, accepted = flagged + totals["flagged"], accepted + totals["accepted"]

    assert 0 < flagged < accepted * 0.01


# --- GPX files: real drives and the edge cases users reported --------------------------------------


@pytest.mark.parametrize("name", [
    "gpxpy_around-visnjan-with-car.gpx",
    "graphhopper_mapmatching_issue-70_novisad_1min.gpx",
    "graphhopper_mapmatching_issue-147_bellevue_sparse.gpx",
    "gpxpy_track-with-empty-segment.gpx",
])
def test_a_clean_gpx_drive_is_shown_point_for_point(bob, name):
    points = [(datetime.fromisoformat(t), lat, lng) for t, lat, lng in gpx_points(name)]

    totals = replay(bob, points, batch=10)

    assert (totals["accepted"], totals["flagged"], totals["rejected"]) == (len(points), 0, 0)
    assert final_position(bob) == points[-1][1:]


def test_points_that_all_share_one_timestamp_are_one_point(bob):
    raw = gpx_points("graphhopper_mapmatching_issue-13_istanbul_same_timestamps.gpx")
    points = [(datetime.fromisoformat(t), lat, lng) for t, lat, lng in raw]

    totals = replay(bob, points, batch=1)

    assert (totals["accepted"], totals["duplicates"]) == (1, len(points) - 1)
    assert final_position(bob) == points[0][1:]


def test_a_garmin_with_a_reset_clock_is_refused_point_for_point(bob, clock):
    """Every point says 1901-12-13T20:45:52 (INT32_MIN seconds): not a time to trust."""
    pings = [{"lat": lat, "lng": lng, "accuracy_m": 10, "at": t} for t, lat, lng in gpx_points("gpxpy_Mojstrovka.gpx")]

    result = location_receive(org_id=bob.org_id, driver_id=bob.pk, pings=pings)

    assert result["accepted"] == 0
    assert {r["code"] for r in result["rejected"]} == {"too_old"}
    assert len(result["rejected"]) == len(pings) == 184


def test_points_without_a_time_are_refused(bob, clock):
    pings = [{"lat": lat, "lng": lng, "accuracy_m": 10, "at": t}
             for t, lat, lng in gpx_points("graphhopper_mapmatching_issue-127_duplicate_points_no_time.gpx")]

    result = location_receive(org_id=bob.org_id, driver_id=bob.pk, pings=pings)

    assert [r["code"] for r in result["rejected"]] == ["invalid_time", "invalid_time"]
