"""The fleet simulator: pure parts (noise, movement, outcomes) on seeded draws, the
driver socket against a scripted WebSocket server, and one run of the real simulator
against a real server process."""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from io import StringIO
from itertools import pairwise
from pathlib import Path

import pytest
from django.conf import global_settings
from django.core.management import CommandError, call_command
from websockets.asyncio.server import serve

from apps.accounts.actor import system_actor
from apps.dispatch.inputs import RouteIn
from apps.dispatch.models import Route, Stop
from apps.dispatch.services.routes import route_create, route_publish
from apps.dispatch.simulation import calibration, noise, outcomes
from apps.dispatch.simulation.client import DriverSocket, HttpSession
from apps.dispatch.simulation.driver import DriverReport, DriverSettings, SimulatedDriver
from apps.dispatch.simulation.fleet import FleetOptions, FleetReport, demo_today, run_fleet
from apps.dispatch.simulation.movement import (
    MAX_MAP_SPEED_MPS,
    Leg,
    Point,
    SimClock,
    drive_speed_mps,
    map_speed_mps,
)
from apps.dispatch.timing import ROAD_FACTOR, URBAN_SPEED_MPS, haversine_m
from apps.tracking.models import LocationPing
from tests.factories import PASSWORD, OrderFactory
from tests.realtime.servers import asgi_servers

TRACES = Path(__file__).resolve().parents[3] / "shared" / "data" / "realworld" / "gps"
HUB = Point(52.5290, 13.3726)  # HubFactory's


def _offsets(seed: int, *, every_s: float, count: int) -> list[noise.Offset]:
    device = noise.GpsNoise(random.Random(seed))
    return [device.at(i * every_s) for i in range(count)]


# --- noise ------------------------------------------------------------------------


class TestNoise:
    def test_the_same_seed_gives_the_same_fixes(self):
        assert _offsets(5, every_s=3, count=50) == _offsets(5, every_s=3, count=50)
        assert _offsets(5, every_s=3, count=50) != _offsets(6, every_s=3, count=50)

    def test_its_magnitudes_match_what_was_measured_on_the_phone_traces(self):
        distances = [o.distance_m for o in _offsets(11, every_s=3, count=30_000)]

        assert calibration.quantile(distances, 0.5) == pytest.approx(noise.MEASURED_MEDIAN_M, rel=0.08)
        assert calibration.quantile(distances, 0.68) == pytest.approx(noise.MEASURED_P68_M, rel=0.08)
        assert calibration.quantile(distances, 0.95) == pytest.approx(noise.MEASURED_P95_M, rel=0.08)

    @pytest.mark.parametrize("every_s", [0.25, 1, 3, 5])
    def test_it_never_moves_a_fix_faster_than_its_cap(self, every_s):
        fixes = _offsets(3, every_s=every_s, count=5_000)

        speeds = [math.hypot(b.east_m - a.east_m, b.north_m - a.north_m) / every_s for a, b in pairwise(fixes)]

        assert max(speeds) <= noise.MAX_NOISE_SPEED_MPS + 1e-9

    def test_reported_accuracy_is_a_phones_and_far_inside_what_the_server_shows(self):
        accuracies = Counter(o.accuracy_m for o in _offsets(4, every_s=3, count=5_000))

        assert min(accuracies) >= noise.MIN_ACCURACY_M
        assert max(accuracies) <= 15

    @pytest.mark.parametrize("speedup", [1, 10, 30, 200])
    def test_noisy_pings_of_a_moving_vehicle_never_imply_a_jump_the_server_would_hide(self, speedup):
        # What the server checks (apps/tracking/pings.py): distance from the previous
        # ping over the device time between them, at least one second.
        clock_s, every_s = 0.0, 3.0
        leg = Leg(origin=HUB, destination=Point(52.5600, 13.4400), depart_s=0, speed_mps=drive_speed_mps(speedup))
        device = noise.GpsNoise(random.Random(speedup))
        pings = []
        while clock_s * speedup < leg.arrive_s + 60:
            where = leg.at(clock_s * speedup)
            pings.append((clock_s, *noise.displace(where.lat, where.lng, device.at(clock_s))))
            clock_s += every_s

        implied = [haversine_m(a[1], a[2], b[1], b[2]) / max(1.0, b[0] - a[0]) for a, b in pairwise(pings)]

        assert max(implied) <= noise.SERVER_FLAG_SPEED_MPS
        assert len(pings) > 20

    @pytest.mark.skipif(not TRACES.is_dir(), reason="the shared GPS traces are not checked out next to the repository")
    def test_the_calibrated_figures_are_what_the_traces_measure(self):
        tracks = calibration.phone_tracks(TRACES)
        jitter = [d for fixes in tracks for d in calibration.smoothed_track_jitter(fixes)]

        assert len(jitter) == 6099
        assert calibration.quantile(jitter, 0.5) == pytest.approx(noise.MEASURED_MEDIAN_M, abs=0.01)
        assert calibration.quantile(jitter, 0.95) == pytest.approx(noise.MEASURED_P95_M, abs=0.01)


# --- movement ---------------------------------------------------------------------


class TestMovement:
    def test_a_vehicle_advances_along_the_leg_and_never_back(self):
        leg = Leg(origin=HUB, destination=Point(52.5400, 13.4000), depart_s=100)

        positions = [leg.at(100 + i * 10) for i in range(int(leg.duration_s / 10) + 2)]
        from_origin = [haversine_m(HUB.lat, HUB.lng, p.lat, p.lng) for p in positions]

        assert from_origin == sorted(from_origin)
        assert [p.progress for p in positions] == sorted(p.progress for p in positions)
        assert (positions[0].lat, positions[0].lng) == (HUB.lat, HUB.lng)
        assert (positions[-1].lat, positions[-1].lng) == (52.5400, 13.4000)
        assert positions[1].speed_mps == URBAN_SPEED_MPS
        assert positions[-1].speed_mps == 0

    def test_arrival_is_the_road_distance_over_the_speed(self):
        destination = Point(52.5380, 13.3726)  # 1 km north
        leg = Leg(origin=HUB, destination=destination, depart_s=50)

        assert leg.straight_m == pytest.approx(1000.8, abs=1)
        assert leg.arrive_s == pytest.approx(50 + leg.straight_m * ROAD_FACTOR / URBAN_SPEED_MPS)
        assert leg.at(leg.arrive_s - 1).progress < 1
        assert leg.at(leg.arrive_s).progress == 1
        assert leg.at(0).progress == 0  # waiting at the origin before departure

    def test_heading_points_at_the_destination(self):
        assert Leg(origin=HUB, destination=Point(52.5380, 13.3726), depart_s=0).heading == pytest.approx(0, abs=0.1)
        assert Leg(origin=HUB, destination=Point(52.5290, 13.3900), depart_s=0).heading == pytest.approx(90, abs=0.1)

    def test_sim_time_runs_speedup_times_the_wall_clock(self):
        wall = iter([1000.0, 1004.0])
        clock = SimClock(speedup=15, wall=lambda: next(wall))

        assert clock.now() == 60.0
        assert clock.wall_seconds(300) == 20.0

    def test_vehicles_slow_down_in_sim_time_only_when_the_map_speed_would_be_hidden(self):
        assert drive_speed_mps(10) == URBAN_SPEED_MPS
        assert drive_speed_mps(60) * 60 / ROAD_FACTOR == pytest.approx(MAX_MAP_SPEED_MPS)
        assert 10 * map_speed_mps() <= MAX_MAP_SPEED_MPS


# --- outcomes ---------------------------------------------------------------------


class TestOutcomes:
    def test_most_stops_are_delivered_and_failures_are_mostly_nobody_home(self):
        rng = random.Random(9)

        draws = [outcomes.stop_outcome(rng) for _ in range(20_000)]
        reasons = Counter(o.reason for o in draws if not o.delivered)

        delivered = sum(o.delivered for o in draws) / len(draws)
        assert delivered == pytest.approx(0.93, abs=0.01)
        assert set(reasons) == {"recipient_absent", "access_denied", "refused"}
        assert reasons["recipient_absent"] / reasons.total() == pytest.approx(0.70, abs=0.03)
        assert all(o.notes for o in draws if not o.delivered)

    def test_the_same_seed_gives_the_same_day(self):
        first = [outcomes.stop_outcome(random.Random(4)) for _ in range(3)]
        assert first == [outcomes.stop_outcome(random.Random(4)) for _ in range(3)]


# --- the driver's reading of a route ----------------------------------------------


def _stop(pk, sequence, state, lat=None, arrived_at=None):
    return {"id": pk, "sequence": sequence, "state": state, "arrived_at": arrived_at,
            "order": {"lat": lat, "lng": 13.4 if lat else None}}


class TestReadingARoute:
    def test_the_next_stop_is_the_first_open_one_in_the_current_order(self):
        # The dispatcher moved stop 12 to the front after the driver set off.
        route = {"stops": [_stop(10, 2, "pending"), _stop(11, 3, "completed"), _stop(12, 1, "arrived")]}

        assert SimulatedDriver._next_stop(route)["id"] == 12
        assert SimulatedDriver._next_stop({"stops": [_stop(11, 3, "completed")]}) is None

    def test_a_route_under_way_resumes_where_the_driver_last_arrived(self):
        driver = SimulatedDriver(DriverSettings(base_url="http://127.0.0.1:9", username="d", password="p",
                                                day=demo_today()), clock=SimClock(speedup=10))
        stops = [_stop(1, 1, "completed", 52.50, "2026-11-23T08:10:00Z"),
                 _stop(2, 2, "arrived", 52.51, "2026-11-23T08:20:00Z"), _stop(3, 3, "pending", 52.52)]
        route = {"status": "in_progress", "start_lat": 52.53, "start_lng": 13.34, "stops": stops}

        assert driver._starting_point(route) == Point(52.51, 13.4)
        assert driver._starting_point({**route, "status": "published"}) == Point(52.53, 13.34)


# --- the driver socket against a scripted server --------------------------------


async def _until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


@pytest.mark.asyncio
class TestDriverSocket:
    async def _scripted(self, script):
        """A WebSocket server that plays ``script(connection_number, ws, received)``."""
        received: list[list[dict]] = []

        async def handler(ws):
            received.append([])
            await script(len(received), ws, received[-1])

        server = await serve(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        return server, f"http://127.0.0.1:{port}", received

    async def test_it_reconnects_resumes_from_the_last_sequence_and_sends_the_backlog_in_one_batch(self):
        async def script(number, ws, received):
            await ws.send(json.dumps({"type": "welcome", "audience": "driver", "seq": 40, "heartbeat_s": 10}))
            async for raw in ws:
                message = json.loads(raw)
                received.append(message)
                if message["type"] == "hello" and number == 1:
                    await ws.send(json.dumps({"type": "snapshot", "seq": 40, "reason": "hello", "data": {}}))
                    await ws.send(json.dumps({"type": "events", "events": [{"seq": 41, "type": "stop.arrived"}]}))
                elif message["type"] in ("ping", "pings"):
                    count = len(message.get("pings", [message]))
                    await ws.send(json.dumps({"type": "pings.ack", "accepted": count, "duplicates": 0,
                                              "rejected": [], "flagged": 0}))
                    if number == 1:
                        await ws.close(code=1011)

        server, url, received = await self._scripted(script)
        socket = DriverSocket(HttpSession(url), log=lambda _m: None, relogin=_never, first_backoff_s=0.01)
        task = asyncio.create_task(socket.run())
        try:
            await _until(lambda: socket.connected and socket.last_seq == 41)
            await socket.send_ping({"lat": 52.5, "n": 1})
            await _until(lambda: len(received) == 1 and not socket.connected)
            await socket.send_ping({"lat": 52.5, "n": 2})
            await socket.send_ping({"lat": 52.5, "n": 3})

            assert await socket.drain(timeout=5)
        finally:
            await socket.close()
            await task
            server.close()

        first, second = received
        assert [m["type"] for m in first] == ["hello", "ping"]
        assert first[0]["last_seq"] == 0
        assert second[0] == {"type": "hello", "last_seq": 41}
        assert second[1] == {"type": "pings", "pings": [{"lat": 52.5, "n": 2}, {"lat": 52.5, "n": 3}]}
        assert (socket.stats.sent, socket.stats.accepted, socket.stats.batches) == (3, 3, 1)

    async def test_it_logs_in_again_when_the_server_says_it_is_not_logged_in(self):
        async def script(number, ws, received):
            await ws.send(json.dumps({"type": "welcome", "audience": "driver", "seq": 0, "heartbeat_s": 10}))
            if number == 1:
                await ws.close(code=4401)
                return
            async for raw in ws:
                received.append(json.loads(raw))

        server, url, received = await self._scripted(script)
        logins = []

        async def relogin():
            logins.append(1)

        socket = DriverSocket(HttpSession(url), log=lambda _m: None, relogin=relogin, first_backoff_s=0.01)
        task = asyncio.create_task(socket.run())
        try:
            await _until(lambda: len(received) == 2 and received[1])
        finally:
            await socket.close()
            await task
            server.close()

        assert logins == [1]
        assert received[1][0]["type"] == "hello"

    async def test_a_forbidden_driver_is_not_retried(self):
        async def script(number, ws, received):
            await ws.send(json.dumps({"type": "welcome", "audience": "driver", "seq": 0, "heartbeat_s": 10}))
            await ws.close(code=4403)

        server, url, received = await self._scripted(script)
        socket = DriverSocket(HttpSession(url), log=lambda _m: None, relogin=_never, first_backoff_s=0.01)
        try:
            await asyncio.wait_for(socket.run(), timeout=5)
        finally:
            server.close()

        assert len(received) == 1
        assert "4403" in (socket.fatal or "")


async def _never():
    raise AssertionError("should not log in again")


# --- the command ------------------------------------------------------------------


class TestCommand:
    def test_it_passes_the_options_to_the_fleet(self, monkeypatch):
        seen = {}

        async def fake_run_fleet(options):
            seen["options"] = options
            return FleetReport(drivers=[DriverReport(username="driver1", name="Mehmet Yılmaz")])

        monkeypatch.setattr("apps.dispatch.management.commands.simulate_fleet.run_fleet", fake_run_fleet)

        call_command("simulate_fleet", "--url", "http://127.0.0.1:9", "--speedup", "20", "--ping-interval", "1.5",
                     "--drivers", "driver1,driver3", "--seed", "7", "--once", "--max-seconds", "30", stdout=StringIO())

        options = seen["options"]
        assert (options.url, options.speedup, options.ping_interval_s) == ("http://127.0.0.1:9", 20, 1.5)
        assert (list(options.drivers), options.seed, options.once, options.max_seconds) == (
            ["driver1", "driver3"], "7", True, 30)

    def test_a_speedup_must_be_positive(self):
        with pytest.raises(CommandError, match="positive"):
            call_command("simulate_fleet", "--speedup", "0")

    def test_an_unreachable_server_is_an_error_not_a_hang(self):
        with pytest.raises(CommandError, match="not answering"):
            call_command("simulate_fleet", "--url", "http://127.0.0.1:9", "--drivers", "driver1",
                         "--wait-for-server", "0.1", stdout=StringIO())


# --- against a real server --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_simulated_driver_works_a_route_to_the_end_over_the_real_api_and_socket(
        settings, acme, acme_hub, acme_van, bob):
    # The server process checks passwords with the project's hashers, not the tests' fast one.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    bob.user.set_password(PASSWORD)
    bob.user.save()
    # Three doors around the hub, 80-150 m apart, quick to serve.
    # Each asks for a different proof, as the demo's orders do.
    orders = [OrderFactory(org=acme, lat=HUB.lat + dlat, lng=HUB.lng + dlng, service_time_s=30, pod_requirements=pod)
              for (dlat, dlng), pod in zip([(0.0009, 0.0), (0.0009, 0.0015), (0.0, 0.0020)],
                                           [["photo"], ["signature", "pin"], []], strict=True)]
    actor = system_actor(acme)
    route = route_publish(actor=actor, route=route_create(actor=actor, data=RouteIn(
        hub=acme_hub.pk, date=demo_today().isoformat(), driver=bob.pk, vehicle=acme_van.pk,
        orders=[o.pk for o in orders])))

    with asgi_servers(1) as (server,):
        report = asyncio.run(run_fleet(FleetOptions(
            url=server.http, speedup=60, ping_interval_s=0.25, drivers=[bob.user.username], password=PASSWORD,
            seed=3, once=True, max_seconds=25, connect_wait_s=5)))

    (driver,) = report.drivers
    assert not report.timed_out
    assert driver.error is None
    assert (driver.name, driver.routes_done, driver.delivered + driver.failed) == ("Bob Baker", 1, 3)
    route.refresh_from_db()
    assert route.status == "completed"
    stops = Stop.objects.filter(route=route)
    assert {(s.state, s.outcome in ("succeeded", "failed")) for s in stops} == {("completed", True)}
    assert driver.pings.accepted > 10
    assert (driver.pings.rejected, driver.pings.flagged) == (0, 0)
    assert driver.pings.acked == driver.pings.sent
    assert LocationPing.objects.filter(driver=bob).count() == driver.pings.accepted
    assert Route.objects.get(pk=route.pk).started_at is not None
    # Every delivery carries the proof its order asked for, captured and uploaded like the PWA does.
    from apps.pod.models import ProofOfDelivery

    for stop in stops.filter(outcome="succeeded"):
        pod = ProofOfDelivery.objects.get(stop=stop)
        assert pod.photos.count() >= (1 if "photo" in stop.order.pod_requirements else 0)
        assert (pod.signature is not None) == ("signature" in stop.order.pod_requirements)
        assert pod.pin_verified is (True if "pin" in stop.order.pod_requirements else None)
    assert stops.filter(outcome="succeeded").exists()
